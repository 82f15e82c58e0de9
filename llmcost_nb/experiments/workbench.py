"""The prompt workbench's model: variants as text, a grid, the grid's worst-case cost before anything is sent,
runs through :func:`~llmcost_nb.experiments.compare.compare` and their history. The widget
(:mod:`llmcost_nb.notebook.workbench`) is a thin shell over this; scripts and tests use it directly.

>>> bench = Bench(questions, ["gpt-4.1", "gpt-4.1-mini"], client=client, scorer="exact",
...               budget="0.50")                                   # doctest: +SKIP
>>> bench.set_variant("terse", "Q: {question}").unknown       # fields the inputs lack   # doctest: +SKIP
()
>>> bench.estimate                                             # worst case, Decimal      # doctest: +SKIP
Decimal('0.0415')
>>> result = bench.run(); bench.history                        # doctest: +SKIP

A variant is a template over the inputs' fields (``"Q: {question}"``, the user message) or chat messages as
JSON (``[{"role": "system", "content": "…"}, {"role": "user", "content": "{question}"}]``). The estimate is
:func:`~llmcost_nb.experiments.plan.plan`'s, planned per variant and kept while the variant and the grid stay
as they are, with token counts cached per filled request: after an edit only the edited variant is planned
and tokenized again. Each run is one experiment in the ledger, named
``<workbench>/run-<n>`` and tagged ``workbench=<name>``, ``run=<n>``; the inputs are a sample of the given
size drawn from one fixed shuffle (same seed every run, so a larger sample keeps the smaller one's inputs).
"""

from __future__ import annotations

import difflib
import functools
import json
import random
import string
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.call import now_iso
from ..core.money import format_total, format_usd
from ..pricing.tokens import count_message_tokens, encoding_name
from ..tracking import resolve_ledger
from .plan import GridEstimate, _items, plan, usd_amount
from .result import _count
from .scorers import LLMJudge, resolve_scorer

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.sqlite import Ledger
    from .result import CompareResult

__all__ = ["Bench", "Grid", "Quote", "RunComparison", "RunRecord", "TokenCounter", "VariantCheck",
           "check_variant", "messages_text", "parse_variant", "sample_order"]

NO_MATH = "mathjax_ignore tex2jax_ignore"  # Jupyter must not typeset "$0.04 … $0.05" as LaTeX
HISTORY_COLUMNS = ("run", "experiment", "started", "variants", "changes", "models", "inputs", "repeats",
                   "max_tokens", "adaptive", "calls", "estimate", "cost", "unpriced", "estimated", "winner",
                   "success_rate", "stopped")


# -- variants ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VariantCheck:
    """A variant's text read as compare() will read it: the template, the fields it uses, those the inputs
    lack, and a problem that would stop it from running (``None`` when it can run)."""

    name: str
    text: str
    template: Any  # a template string or a list of chat messages (what compare() receives)
    fields: tuple[str, ...]
    unknown: tuple[str, ...]  # fields the inputs lack
    error: str | None = None  # text compare() cannot use (bad JSON, a lone brace, …)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.unknown

    def problem(self, known: Sequence[str] = ()) -> str | None:
        """What is wrong, in one line for the editor (``None`` when nothing is)."""
        if self.error is not None:
            return f"{self.name}: {self.error}"
        if self.unknown:
            names = ", ".join("{" + f + "}" for f in self.unknown)
            have = f": the inputs have {', '.join(known)}" if known else ""
            return f"{self.name}: unknown field{'s' if len(self.unknown) > 1 else ''} {names}{have}"
        return None


def parse_variant(text: str) -> Any:
    """A variant's text as compare() takes it: chat messages when it is a JSON list of ``{"role", "content"}``
    objects, else a template string (the user message). Text that starts like JSON messages (``[{``) but is
    not valid raises ``ValueError``.

    >>> parse_variant("Q: {question}")
    'Q: {question}'
    >>> parse_variant('[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{q}"}]')
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': '{q}'}]
    """
    if not isinstance(text, str):
        raise TypeError(f"a variant's text must be a str, got {type(text).__name__}")
    head = text.lstrip()
    if not (head.startswith("[") and head[1:].lstrip().startswith("{")):
        return text
    try:
        messages = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"chat messages are not valid JSON ({exc.msg} at line {exc.lineno} column "
                         f"{exc.colno})") from None
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    ):
        raise ValueError('chat messages must be a JSON list of {"role": …, "content": "…"} objects')
    return messages


