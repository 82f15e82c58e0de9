"""The summary shown under a tracked cell: a line of totals, budget bars and an expandable per-call table.

In a live kernel it is an ipywidget; the same display also carries ``text/html`` and ``text/plain``, so a
notebook saved with its outputs shows it with no kernel (and a static viewer shows the HTML or the text).

>>> summary = CellSummary.from_scope(scope)          # doctest: +SKIP
>>> print(summary)                                    # doctest: +SKIP
3 calls · 4,210 in / 812 out tokens (1,000 cached) · $0.0142 · 1.9 s · session $0.38 of $5.00

Unknown is never $0, estimated is never exact: a cell with calls of unknown price or estimated tokens reads
``≈$0.0142 (1 estimated) + 2 unpriced`` (:func:`~llmcost_nb.core.money.format_total`), and in the per-call
table such a call's cost is ``unpriced`` or ``≈$0.004200`` (:func:`~llmcost_nb.core.money.format_cost`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

from ..core.call import Call
from ..core.money import format_cost, format_total, format_usd, not_counting

if TYPE_CHECKING:
    from ..budget import Budget
    from ..tracking.scope import Scope, Session

__all__ = ["NO_MATH", "CellSummary", "format_usd"]

# Jupyter typesets $...$ in HTML outputs as LaTeX; dollar amounts must not be: MathJax skips these classes.
NO_MATH = "mathjax_ignore tex2jax_ignore"

_BAR_WIDTH = 20


@dataclass
class CellSummary:
    """What one tracked cell (or any scope) spent; displays as widget + HTML + text."""

    calls: list[Call]
    label: str = ""
    session_total: Decimal = Decimal(0)
    budgets: list[tuple[Budget, Decimal]] = field(default_factory=list)  # (budget, spent) that apply here
    alerts: list[str] = field(default_factory=list)
    stopped: str | None = None  # the message of a hard budget stop in this cell
    session_unpriced: int = 0  # the session's billed calls with no known price (not in session_total)
    session_estimated: int = 0  # the session's calls whose tokens were estimated
    budget_unpriced: dict[str, int] = field(default_factory=dict)  # budget scope -> unpriced calls left out

    @classmethod
    def from_scope(cls, scope: Scope, *, session: Session | None = None, alerts: list[str] | None = None,
                   stopped: str | None = None) -> CellSummary:
        from ..tracking.scope import get_session

        session = session or get_session()
        with scope._lock:
            calls = list(scope.records)
        parts = (f"[{scope.cell}]" if scope.cell is not None else "", scope.name or "")
        label = " ".join(p for p in parts if p)
        budgets = _applicable_budgets(scope, session)
        return cls(calls, label, session.total_cost, budgets, list(alerts or []), stopped, session.unpriced,
                   session.estimated, budget_unpriced(budgets, session, scope.ledger))

    # -- totals -----------------------------------------------------------------------------------------
    @property
    def input_tokens(self) -> int:
        return sum(c.input_tokens for c in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)

    @property
    def cached_tokens(self) -> int:
        return sum(c.cache_read_tokens for c in self.calls)

    @property
    def cost(self) -> Decimal:
        return sum((c.cost for c in self.calls if c.cost is not None), Decimal(0))

    @property
    def unpriced(self) -> int:
        return sum(1 for c in self.calls if c.cost is None and c.billed)

    @property
    def estimated(self) -> int:
        """Calls whose tokens were estimated (counted by llmcost_nb: a stream that sent no usage)."""
        return sum(1 for c in self.calls if c.usage_source == "estimated")

    @property
    def unfinished(self) -> int:
        return sum(1 for c in self.calls if c.status == "unfinished")

    @property
    def failed(self) -> int:
        return sum(1 for c in self.calls if c.status == "error")

    @property
    def latency_s(self) -> float:
        """Time spent waiting on calls, summed (parallel calls overlap: this can exceed the cell's time)."""
        return sum(c.latency_ms or 0.0 for c in self.calls) / 1000

    @property
    def models(self) -> Counter[str]:
        return Counter(c.model or c.model_requested or "?" for c in self.calls)

    # -- rendering --------------------------------------------------------------------------------------
    def line(self) -> str:
        """The one-line summary."""
        parts = [_plural(len(self.calls), "call"),
                 f"{self.input_tokens:,} in / {self.output_tokens:,} out tokens"
                 + (f" ({self.cached_tokens:,} cached)" if self.cached_tokens else ""),
                 format_total(self.cost, unpriced=self.unpriced, estimated=self.estimated),
                 _duration(self.latency_s)]
        session = "session " + format_total(self.session_total, unpriced=self.session_unpriced,
                                            estimated=self.session_estimated)
        limit = next((b.limit for b, _ in self.budgets if b.scope == "session"), None)
        parts.append(session + (f" of {format_usd(limit)}" if limit is not None else ""))
        return " · ".join(parts)

    def notes(self) -> list[str]:
        notes = []
        if self.unpriced:
            models = sorted({c.model or c.model_requested or "?" for c in self.calls
                             if c.cost is None and c.billed})
            notes.append(f"{self.unpriced:,} unpriced: no price known for {', '.join(models)}, not in the "
                         "cost (llmcost_nb.set_price sets one)")
        if self.estimated:
            notes.append(f"{self.estimated:,} estimated: the provider sent no usage, tokens counted by "
                         "llmcost_nb (≈)")
        if self.unfinished:
            notes.append(f"{_plural(self.unfinished, 'stream')} unfinished at cell end")
        if self.failed:
            notes.append(f"{self.failed} failed attempt{'s' if self.failed > 1 else ''} (not billed)")
        replayed = [c for c in self.calls if c.replayed]
        if replayed:
            saved = sum((c.saved for c in replayed if c.saved is not None), Decimal(0))
            notes.append(f"{_plural(len(replayed), 'call')} replayed from recordings at $0, "
                         f"saved {format_usd(saved)}")
        return notes

    def _rows(self) -> list[list[str]]:
        return [[str(i), c.model or c.model_requested or "?", c.api, f"{c.input_tokens:,}",
                 f"{c.output_tokens:,}",
                 f"{c.cache_read_tokens:,}",
                 format_cost(c.cost, billed=c.billed, estimated=c.usage_source == "estimated"),
                 _duration((c.latency_ms or 0) / 1000), c.status + (" (stream)" if c.streamed else "")]
                for i, c in enumerate(self.calls, 1)]

    _HEAD = ("#", "model", "api", "in", "out", "cached", "cost", "latency", "status")

    def __str__(self) -> str:
        lines = [("llmcost " + self.label + ": " if self.label else "llmcost: ") + self.line()]
        if self.calls:
            lines.append("  models: " + ", ".join(f"{m} ×{k}" for m, k in self.models.most_common()))
        for budget, spent in self.budgets:
            ratio = spent / budget.limit if budget.limit else Decimal(1)
            filled = min(_BAR_WIDTH, int(ratio * _BAR_WIDTH))
            lines.append(f"  budget {budget.scope}: [{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] "
                         f"{ratio * 100:.0f}% of {format_usd(budget.limit)}"
                         + (" (hard)" if budget.hard else "") + self._not_counting(budget))
        lines += [f"  {n}" for n in self.notes()]
        lines += [f"  ! {a}" for a in self.alerts]
        if self.stopped:
            lines.append(f"  stopped: {self.stopped}")
        return "\n".join(lines)

    __repr__ = __str__

    def _header_html(self) -> str:
        title = escape(("llmcost " + self.label).strip())
        models = ", ".join(f"{escape(m)} ×{k}" for m, k in self.models.most_common())
        html = [f'<div class="llmcost-line"><b>{title}</b> · {escape(self.line())}</div>']
        if models:
            html.append(f'<div class="llmcost-models"><small>models: {models}</small></div>')
        for budget, spent in self.budgets:
            ratio = spent / budget.limit if budget.limit else Decimal(1)
            pct = min(100, float(ratio * 100))
            color = "#2e7d32" if ratio < Decimal("0.8") else "#f9a825" if ratio < 1 else "#c62828"
            html.append(
                f'<div class="llmcost-budget"><small>budget {escape(budget.scope)}'
                f'{" (hard)" if budget.hard else ""}: {format_usd(spent)} of '
                f"{format_usd(budget.limit)}{escape(self._not_counting(budget))}</small>"
                f'<div style="background:#e0e0e0;width:240px;height:6px;border-radius:3px">'
                f'<div style="background:{color};width:{pct:.0f}%;height:6px;border-radius:3px"></div>'
                "</div></div>")
        html += [f'<div class="llmcost-note"><small>{escape(n)}</small></div>' for n in self.notes()]
        html += [f'<div class="llmcost-alert" style="color:#b26a00">⚠ {escape(a)}</div>' for a in self.alerts]
        if self.stopped:
            html.append(f'<div class="llmcost-stop" style="color:#c62828"><b>stopped:</b> '
                        f"{escape(self.stopped)}</div>")
        return f'<div class="llmcost-header {NO_MATH}">' + "".join(html) + "</div>"

    def _not_counting(self, budget: Budget) -> str:
        unpriced = self.budget_unpriced.get(budget.scope, 0)
        return f" · {not_counting(unpriced)}" if unpriced else ""

    def table_html(self) -> str:
        """The per-call table."""
        head = "".join(f"<th>{h}</th>" for h in self._HEAD)
        body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>"
                       for row in self._rows())
        return (f'<table class="llmcost-summary {NO_MATH}" cellpadding="3"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    def _repr_html_(self) -> str:
        count = _plural(len(self.calls), "call")
        details = (f"<details><summary>{count}</summary>{self.table_html()}</details>"
                   if self.calls else "")
        return f'<div class="llmcost-cell {NO_MATH}">{self._header_html()}{details}</div>'

    def widget(self) -> Any:
        """The ipywidgets view: the header, and the per-call table in a collapsed accordion."""
        import ipywidgets as w

        children = [w.HTML(self._header_html())]
        if self.calls:
            table = w.HTML(self.table_html())
            children.append(w.Accordion(children=[table], titles=(_plural(len(self.calls), "call"),),
                                        selected_index=None))
        return w.VBox(children, layout=w.Layout(margin="4px 0"))

    def mimebundle(self, *, widget: bool) -> dict[str, Any]:
        """The display bundle: widget view (when asked) plus ``text/html`` and ``text/plain`` fallbacks."""
        from .display import widget_bundle

        return widget_bundle(self.widget if widget else None, self._repr_html_(), str(self))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _applicable_budgets(scope: Scope, session: Session) -> list[tuple[Budget, Decimal]]:
    """The budgets the scope's calls count against, with what has been spent against each."""
    from ..budget import applicable_budgets

    return applicable_budgets(scope, session)


def all_budgets(session: Session) -> list[tuple[Budget, Decimal]]:
    """Every budget of the session's ledger, with what has been spent against each."""
    from ..budget import budgets_with_spent

    return budgets_with_spent(session)


def budget_unpriced(budgets: list[tuple[Budget, Decimal]], session: Session, ledger: Any = None
                    ) -> dict[str, int]:
    """For each budget (by scope), the billed calls of unknown price its spending does not count; the
    budgets with none are left out (and all of them when the ledger cannot be read: a view never fails)."""
    from ..budget import unpriced_against

    counts = {}
    try:
        for budget, _ in budgets:
            n = unpriced_against(budget, session, ledger=ledger)
            if n:
                counts[budget.scope] = n
    except Exception:
        return {}
    return counts
