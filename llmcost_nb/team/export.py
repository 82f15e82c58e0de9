"""Exports of the ledger to team tools: Weights & Biases runs and OpenTelemetry spans.

>>> from llmcost_nb.team import export
>>> export.wandb(Ledger(), project="prompt-lab", since="2026-11-01")     # doctest: +SKIP
[ExportedRun(name='session 3f2a…', calls=42, cost=Decimal('0.8120'), ...)]
>>> export.otel(Ledger(), tracer_provider)                                # doctest: +SKIP

``wandb`` needs the ``wandb`` extra; OpenTelemetry the ``otel`` extra (see :mod:`llmcost_nb.team.otel`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.columns import FRAME_COLUMNS, subset
from .otel import COST_ATTRIBUTE, enable_otel, export_spans, span_attributes

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.sqlite import Ledger

__all__ = ["COST_ATTRIBUTE", "ExportedRun", "enable_otel", "otel", "span_attributes", "wandb"]

otel = export_spans
RUN_TAG_KEYS = ("project", "team", "environment")  # call tags that become W&B run tags, with the models
_GROUPINGS = ("session", "scope", "experiment")
_TABLE_COLUMNS = subset(FRAME_COLUMNS, (  # the W&B calls table: these columns of Ledger.calls()
    "ts", "provider", "api", "model", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "cost_usd", "latency_ms", "status", "usage_source", "tags",
))  # fmt: skip


@dataclass
class ExportedRun:
    """One W&B run written by :func:`wandb`."""

    run_id: str
    name: str
    calls: int
    cost: Decimal
    tags: tuple[str, ...]
    dir: Path


def wandb(
    ledger: Ledger | None = None,
    *,
    project: str,
    since: Any = None,
    until: Any = None,
    by: str = "session",
    entity: str | None = None,
    **filters: Any,
) -> list[ExportedRun]:
    """Log one W&B run per notebook session (``by="session"``), scope (``"scope"``) or ``experiment`` tag,
    each with a per-call table, a cost-by-model table, cost metrics per call and a cost summary. A billed call
    with no known price is logged as ``unpriced`` (no cost metric for its step, an empty cost in the tables,
    counted in ``llmcost/unpriced_calls``), never as $0; calls whose tokens were estimated are counted in
    ``llmcost/estimated_calls`` and have ``usage_source == "estimated"`` in the calls table. Run tags:
    the calls' ``project``, ``team`` and ``environment`` tags and their models (``team:search``,
    ``model:gpt-4.1``). Offline with ``WANDB_MODE=offline``.

    >>> export.wandb(Ledger(), project="lab", since="2026-11-01", tags={"team": "search"})  # doctest: +SKIP
    """
    if by not in _GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}, allowed values: {', '.join(_GROUPINGS)}")
    try:
        import wandb as wb
    except ImportError:
        raise ImportError("W&B export needs the wandb extra: pip install 'llmcost_nb[wandb]'") from None
    from ..tracking.scope import get_session

    ledger = ledger if ledger is not None else get_session().ledger
    frame = ledger.calls(since=since, until=until, **filters)
    if by == "experiment":
        keys = [tags.get("experiment") or "(no experiment)" for tags in frame["tags"]]
    else:
        keys = [value or "(none)" for value in frame[f"{by}_id"]]
    frame = frame.assign(_group=keys)
    runs = []
    for key, calls in frame.groupby("_group", sort=True):
        runs.append(_log_run(wb, project, entity, by, str(key), calls.drop(columns="_group")))
    return runs


def _run_tags(calls: pd.DataFrame) -> tuple[str, ...]:
    tags: set[str] = set()
    for call_tags in calls["tags"]:
        tags.update(f"{key}:{call_tags[key]}" for key in RUN_TAG_KEYS if key in call_tags)
    tags.update(f"model:{model}" for model in calls["model"].dropna().unique())
    return tuple(sorted(tag[:64] for tag in tags))  # W&B caps a tag at 64 characters


def _common_tags(calls: pd.DataFrame) -> dict[str, str]:
    """Tags every call of the run shares (the run's config)."""
    counts = Counter(item for tags in calls["tags"] for item in tags.items())
    return dict(sorted(item for item, n in counts.items() if n == len(calls)))


def _log_run(
    wb: Any, project: str, entity: str | None, by: str, key: str, calls: pd.DataFrame
) -> ExportedRun:
    costs = [c if c is not None else Decimal(0) for c in calls["cost_usd"]]
    total = sum(costs, Decimal(0))
    unpriced = [bool(b) and c is None for b, c in zip(calls["billed"], calls["cost_usd"], strict=True)]
    estimated = [source == "estimated" for source in calls["usage_source"]]
    tags = _run_tags(calls)
    name = f"{by} {key}" if by != "experiment" else key
    config = {
        "llmcost_grouping": by,
        "llmcost_key": key,
        "llmcost_tags": _common_tags(calls),
        "first_call": calls["ts"].min().isoformat(),
        "last_call": calls["ts"].max().isoformat(),
    }
    run = wb.init(
        project=project,
        entity=entity,
        name=name,
        group=by,
        job_type="llm-cost",
        tags=list(tags),
        config=config,
        reinit="create_new",
    )
    try:
        running = Decimal(0)
        for step, (cost, known, row) in enumerate(
            zip(costs, calls["cost_usd"], calls.itertuples(index=False), strict=True)
        ):
            running += cost
            run.log(
                {
                    **({"llmcost/cost_usd": float(cost)} if known is not None else {}),  # unknown is no $0
                    "llmcost/cumulative_cost_usd": float(running),
                    "llmcost/input_tokens": int(row.input_tokens),
                    "llmcost/output_tokens": int(row.output_tokens),
                },
                step=step,
            )
        table = calls[list(_TABLE_COLUMNS)].assign(
            ts=calls["ts"].map(lambda t: t.isoformat()),
            cost_usd=[float(c) if c is not None else None for c in calls["cost_usd"]],
            cost_usd_exact=[str(c) if c is not None else None for c in calls["cost_usd"]],
            unpriced=unpriced,
            tags=[json.dumps(t, sort_keys=True) for t in calls["tags"]],
            latency_ms=calls["latency_ms"].fillna(0.0),
        )
        by_model = _by_model(calls, costs, unpriced, estimated)
        run.log(
            {
                "llmcost/calls": wb.Table(dataframe=table),
                "llmcost/cost_by_model": wb.Table(dataframe=by_model),
            }
        )
        run.summary.update(
            {
                "llmcost/total_cost_usd": float(total),
                "llmcost/total_cost_usd_exact": str(total),
                "llmcost/calls": len(calls),
                "llmcost/billed_calls": int(calls["billed"].sum()),
                "llmcost/unpriced_calls": sum(unpriced),
                "llmcost/estimated_calls": sum(estimated),
                "llmcost/total_input_tokens": int(calls["input_tokens"].sum()),
                "llmcost/total_output_tokens": int(calls["output_tokens"].sum()),
                **{f"llmcost/cost_usd/{row.model}": float(row.cost_usd) for row in by_model.itertuples()},
            }
        )
        run_id, run_dir = run.id, Path(run.dir).parent
    finally:
        run.finish()
    return ExportedRun(run_id=run_id, name=name, calls=len(calls), cost=total, tags=tags, dir=run_dir)


def _by_model(
    calls: pd.DataFrame, costs: list[Decimal], unpriced: list[bool], estimated: list[bool]
) -> pd.DataFrame:
    import pandas as pd

    rows: dict[str, list[Any]] = {}
    for model, cost, n_in, n_out, no_price, guessed in zip(
        calls["model"].fillna("(unknown)"), costs, calls["input_tokens"], calls["output_tokens"], unpriced,
        estimated, strict=True,
    ):
        row = rows.setdefault(model, [0, 0, 0, Decimal(0), 0, 0])
        row[0] += 1
        row[1] += int(n_in)
        row[2] += int(n_out)
        row[3] += cost
        row[4] += no_price
        row[5] += guessed
    return pd.DataFrame(
        [(model, n, i, o, float(c), str(c), u, e) for model, (n, i, o, c, u, e) in sorted(rows.items())],
        columns=["model", "calls", "input_tokens", "output_tokens", "cost_usd", "cost_usd_exact", "unpriced",
                 "estimated"],
    )
