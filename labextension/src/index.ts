/**
 * llmcost_nb in JupyterLab 4 / Notebook 7: a status-bar meter (`LLM $0.42 · today $3.10`) and a side panel
 * ("LLM costs"), both fed by the server extension's `GET {base_url}llmcost/api/summary`.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

import { CurrencyFormat, atLeast, callCost, notCounting, percent, total, usd } from './money';

const PLUGIN_ID = 'llmcost-nb:plugin';
const API_PATH = 'llmcost/api/summary';
const DASHBOARD = 'llmcost-dashboard.ipynb';

namespace CommandIDs {
  export const openPanel = 'llmcost:open-panel';
  export const openDashboard = 'llmcost:open-dashboard';
}

type Figures = 'session-and-today' | 'session' | 'today' | 'today-and-month';

interface ISettings {
  refreshInterval: number; // ms
  figures: Figures;
  currencyFormat: CurrencyFormat;
}

const DEFAULTS: ISettings = {
  refreshInterval: 1000,
  figures: 'session-and-today',
  currencyFormat: 'cents'
};

interface ICall {
  id: number;
  ts: string;
  provider: string | null;
  model: string | null;
  status: string;
  input_tokens: number;
  output_tokens: number;
  cost: string | null;
  latency_ms: number | null;
  billed: boolean;
  usage_source: string;
  notebook: string | null;
  cell: number | null;
  tags: Record<string, string>;
}

interface ITotals {
  calls: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cost: string;
  unpriced: number;
  estimated: number;
}

interface IBudget {
  scope: string;
  limit: string;
  hard: boolean;
  spent: string | null;
  fraction: string | null;
  unpriced: number | null;
}

interface ITightest {
  scope: string;
  fraction: string;
}

interface INotebookSpend {
  path: string;
  kernel_id: string | null;
  session_id: string | null;
  calls: number;
  cost: string;
  unpriced: number;
  estimated: number;
  notebook_calls: number;
  notebook_cost: string;
  notebook_unpriced: number;
  notebook_estimated: number;
  since: string | null;
  last_calls: ICall[];
  budgets: IBudget[];
  tightest_budget: ITightest | null;
}

interface ISummary {
  ledger: string;
  exists: boolean;
  error?: string;
  now?: string;
  today?: ITotals & {
    day: string;
    by_model: (ITotals & { provider: string | null; model: string | null })[];
  };
  month?: ITotals & { month: string };
  budgets?: IBudget[];
  tightest_budget?: ITightest | null;
  notebooks?: INotebookSpend[];
  last_calls?: ICall[];
}

/** Reads the summary on a timer (one request at a time) and tells its listeners. */
class SummaryPoller {
  constructor(private settings: ISettings) {}

  summary: ISummary | null = null;
  failed: string | null = null;
  private listeners: (() => void)[] = [];
  private timer: number | null = null;
  private busy = false;

  connect(listener: () => void): void {
    this.listeners.push(listener);
  }

  configure(settings: ISettings): void {
    this.settings = settings;
    this.start();
  }

  start(): void {
    if (this.timer !== null) {
      window.clearInterval(this.timer);
    }
    this.timer = window.setInterval(
      () => void this.refresh(),
      Math.max(250, this.settings.refreshInterval)
    );
    void this.refresh();
  }

  async refresh(): Promise<void> {
    if (this.busy || document.hidden) {
      return;
    }
    this.busy = true;
    try {
      const server = ServerConnection.makeSettings();
      const url = URLExt.join(server.baseUrl, API_PATH);
      const response = await ServerConnection.makeRequest(url, {}, server);
      if (!response.ok) {
        throw new Error(`${response.status} ${response.statusText}`);
      }
      this.summary = (await response.json()) as ISummary;
      this.failed = null;
    } catch (error) {
      this.failed = String(error);
    } finally {
      this.busy = false;
    }
    this.listeners.forEach(listener => listener());
  }
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { className?: string; text?: string; title?: string } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (attrs.className) {
    node.className = attrs.className;
  }
  if (attrs.text !== undefined) {
    node.textContent = attrs.text;
  }
  if (attrs.title) {
    node.title = attrs.title;
  }
  node.append(...children);
  return node;
}

function level(fraction: string | null | undefined): string {
  return atLeast(fraction, '1') ? 'llmcost-over' : atLeast(fraction, '0.8') ? 'llmcost-warn' : '';
}