def messages_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Chat messages as the editor shows them: JSON, one message a line.

    >>> print(messages_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{q}"}]))
    [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "{q}"}
    ]
    """
    return "[\n" + ",\n".join(f"  {json.dumps(dict(m), ensure_ascii=False)}" for m in messages) + "\n]"


def _template_fields(template: str) -> list[str]:
    fields = []
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is None:
            continue
        base = name.split(".", 1)[0].split("[", 1)[0]
        if base == "" or base.isdigit():
            raise ValueError("a positional field {} has no input to fill it: name a field, as in {question} "
                             "(write literal braces as {{ }})")
        fields.append(base)
        if spec and "{" in spec:
            fields += _template_fields(spec)
    return fields


def check_variant(name: str, text: str, known: Sequence[str]) -> VariantCheck:
    """Read ``text`` as a variant over inputs whose fields are ``known``.

    >>> check_variant("v1", "Q: {qestion}", ["id", "question"]).problem(["id", "question"])
    'v1: unknown field {qestion}: the inputs have id, question'
    """
    try:
        template = parse_variant(text)
        parts = [template] if isinstance(template, str) else [m["content"] for m in template]
        fields: list[str] = []
        for part in parts:
            try:
                fields += _template_fields(part)
            except ValueError as exc:
                if "positional field" in str(exc):
                    raise
                raise ValueError("a brace { or } is not part of a {field}: write literal braces as {{ }} "
                                 f"({exc})") from None
    except ValueError as exc:
        return VariantCheck(name, text, text, (), (), str(exc))
    used = tuple(dict.fromkeys(fields))
    return VariantCheck(name, text, template, used, tuple(f for f in used if f not in known))


# -- the grid and its estimate -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """What a run covers besides the variants."""

    models: tuple[str, ...]
    inputs: int  # how many of the inputs (a sample, same seed every run)
    repeats: int = 1
    max_tokens: int = 256
    adaptive: bool = False

    def describe(self) -> str:
        return (f"{', '.join(self.models)} · {self.inputs} inputs · {self.repeats} repeat"
                f"{'s' if self.repeats != 1 else ''} · max_tokens {self.max_tokens}"
                + (" · adaptive" if self.adaptive else ""))


def sample_order(n: int, seed: int) -> list[int]:
    """One fixed shuffle of ``range(n)``: a sample of size k is its first k positions, in input order; the
    same seed gives the same samples, and a larger sample contains every smaller one.

    >>> sample_order(5, seed=0)
    [2, 1, 0, 4, 3]
    """
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


class TokenCounter:
    """``count(messages, model)`` for :func:`plan`, cached by (tiktoken encoding, filled messages): unchanged
    variants' requests are not tokenized again, whichever model asks."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._encodings: dict[str, str] = {}
        self.tokenized = 0  # requests actually tokenized (cache misses)
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]], model: str) -> int:
        encoding = self._encodings.get(model)
        if encoding is None:
            encoding = self._encodings[model] = encoding_name(model)[0]
        key = (encoding, repr(messages))
        tokens = self._counts.get(key)
        if tokens is None:
            tokens = count_message_tokens(messages, model=model).tokens
            with self._lock:
                self._counts[key] = tokens
                self.tokenized += 1
        return tokens

    def __len__(self) -> int:
        return len(self._counts)


