"""Invoice reconciliation: compare the ledger with the provider's own usage or cost export, by day × model.

>>> rec = llmcost_nb.reconcile(Ledger(), "sample_data/exports/openai_costs.json")   # doctest: +SKIP
>>> rec.differences                                  # rows beyond the tolerance     # doctest: +SKIP
>>> rec.chart()                                      # ledger vs export, per day     # doctest: +SKIP

Accepted exports and their exact columns: see :mod:`llmcost_nb.team.exports`. A cost export is compared on
cost (USD), a usage export on input and output tokens. Model names are compared without their date suffix
(``gpt-4.1-2025-04-14`` ≡ ``gpt-4.1``). Only billed ledger rows of the export's provider(s) and days count.
With ``key="project_id"`` (or ``api_key_id``, ``workspace_id``) rows are also split by that id, which the
ledger holds in the tag ``key_tag`` (same name by default): the ledger itself never stores API keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.call import from_pusd
from ..core.money import parse_usd
from .exports import ExportFormatError, read_export

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

    from ..ledger.sqlite import Ledger

__all__ = ["ExportFormatError", "Reconciliation", "reconcile"]

STATUSES = ("match", "differs", "only in export", "only in ledger")
_KEYS = ("project_id", "api_key_id", "workspace_id")
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def model_key(model: str | None) -> str:
    """The model name compared: without a snapshot date suffix."""
    return _DATE_SUFFIX.sub("", model) if model else "(unknown)"


@dataclass
class Reconciliation:
    """The comparison: one row per day × model (× key) with both sides, the difference and a status."""

    rows: pd.DataFrame
    basis: str  # "cost" or "tokens"
    tolerance: Decimal
    rel_tolerance: Decimal
    source: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def _where(self, status: str) -> pd.DataFrame:
        return self.rows[self.rows["status"] == status].reset_index(drop=True)

    @property
    def matches(self) -> pd.DataFrame:
        return self._where("match")

    @property
    def differences(self) -> pd.DataFrame:
        return self._where("differs")

    @property
    def only_in_export(self) -> pd.DataFrame:
        return self._where("only in export")

    @property
    def only_in_ledger(self) -> pd.DataFrame:
        return self._where("only in ledger")

    @property
    def ok(self) -> bool:
        """True when every row matches."""
        return self.counts.get("match", 0) == len(self.rows)

    def __str__(self) -> str:
        parts = ", ".join(f"{self.counts.get(s, 0)} {s}" for s in STATUSES)
        totals = ""
        if self.basis == "cost":
            export = sum(self.rows["export_cost_usd"].dropna(), Decimal(0))
            ledger = sum(self.rows["ledger_cost_usd"].dropna(), Decimal(0))
            unpriced = int(self.rows["ledger_unpriced"].sum())  # billed, no price: not in the ledger's cost
            totals = f" · export ${export} vs ledger ${ledger}"
            totals += f" + {unpriced:,} unpriced" if unpriced else ""
        return f"reconciled {self.source} by {self.basis}: {parts}{totals}"

    def _repr_html_(self) -> str:
        import html

        shown = self.rows[self.rows["status"] != "match"].head(50)
        table = shown.to_html(index=False) if len(shown) else "<p>every row matches</p>"
        return f"<div class='llmcost-reconcile'><p>{html.escape(str(self))}</p>{table}</div>"

    def chart(self) -> alt.Chart:
        """Grouped bars per day: the export's and the ledger's cost (or tokens); tooltips list the rows."""
        import altair as alt
        import pandas as pd

        measure = "cost_usd" if self.basis == "cost" else "input_tokens"
        frame = pd.DataFrame(
            {
                "day": list(self.rows["day"]) * 2,
                "model": list(self.rows["model"]) * 2,
                "source": ["export"] * len(self.rows) + ["ledger"] * len(self.rows),
                "value": [
                    float(v) if v is not None and v == v else 0.0
                    for v in [*self.rows[f"export_{measure}"], *self.rows[f"ledger_{measure}"]]
                ],
                "status": list(self.rows["status"]) * 2,
            }
        )
        title = "Cost (USD)" if self.basis == "cost" else "Input tokens"
        return (
            alt.Chart(frame, title=f"Provider export vs ledger — {title.lower()} per day")
            .mark_bar()
            .encode(
                x=alt.X("day:O", title="Day (UTC)"),
                xOffset=alt.XOffset("source:N"),
                y=alt.Y("sum(value):Q", title=title),
                color=alt.Color("source:N", scale=alt.Scale(domain=["export", "ledger"])),
                tooltip=["day:O", "source:N", "model:N", "status:N", alt.Tooltip("value:Q", format=",.6f")],
            )
        )


def _days(rows: list[dict]) -> tuple[str, str]:
    first, last = min(r["day"] for r in rows), max(r["day"] for r in rows)
    return first, (date.fromisoformat(last) + timedelta(days=1)).isoformat()


def _ledger_sides(ledger: Ledger, providers: set[str], start: str, end: str, key_tag: str | None) -> dict:
    """Ledger totals by (day, model key, key value), computed in SQL."""
    found = ledger.daily_totals(start, end, providers, key_tag)
    sides: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for day, model, key, n, n_in, n_out, n_cached, pusd, unpriced in found:
        side = sides.setdefault(
            (day, model_key(model), key),
            {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
             "cost_usd": Decimal(0), "unpriced": 0},
        )  # fmt: skip
        side["requests"] += int(n)
        side["input_tokens"] += int(n_in or 0)  # PostgreSQL sums come back as Decimal
        side["output_tokens"] += int(n_out or 0)
        side["cache_read_tokens"] += int(n_cached or 0)
        side["cost_usd"] += from_pusd(int(pusd or 0))
        side["unpriced"] += int(unpriced or 0)
    return sides


def _export_sides(rows: list[dict], key: str | None) -> dict:
    sides: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for row in rows:
        side = sides.setdefault(
            (row["day"], model_key(row["model"]), row[key] if key else None),
            {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cost_usd": None},
        )
        for name in ("requests", "input_tokens", "output_tokens", "cache_read_tokens"):
            side[name] += row[name]
        if row["cost_usd"] is not None:
            side["cost_usd"] = (side["cost_usd"] or Decimal(0)) + row["cost_usd"]
    return sides


def _tolerance(name: str, value: Decimal | str) -> Decimal:
    rule = "a non-negative decimal number"
    return parse_usd(value, name, rule=rule, invalid=rule)


def _within(ours: Decimal | int, theirs: Decimal | int, absolute: Decimal, relative: Decimal) -> bool:
    return abs(Decimal(ours) - Decimal(theirs)) <= max(absolute, relative * abs(Decimal(theirs)))


def reconcile(
    ledger: Ledger | str | Path | None,
    provider_export: str | Path | dict | list,
    *,
    tolerance: Decimal | str = "0.01",
    rel_tolerance: Decimal | str = "0.01",
    key: str | None = None,
    key_tag: str | None = None,
) -> Reconciliation:
    """Compare ``ledger`` with a provider's usage or cost export (path or parsed JSON), by day × model.

    A row matches when the difference is within ``tolerance`` USD or ``rel_tolerance`` of the export's value
    (token exports: within ``rel_tolerance`` of each token count).

    >>> llmcost_nb.reconcile(Ledger(), "costs.csv", tolerance="0.05").differences   # doctest: +SKIP
    """
    import pandas as pd

    from ..tracking.resolve import resolve_ledger

    if key is not None and key not in _KEYS:
        raise ValueError(f"unknown key {key!r}, allowed values: {', '.join(_KEYS)}")
    tolerance, rel_tolerance = _tolerance("tolerance", tolerance), _tolerance("rel_tolerance", rel_tolerance)
    ledger = resolve_ledger(ledger)
    rows = read_export(provider_export)
    if not rows:
        raise ExportFormatError("the export holds no rows")
    basis = "cost" if any(r["cost_usd"] is not None for r in rows) else "tokens"
    start, end = _days(rows)
    providers = {r["provider"] for r in rows if r["provider"]}
    ours = _ledger_sides(ledger, providers, start, end, (key_tag or key) if key else None)
    theirs = _export_sides(rows, key)
    records = []
    for day, model, key_value in sorted(set(ours) | set(theirs), key=lambda k: (k[0], k[1], k[2] or "")):
        mine, other = ours.get((day, model, key_value)), theirs.get((day, model, key_value))
        if mine is None:
            status = "only in export"
        elif other is None:
            status = "only in ledger"
        elif basis == "cost":
            status = (
                "match"
                if _within(mine["cost_usd"], other["cost_usd"] or 0, tolerance, rel_tolerance)
                else "differs"
            )
        else:
            same = all(
                _within(mine[n], other[n], Decimal(0), rel_tolerance)
                for n in ("input_tokens", "output_tokens")
            )
            status = "match" if same else "differs"
        record = {"day": day, "model": model, "key": key_value, "status": status}
        for name in ("cost_usd", "input_tokens", "output_tokens", "cache_read_tokens", "requests"):
            record[f"export_{name}"] = other[name] if other else None
            record[f"ledger_{name}"] = mine[name] if mine else None
        record["ledger_unpriced"] = mine["unpriced"] if mine else 0
        export_cost, ledger_cost = record["export_cost_usd"], record["ledger_cost_usd"]
        record["difference_usd"] = (
            (ledger_cost or Decimal(0)) - (export_cost or Decimal(0)) if basis == "cost" else None
        )
        records.append(record)
    frame = pd.DataFrame.from_records(
        records,
        columns=[
            "day",
            "model",
            "key",
            "status",
            "export_cost_usd",
            "ledger_cost_usd",
            "difference_usd",
            "export_input_tokens",
            "ledger_input_tokens",
            "export_output_tokens",
            "ledger_output_tokens",
            "export_cache_read_tokens",
            "ledger_cache_read_tokens",
            "export_requests",
            "ledger_requests",
            "ledger_unpriced",
        ],
    )
    for name in (
        "key",
        *(
            f"{side}_{n}"
            for side in ("export", "ledger")
            for n in ("input_tokens", "output_tokens", "cache_read_tokens", "requests")
        ),
    ):
        # a side with no row shows None (not NaN, and counts stay ints)
        frame[name] = pd.Series([r[name] for r in records], index=frame.index, dtype=object)
    counts = {status: int((frame["status"] == status).sum()) for status in STATUSES}
    source = Path(provider_export).name if isinstance(provider_export, str | Path) else "export"
    return Reconciliation(frame, basis, tolerance, rel_tolerance, source=source, counts=counts)