function tokens(n: number): string {
  return n.toLocaleString('en-US');
}

function time(ts: string): string {
  return new Date(ts).toLocaleTimeString([], { hour12: false });
}

/** The notebook's figure over all its kernels, in the words of `total`. */
function notebookTotal(spend: INotebookSpend, format: CurrencyFormat): string {
  return total(spend.notebook_cost, spend.notebook_unpriced, spend.notebook_estimated, format);
}

/** The open notebook's entry: by its kernel, else by its path. */
function currentSpend(
  summary: ISummary | null,
  tracker: INotebookTracker | null
): INotebookSpend | null {
  const panel = tracker?.currentWidget;
  if (!summary?.notebooks || !panel) {
    return null;
  }
  const kernel = panel.sessionContext.session?.kernel?.id;
  const path = panel.context.path;
  return (
    summary.notebooks.find(n => kernel && n.kernel_id === kernel) ??
    summary.notebooks.find(n => n.path === path) ??
    null
  );
}

/** The status-bar item: `LLM $0.42 · today $3.10`, amber from 80% of the tightest budget, red from 100%. */
class StatusItem extends Widget {
  constructor(
    private poller: SummaryPoller,
    private tracker: INotebookTracker | null,
    private getSettings: () => ISettings,
    onClick: () => void
  ) {
    super();
    this.addClass('llmcost-status');
    this.node.setAttribute('role', 'button');
    this.node.addEventListener('click', onClick);
    poller.connect(() => this.render());
    tracker?.currentChanged.connect(() => this.render());
    this.render();
  }

  render(): void {
    const { summary, failed } = this.poller;
    const { figures, currencyFormat: f } = this.getSettings();
    this.removeClass('llmcost-warn');
    this.removeClass('llmcost-over');
    if (!summary || !summary.exists || summary.error || !summary.today) {
      this.node.textContent = 'LLM —';
      this.node.title = failed
        ? `llmcost_nb: ${failed}`
        : summary?.error
          ? `llmcost_nb: ${summary.error}`
          : summary
            ? `No ledger yet at ${summary.ledger}`
            : 'llmcost_nb: waiting for the server';
      return;
    }
    const mine = currentSpend(summary, this.tracker);
    const session = mine ? total(mine.cost, mine.unpriced, mine.estimated, f) : '—';
    const today = total(summary.today.cost, summary.today.unpriced, summary.today.estimated, f);
    const month = summary.month
      ? total(summary.month.cost, summary.month.unpriced, summary.month.estimated, f)
      : usd(undefined, f);
    const text: Record<Figures, string> = {
      'session-and-today': `LLM ${session} · today ${today}`,
      session: `LLM ${session}`,
      today: `LLM today ${today}`,
      'today-and-month': `LLM today ${today} · month ${month}`
    };
    this.node.textContent = text[figures] ?? text['session-and-today'];
    const tightest = mine?.tightest_budget ?? summary.tightest_budget ?? null;
    const cls = level(tightest?.fraction);
    if (cls) {
      this.addClass(cls);
    }
    const lines = [
      mine
        ? `This notebook's kernel: ${session} in ${mine.calls} calls` +
          ` (the notebook, all kernels: ${notebookTotal(mine, f)})`
        : 'No notebook tracked here (run a %%llmcost cell)',
      `Today: ${today} in ${summary.today.calls} calls`,
      ...summary.today.by_model.map(
        m => `  ${m.model ?? '?'}: ${total(m.cost, m.unpriced, m.estimated, f)} (${m.calls})`
      ),
      `This month: ${month}`,
      ...(mine?.budgets ?? summary.budgets ?? []).map(
        b =>
          `Budget ${b.scope}: ${usd(b.spent, f)} of ${usd(b.limit, f)}` +
          (b.fraction ? ` (${percent(b.fraction)})` : '') +
          (notCounting(b.unpriced) ? ` · ${notCounting(b.unpriced)}` : '')
      ),
      `Ledger: ${summary.ledger}`
    ];
    this.node.title = lines.join('\n');
  }
}

/** The side panel: today by model, this notebook's session calls, budgets, a link to the dashboard. */
class CostsPanel extends Widget {
  constructor(
    private poller: SummaryPoller,
    private tracker: INotebookTracker | null,
    private getSettings: () => ISettings,
    private openDashboard: () => void
  ) {
    super();
    this.id = 'llmcost-panel';
    this.addClass('llmcost-panel');
    this.title.label = 'LLM costs';
    this.title.caption = 'LLM costs (llmcost_nb)';
    this.title.closable = true;
    poller.connect(() => this.isVisible && this.render());
    tracker?.currentChanged.connect(() => this.isVisible && this.render());
  }