@dataclass(frozen=True)
class Quote:
    """The estimate of the grid as it stands: what the workbench's label shows, and whether Run may go."""

    estimate: GridEstimate | None
    budget: Decimal | None
    problem: str | None = None  # why the grid cannot run as it is (a variant's problem, no variant, …)

    @property
    def max_cost(self) -> Decimal | None:
        return self.estimate.max_cost if self.estimate is not None else None

    @property
    def over_budget(self) -> bool:
        if self.budget is None or self.estimate is None:
            return False
        return self.max_cost is None or self.max_cost > self.budget

    @property
    def runnable(self) -> bool:
        return self.problem is None and self.estimate is not None and not self.over_budget

    def label(self) -> str:
        """``≤ $0.0410 · 120 calls · 3,660 input tokens`` (and the budget when the grid is over it).

        A model with no known price gives no dollar figure: ``cost unknown for mystery-1 (no price) · …``.
        Run then goes without a budget (its calls are ``unpriced`` in the results) and is refused with one,
        as :func:`~llmcost_nb.experiments.compare.compare` refuses: the grid cannot be checked against it.
        """
        if self.problem is not None or self.estimate is None:
            return f"cannot run: {self.problem}"
        e = self.estimate
        if e.max_cost is None:
            cost = f"cost unknown for {', '.join(e.unpriced_models)} (no price)"
        else:
            cost = f"≤ {format_usd(e.max_cost)}"
        judge = f" (+{e.judge_calls:,} judge)" if e.judge_calls else ""
        text = f"{cost} · {e.calls:,} calls{judge} · {e.input_tokens:,} input tokens"
        if self.over_budget and e.max_cost is None:
            text += f" · cannot be checked against the budget of {format_usd(self.budget)}"
        elif self.over_budget:
            text += f" · over the budget of {format_usd(self.budget)}"
        return text


def _combined(parts: list[GridEstimate]) -> GridEstimate:
    """The grid's estimate from each variant's share: a cell's worst case depends on its variant only, so
    after an edit only the edited variant is planned again (the same total as planning them together)."""
    unpriced = sorted({m for p in parts for m in p.unpriced_models})
    costs = [p.max_cost for p in parts]
    first = parts[0]
    return GridEstimate(
        calls=sum(p.calls for p in parts),
        judge_calls=sum(p.judge_calls for p in parts),
        variants=len(parts),
        models=first.models,
        inputs=first.inputs,
        repeats=first.repeats,
        input_tokens=sum(p.input_tokens for p in parts),
        max_output_tokens=first.max_output_tokens,
        max_cost=None if unpriced or None in costs else sum(costs, Decimal(0)),  # type: ignore[arg-type]
        unpriced_models=unpriced,
    )


# -- runs and their history ----------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One run of the workbench: what it ran, what it cost, who won."""

    run: int
    experiment: str
    started: str
    variants: dict[str, str]  # the texts, as they were
    grid: Grid
    estimate: Decimal | None
    result: CompareResult
    changes: list[str] = field(default_factory=list)  # against the previous run: "guided edited", …
    diff: str = ""  # unified diff of the variant texts against the previous run

    @property
    def cost(self) -> Decimal:
        return self.result.total_cost

    @property
    def calls(self) -> int:
        return len(self.result.rows)

    @property
    def unpriced(self) -> int:
        """Billed calls with no known price: their cost is not in :attr:`cost`."""
        return _count(self.result.rows["unpriced"])

    @property
    def estimated(self) -> int:
        """Calls whose tokens were counted by llmcost_nb (the provider sent no usage)."""
        return _count(self.result.rows["estimated"])

    def cost_text(self) -> str:
        """:attr:`cost` for people: ``$0.0120``, ``≈$0.0120 (2 estimated)``, ``$0.0120 + 3 unpriced``."""
        return format_total(self.cost, unpriced=self.unpriced, estimated=self.estimated)

    @property
    def winner(self) -> tuple[str, str] | None:
        try:
            best = self.result.best("cost_per_success")
        except ValueError:  # no cell succeeded
            return None
        return (str(best["variant"]), str(best["model"]))

    @property
    def success_rate(self) -> float | None:
        """The winner's success rate."""
        winner = self.winner
        if winner is None:
            return None
        table = self.result.table
        row = table[(table["variant"] == winner[0]) & (table["model"] == winner[1])]
        return float(row["success_rate"].iloc[0])

    def row(self) -> dict[str, Any]:
        winner = self.winner
        return {
            "run": self.run,
            "experiment": self.experiment,
            "started": self.started,
            "variants": ", ".join(self.variants),
            "changes": "; ".join(self.changes),
            "models": ", ".join(self.grid.models),
            "inputs": self.grid.inputs,
            "repeats": self.grid.repeats,
            "max_tokens": self.grid.max_tokens,
            "adaptive": self.grid.adaptive,
            "calls": self.calls,
            "estimate": self.estimate,
            "cost": self.cost,
            "unpriced": self.unpriced,
            "estimated": self.estimated,
            "winner": " · ".join(winner) if winner else None,
            "success_rate": self.success_rate,
            "stopped": self.result.stopped,
        }

    def headline(self) -> str:
        """``run 3: guided · gpt-4.1-mini won at 85% · cost $0.0120`` (the cost as :meth:`cost_text`)."""
        winner, rate = self.winner, self.success_rate
        won = f"{' · '.join(winner)} won at {rate:.0%}" if winner else "no cell succeeded"
        stopped = f" · stopped ({self.result.stopped})" if self.result.stopped else ""
        return f"run {self.run}: {won} · cost {self.cost_text()}{stopped}"