  protected onAfterShow(): void {
    this.render();
  }

  render(): void {
    const { summary, failed } = this.poller;
    const f = this.getSettings().currencyFormat;
    const body: Node[] = [el('h2', { text: 'LLM costs' })];
    if (!summary || !summary.exists || summary.error || !summary.today) {
      body.push(
        el('p', {
          className: 'llmcost-empty',
          text: failed
            ? `Cannot read the summary: ${failed}`
            : summary?.error
              ? summary.error
              : summary
                ? `No ledger yet at ${summary.ledger}: costs show here after the first tracked call.`
                : 'Waiting for the server…'
        })
      );
      this.node.replaceChildren(...body);
      return;
    }
    const today = summary.today;
    body.push(
      el(
        'p',
        { className: 'llmcost-totals' },
        el('span', {
          className: 'llmcost-today',
          text: `Today ${total(today.cost, today.unpriced, today.estimated, f)}`
        }),
        ` · ${today.calls} calls · this month ` +
          (summary.month
            ? total(summary.month.cost, summary.month.unpriced, summary.month.estimated, f)
            : usd(undefined, f))
      )
    );

    body.push(el('h3', { text: 'Today by model' }));
    body.push(
      table(
        ['Model', 'Calls', 'Tokens in → out', 'Cost'],
        today.by_model.map(m => [
          m.model ?? '?',
          String(m.calls),
          `${tokens(m.input_tokens)} → ${tokens(m.output_tokens)}`,
          total(m.cost, m.unpriced, m.estimated, f)
        ]),
        'llmcost-models'
      )
    );

    const mine = currentSpend(summary, this.tracker);
    body.push(el('h3', { text: "This notebook's session" }));
    if (mine && mine.session_id) {
      body.push(
        el('p', {
          className: 'llmcost-session',
          text:
            `${total(mine.cost, mine.unpriced, mine.estimated, f)} in ${mine.calls} calls` +
            ` since ${time(mine.since ?? '')}` +
            ` · the notebook, all kernels: ${notebookTotal(mine, f)}`
        })
      );
      body.push(
        table(
          ['Time', 'Cell', 'Model', 'Tokens', 'Cost'],
          mine.last_calls.map(c => [
            time(c.ts),
            c.cell === null ? '' : `[${c.cell}]`,
            c.model ?? '?',
            `${tokens(c.input_tokens)} → ${tokens(c.output_tokens)}`,
            callCost(c.cost, c.billed, c.usage_source === 'estimated', f)
          ]),
          'llmcost-calls',
          mine.last_calls.map(c =>
            Object.entries(c.tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')
          )
        )
      );
    } else {
      body.push(
        el('p', {
          className: 'llmcost-empty',
          text: tracker_hint(this.tracker)
        })
      );
    }

    body.push(el('h3', { text: 'Budgets' }));
    const budgets = mine?.budgets ?? summary.budgets ?? [];
    if (!budgets.length) {
      body.push(
        el('p', {
          className: 'llmcost-empty',
          text: 'No budget set (%llmcost budget 5 --scope day).'
        })
      );
    }
    for (const b of budgets) {
      const width = b.fraction ? Math.min(100, Number(b.fraction) * 100) : 0;
      const fill = el('div', { className: 'llmcost-bar-fill' });
      fill.style.width = `${width}%`;
      body.push(
        el(
          'div',
          { className: 'llmcost-budget' },
          el('div', {
            className: 'llmcost-budget-label',
            text:
              `${b.scope}${b.hard ? ' (hard)' : ''}: ${b.spent === null ? '—' : usd(b.spent, f)}` +
              ` of ${usd(b.limit, f)}${b.fraction ? ` · ${percent(b.fraction)}` : ''}` +
              (notCounting(b.unpriced) ? ` · ${notCounting(b.unpriced)}` : '')
          }),
          el('div', { className: `llmcost-bar ${level(b.fraction)}`.trim() }, fill)
        )
      );
    }

    const link = el('a', {
      className: 'llmcost-dashboard-link',
      text: 'Open the dashboard notebook'
    });
    link.href = '#';
    link.addEventListener('click', event => {
      event.preventDefault();
      this.openDashboard();
    });
    body.push(el('p', {}, link));
    body.push(el('p', { className: 'llmcost-ledger', text: `Ledger: ${summary.ledger}` }));
    this.node.replaceChildren(...body);
  }
}

function tracker_hint(tracker: INotebookTracker | null): string {
  return tracker?.currentWidget
    ? 'No tracked calls from this notebook\'s kernel yet (%load_ext llmcost_nb, then a %%llmcost cell).'
    : 'Open a notebook to see its session here.';
}

/** A table; `hints`: each row's tooltip (a call's tags). */
function table(
  head: string[],
  rows: string[][],
  className: string,
  hints: string[] = []
): HTMLTableElement {
  const node = el('table', { className: `llmcost-table ${className}` });
  node.append(el('thead', {}, el('tr', {}, ...head.map(h => el('th', { text: h })))));
  node.append(
    el(
      'tbody',
      {},
      ...rows.map((r, i) =>
        el('tr', { title: hints[i] ?? '' }, ...r.map(c => el('td', { text: c })))
      )
    )
  );
  return node;
}

function dashboardNotebook(ledger: string): object {
  const source = [
    '%load_ext llmcost_nb\n',
    'import llmcost_nb\n',
    '\n',
    `llmcost_nb.dashboard(${JSON.stringify(ledger)})`
  ];
  return {
    cells: [
      {
        cell_type: 'markdown',
        metadata: {},
        source: ['# LLM costs\n', '\n', `The llmcost_nb dashboard of \`${ledger}\`.`]
      },
      { cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source }
    ],
    metadata: {
      kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' }
    },
    nbformat: 4,
    nbformat_minor: 5
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'LLM spend from the llmcost_nb ledger: a status-bar meter and a side panel.',
  autoStart: true,
  optional: [IStatusBar, ICommandPalette, ISettingRegistry, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    tracker: INotebookTracker | null
  ) => {
    let settings: ISettings = { ...DEFAULTS };
    const poller = new SummaryPoller(settings);
    const getSettings = () => settings;

    const openDashboard = async () => {
      const ledger = poller.summary?.ledger ?? '';
      const contents = app.serviceManager.contents;
      try {
        await contents.get(DASHBOARD, { content: false });
      } catch {
        await contents.save(DASHBOARD, {
          type: 'notebook',
          format: 'json',
          content: dashboardNotebook(ledger)
        });
      }
      await app.commands.execute('docmanager:open', { path: DASHBOARD });
    };

    const panel = new CostsPanel(poller, tracker, getSettings, () => void openDashboard());
    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Show LLM costs',
      caption: 'The llmcost_nb side panel: today by model, this session, budgets',
      execute: () => {
        if (!panel.isAttached) {
          app.shell.add(panel, 'right', { rank: 900 });
        }
        app.shell.activateById(panel.id);
        panel.render();
      }
    });
    app.commands.addCommand(CommandIDs.openDashboard, {
      label: 'Open the LLM costs dashboard notebook',
      execute: () => openDashboard()
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.openPanel, category: 'LLM costs' });
      palette.addItem({ command: CommandIDs.openDashboard, category: 'LLM costs' });
    }

    const item = new StatusItem(poller, tracker, getSettings, () =>
      void app.commands.execute(CommandIDs.openPanel)
    );
    if (statusBar) {
      statusBar.registerStatusItem(PLUGIN_ID, {
        item,
        align: 'left',
        rank: 900,
        isActive: () => true
      });
    } else {
      // Notebook 7 has no status bar (no plugin provides IStatusBar there): the meter goes in the top bar,
      // right of the kernel logo; the panel still opens in the right sidebar (Notebook 7's shell has one).
      item.addClass('llmcost-status-top');
      app.shell.add(item, 'top', { rank: 1000 });
    }

    const apply = (loaded: ISettingRegistry.ISettings) => {
      settings = { ...DEFAULTS, ...(loaded.composite as Partial<ISettings>) };
      poller.configure(settings);
      item.render();
      if (panel.isVisible) {
        panel.render();
      }
    };
    if (registry) {
      registry
        .load(PLUGIN_ID)
        .then(loaded => {
          apply(loaded);
          loaded.changed.connect(apply);
        })
        .catch(() => poller.start());
    } else {
      poller.start();
    }
    document.addEventListener('visibilitychange', () => void poller.refresh());
  }
};

export default plugin;