def _changes(before: Mapping[str, str] | None, after: Mapping[str, str]) -> tuple[list[str], str]:
    """What changed in the variants from one run to the next: short notes and a unified diff."""
    if before is None:
        return ["first run"], ""
    notes, diff = [], []
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        notes.append(f"{name} {'added' if old is None else 'removed' if new is None else 'edited'}")
        diff += difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(),
                                     f"{name} (before)", f"{name}", lineterm="")
    return notes or ["variants unchanged"], "\n".join(diff)


def _diff_html(diff: str) -> str:
    colors = {"+": "#1b5e20", "-": "#b71c1c", "@": "#6a6a6a"}
    lines = []
    for line in diff.splitlines():
        color = colors.get(line[:1]) if not line.startswith(("+++", "---")) else "#6a6a6a"
        style = f' style="color:{color}"' if color else ""
        lines.append(f"<span{style}>{escape(line)}</span>")
    return "<pre style=\"margin:0;font-size:11px\">" + "\n".join(lines) + "</pre>"


def history_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run (see :data:`HISTORY_COLUMNS`); money as Decimal."""
    import pandas as pd

    frame = pd.DataFrame([r.row() for r in runs], columns=list(HISTORY_COLUMNS))
    for column in ("estimate", "cost"):
        frame[column] = pd.Series(list(frame[column]), index=frame.index, dtype=object)
    return frame


def history_html(runs: Sequence[RunRecord]) -> str:
    """The history as an HTML table, each run's variant diff (against the run before) folded under it."""
    if not runs:
        return f'<div class="llmcost-history {NO_MATH}"><i>No run yet.</i></div>'
    head = "".join(f"<th>{h}</th>" for h in ("run", "variants", "grid", "cost", "estimate", "winner",
                                                 "success", "calls", "changes"))
    body = []
    for r in runs:
        winner, rate = r.winner, r.success_rate
        stopped = f" <small>(stopped: {escape(r.result.stopped)})</small>" if r.result.stopped else ""
        estimate = f"≤ {format_usd(r.estimate)}" if r.estimate is not None else "unknown"
        changes = escape("; ".join(r.changes))
        if r.diff:
            changes = f"<details><summary>{changes}</summary>{_diff_html(r.diff)}</details>"
        texts = "".join(f"<details><summary>{escape(n)}</summary><pre style=\"margin:0;font-size:11px\">"
                        f"{escape(t)}</pre></details>" for n, t in r.variants.items())
        body.append(
            f"<tr><td>{r.run}</td><td>{texts}</td><td>{escape(r.grid.describe())}</td>"
            f'<td style="white-space:nowrap">{escape(r.cost_text())}{stopped}</td>'
            f'<td style="white-space:nowrap">{estimate}</td>'
            f"<td>{escape(' · '.join(winner)) if winner else '–'}</td>"
            f"<td>{f'{rate:.0%}' if rate is not None else '–'}</td><td>{r.calls:,}</td>"
            f"<td>{changes}</td></tr>")
    return (f'<table class="llmcost-history {NO_MATH}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def history_text(runs: Sequence[RunRecord]) -> str:
    return "\n".join(f"{r.headline()} · {r.calls:,} calls · {'; '.join(r.changes)}" for r in runs)


@dataclass(frozen=True)
class RunComparison:
    """Two runs side by side: each (variant, model) cell's success rate and cost in both, and how the variant
    texts changed from the first to the second."""

    a: RunRecord
    b: RunRecord

    @property
    def table(self) -> pd.DataFrame:
        columns = ["variant", "model", "n", "success_rate", "total_cost", "cost_per_success"]
        left = self.a.result.table[columns]
        right = self.b.result.table[columns]
        merged = left.merge(right, on=["variant", "model"], how="outer",
                            suffixes=(f"_run{self.a.run}", f"_run{self.b.run}"))
        for run in (self.a.run, self.b.run):  # a cell missing from one run: no count (not NaN as a float)
            merged[f"n_run{run}"] = merged[f"n_run{run}"].astype("Int64")
        return merged

    @property
    def diff(self) -> str:
        return _changes(self.a.variants, self.b.variants)[1]

    def __repr__(self) -> str:
        lines = [self.a.headline(), self.b.headline(), self.table.to_string(index=False)]
        if self.diff:
            lines.append(self.diff)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        table = self.table.copy()
        cells = list(zip(table["variant"], table["model"], strict=True))
        for r in (self.a, self.b):  # each run's cell totals say what they leave out and guess
            counts = {(v, m): (u, e) for v, m, u, e in zip(*(r.result.table[c] for c in (
                "variant", "model", "unpriced", "estimated")), strict=True)}
            column = f"total_cost_run{r.run}"
            table[column] = [format_total(v, unpriced=counts[c][0], estimated=counts[c][1])
                             if isinstance(v, Decimal) and c in counts else v
                             for v, c in zip(table[column], cells, strict=True)]
        for column in table.columns:
            if "cost" in column:
                table[column] = [v if isinstance(v, str) else format_usd(v) if isinstance(v, Decimal) else "–"
                                 for v in table[column]]
            if column.startswith("success_rate"):
                table[column] = [f"{v:.0%}" if v == v else "–" for v in table[column]]
        diff = _diff_html(self.diff) if self.diff else "<i>same variant texts</i>"
        return (f'<div class="llmcost-run-comparison {NO_MATH}"><div><b>{escape(self.a.headline())}</b></div>'
                f"<div><b>{escape(self.b.headline())}</b></div>"
                f"{table.to_html(index=False, border=0, na_rep='–')}{diff}</div>")


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """The widget edits from the kernel's thread while its debounce timer quotes from another: one at a
    time."""

    @functools.wraps(method)
    def locked(self: Bench, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


# -- the workbench itself ---------------------------------------------------------------------------------
class Bench:
    """Variants, a grid, its estimate and the runs so far (see the module docstring)."""

    def __init__(
        self,
        inputs: Any,
        models: Sequence[str],
        *,
        client: Any = None,
        scorer: Any = None,
        budget: Decimal | str | float | None = None,
        variants: Mapping[str, Any] | None = None,
        name: str | None = None,
        sample: int | None = None,
        seed: int = 0,
        repeats: int = 1,
        max_tokens: int = 256,
        adaptive: bool = False,
        concurrency: int = 16,
        tags: Mapping[str, Any] | None = None,
        ledger: Ledger | str | Path | None = None,
    ) -> None:
        if isinstance(models, str) or not models or not all(isinstance(m, str) and m for m in models):
            raise ValueError(f"models must be a non-empty list of model names, got {models!r}")
        self._lock = threading.RLock()
        self.items = _items(inputs)
        self.fields = [f for f in self.items[0][1] if all(f in item for _, item in self.items)]
        self.models = list(dict.fromkeys(models))  # the candidates (the grid's models are some of them)
        self.client, self.scorer, self.seed, self.concurrency = client, scorer, seed, concurrency
        self.judge = resolve_scorer(scorer)
        self.judge = self.judge if isinstance(self.judge, LLMJudge) else None
        self.budget = usd_amount(budget, "budget")
        self.name = name or f"wb-{uuid.uuid4().hex[:6]}"
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self._ledger = ledger
        self._order = sample_order(len(self.items), seed)
        self.grid = Grid(tuple(self.models), len(self.items), repeats, max_tokens, adaptive)
        self.set_grid(inputs=sample if sample is not None else len(self.items))
        self._texts: dict[str, str] = {}
        self._checks: dict[str, VariantCheck] = {}
        self.counter = TokenCounter()
        self._parts: dict[tuple[Any, ...], GridEstimate] = {}  # (variant, text, grid) -> its share
        self.runs: list[RunRecord] = []
        for variant, template in (variants or {}).items():
            self.set_variant(variant, template)

    # -- variants ----------------------------------------------------------------------------------------
    @property
    def variants(self) -> dict[str, str]:
        """Each variant's text, by name (a copy)."""
        return dict(self._texts)

    @_locked
    def set_variant(self, name: str, text: Any) -> VariantCheck:
        """Add or replace a variant: a template string, or chat messages (a list, or its JSON text).
        Returns its check: ``.unknown`` lists fields the inputs lack, ``.error`` what else is wrong."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a variant's name must be a non-empty string, got {name!r}")
        if isinstance(text, list | tuple):
            text = messages_text(text)
        if not isinstance(text, str):
            raise TypeError(f"variant {name!r} must be a template string or a list of chat messages, got "
                            f"{type(text).__name__}")
        self._texts[name] = text
        if name not in self._checks or self._checks[name].text != text:
            self._checks[name] = check_variant(name, text, self.fields)
        return self._checks[name]

    @_locked
    def remove_variant(self, name: str) -> None:
        if name not in self._texts:
            raise KeyError(f"no variant {name!r}; variants: {', '.join(self._texts) or '(none)'}")
        del self._texts[name], self._checks[name]

    def duplicate_variant(self, name: str, new: str | None = None) -> str:
        """A copy of variant ``name`` under ``new`` (default: ``name 2``, ``name 3``, …); returns its name."""
        if name not in self._texts:
            raise KeyError(f"no variant {name!r}; variants: {', '.join(self._texts) or '(none)'}")
        if new is None:
            n = 2
            while f"{name} {n}" in self._texts:
                n += 1
            new = f"{name} {n}"
        if new in self._texts:
            raise ValueError(f"a variant named {new!r} exists already")
        self.set_variant(new, self._texts[name])
        return new

    def check(self, name: str) -> VariantCheck:
        return self._checks[name]

    # -- grid -------------------------------------------------------------------------------------------
    @_locked
    def set_grid(self, *, models: Sequence[str] | None = None, inputs: int | None = None,
                 repeats: int | None = None, max_tokens: int | None = None,
                 adaptive: bool | None = None) -> Grid:
        """Change some of the grid: the models (of the candidates), the sample size, repeats, max_tokens,
        adaptive racing."""
        grid = self.grid
        if models is not None:
            if isinstance(models, str) or not all(isinstance(m, str) and m for m in models):
                raise ValueError(f"models must be a list of model names, got {models!r}")
            grid = replace(grid, models=tuple(m for m in dict.fromkeys(models)))
        for key, value, low, high in (("inputs", inputs, 1, len(self.items)), ("repeats", repeats, 1, None),
                                      ("max_tokens", max_tokens, 1, None)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (
                    high is not None and value > high):
                span = f"between {low} and {high}" if high is not None else "a positive int"
                raise ValueError(f"{key} must be {span}, got {value!r}")
            grid = replace(grid, **{key: value})
        if adaptive is not None:
            grid = replace(grid, adaptive=bool(adaptive))
        self.grid = grid
        return grid

    def sample(self) -> list[dict[str, Any]]:
        """The inputs this grid runs on (each with its ``id``), in their original order."""
        chosen = sorted(self._order[: self.grid.inputs])
        return [item if "id" in item else {"id": input_id, **item}
                for input_id, item in (self.items[i] for i in chosen)]

    # -- estimate ---------------------------------------------------------------------------------------
    def problem(self) -> str | None:
        """Why the grid cannot run as it stands (``None`` when it can)."""
        if not self._texts:
            return "no variant: add one"
        if not self.grid.models:
            return "no model selected"
        problems = [p for c in self._checks.values() if (p := c.problem(self.fields)) is not None]
        return "; ".join(problems) or None

    @_locked
    def quote(self) -> Quote:
        """The grid's worst-case estimate (no request sent; cached tiktoken counts) and what it means."""
        problem = self.problem()
        if problem is not None:
            return Quote(None, self.budget, problem)
        grid, ledger = self.grid, self.ledger
        scope = (grid.models, grid.inputs, grid.repeats, grid.max_tokens, id(self.judge), id(ledger))
        parts, sample = {}, None
        for name, check in self._checks.items():
            key = (name, check.text, scope)
            if key not in self._parts:
                sample = sample if sample is not None else self.sample()
                try:
                    _, self._parts[key] = plan({name: check.template}, list(grid.models), sample,
                                               repeats=grid.repeats, max_tokens=grid.max_tokens,
                                               judge=self.judge, ledger=ledger, name=self.name,
                                               count=self.counter)
                except (KeyError, TypeError, ValueError) as exc:
                    return Quote(None, self.budget, str(exc).strip("'\""))
            parts[key] = self._parts[key]
        self._parts = parts  # only the variants as they are now
        return Quote(_combined(list(parts.values())), self.budget)

    @property
    def estimate(self) -> Decimal | None:
        """The grid's worst case in USD (``None`` when a model has no price); raises ``ValueError`` when the
        grid cannot run as it stands (a variant's unknown field, …)."""
        quote = self.quote()
        if quote.problem is not None:
            raise ValueError(f"the grid cannot run: {quote.problem}")
        return quote.max_cost

    @property
    def ledger(self) -> Ledger:
        return resolve_ledger(self._ledger)  # type: ignore[return-value]

    # -- runs -------------------------------------------------------------------------------------------
    def next_run(self) -> int:
        """The next run's number: after this workbench's runs, and after any run of the same name already
        in the ledger (a notebook run again)."""
        n = (self.runs[-1].run if self.runs else 0) + 1
        while self.ledger.count(tags={"workbench": self.name, "run": str(n)}):
            n += 1
        return n

    def run(self, *, progress: bool | Callable[[int, int, Decimal], None] = True,
            stop: threading.Event | None = None) -> CompareResult:
        """Run the grid with :func:`compare` (adaptive when the grid says so) and add it to the history.
        ``progress`` and ``stop`` are compare()'s. Refused (nothing sent) when the grid cannot run or
        could pass the budget."""
        from ..errors import GridOverBudget
        from .compare import compare

        quote = self.quote()
        if quote.problem is not None:
            raise ValueError(f"the grid cannot run: {quote.problem}")
        if quote.over_budget and quote.max_cost is None:  # as compare() refuses it
            raise GridOverBudget(f"workbench {self.name}: {quote.label()}. Nothing was sent. Set a price "
                                 "with llmcost_nb.set_price(model, input_mtok=..., output_mtok=...) or run "
                                 "without a budget.")
        if quote.over_budget:
            raise GridOverBudget(f"workbench {self.name}: {quote.label()}. Nothing was sent. Lower "
                                 "max_tokens, use fewer inputs, variants or models, or raise the budget.")
        n, texts, grid = self.next_run(), self.variants, self.grid
        options: dict[str, Any] = {}
        if grid.adaptive:
            options["adaptive"] = True
        started = now_iso()
        result = compare(
            {name: check.template for name, check in self._checks.items()},
            list(grid.models),
            self.sample(),
            scorer=self.scorer,
            client=self.client,
            repeats=grid.repeats,
            concurrency=self.concurrency,
            budget=self.budget,
            tags={**self.tags, "workbench": self.name, "run": str(n)},
            name=f"{self.name}/run-{n}",
            max_tokens=grid.max_tokens,
            progress=progress,
            ledger=self._ledger,
            stop=stop,
            **options,
        )
        changes, diff = _changes(self.runs[-1].variants if self.runs else None, texts)
        self.runs.append(RunRecord(n, result.name, started, texts, grid, quote.max_cost, result, changes,
                                   diff))
        return result

    @property
    def history(self) -> pd.DataFrame:
        """One row per run: its variants and what changed, grid, estimate, cost, winner, success rate."""
        return history_frame(self.runs)

    def record(self, run: int) -> RunRecord:
        for record in self.runs:
            if record.run == run:
                return record
        raise KeyError(f"no run {run!r}; runs: {', '.join(str(r.run) for r in self.runs) or '(none)'}")

    def compare_runs(self, a: int, b: int) -> RunComparison:
        """Runs ``a`` and ``b`` side by side (each cell's success and cost in both; the variants' diff)."""
        return RunComparison(self.record(a), self.record(b))
