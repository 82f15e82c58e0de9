"""A realistic sample ledger, generated: for notebooks, docs, tests and benchmarks.

>>> sample = generate(rows=50_000, days=60, seed=7)          # doctest: +SKIP
>>> sample.ledger.summary(by=("day", "model"))               # doctest: +SKIP

Three providers and their real model names; teams, projects, users and environments as tags; a weekday
rhythm and a gentle growth trend; streamed calls, failed attempts (unbilled) and a few unfinished streams.
Planted for the anomaly detector: a *spike* day (a batch job on an expensive model) and a *runaway* day (a
notebook cell calling a model in a loop). The sample's price table (:data:`MODELS`) is stored in the ledger as
its price overrides (``Ledger.set_price``), and every cost is what the ledger's own pricer gives for the row
(``price_source = "override"``), exact in picodollars: ``llmcost check`` re-prices the sample to the same
numbers, whatever genai-prices release is installed. Command line: ``llmcost sample OUT.db --rows N``.

:func:`sample_ledger` gives a private copy of the committed sample, optionally shifted to end on a chosen day
(``as_of``), so ``since="7d"`` shows the sample's last week.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.call import Call
from ..core.columns import WRITE_COLUMNS, call_row, insert_sql
from ..ledger.sqlite import Ledger

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MODELS", "SampleLedger", "generate", "sample_ledger", "shift_to"]

# model: provider, api, share, input median, output median, reasoning share of output, ms per output token,
# USD per Mtok (input, output, cache read, cache write)
MODELS: dict[str, tuple[Any, ...]] = {
    "gpt-4.1": ("openai", "responses", 0.16, 1500, 350, 0.0, 12, (2, 8, 0.5, 0)),
    "gpt-4.1-mini": ("openai", "chat", 0.22, 1200, 300, 0.0, 7, (0.4, 1.6, 0.1, 0)),
    "gpt-4.1-nano": ("openai", "chat", 0.08, 800, 150, 0.0, 4, (0.1, 0.4, 0.025, 0)),
    "o3": ("openai", "responses", 0.04, 2500, 1400, 0.6, 20, (10, 40, 2.5, 0)),
    "text-embedding-3-small": ("openai", "embeddings", 0.10, 600, 0, 0.0, 0, (0.02, 0, 0, 0)),
    "claude-sonnet-4-20250514": ("anthropic", "messages", 0.15, 2500, 500, 0.0, 18, (3, 15, 0.3, 3.75)),
    "claude-3-5-haiku-20241022": ("anthropic", "messages", 0.08, 1200, 250, 0.0, 9, (0.8, 4, 0.08, 1)),
    "claude-opus-4-20250514": ("anthropic", "messages", 0.01, 3000, 600, 0.0, 35, (15, 75, 1.5, 18.75)),
    "gemini-2.5-flash": ("google", "gemini", 0.12, 1500, 400, 0.2, 5, (0.3, 2.5, 0.075, 0)),
    "gemini-2.5-pro": ("google", "gemini", 0.04, 3000, 800, 0.4, 14, (1.25, 10, 0.31, 0)),
}
TEAMS = {  # team: projects, users, model preference multipliers
    "search": (("ranker", "query-rewrite"), ("ana", "ben", "chen", "svc-search"),
               {"text-embedding-3-small": 3}),
    "support": (("ticket-triage", "reply-drafts"), ("dev", "eli", "fay", "svc-support"),
                {"claude-3-5-haiku-20241022": 3}),
    "research": (("evals", "agents", "distill"), ("gus", "hana", "ivo", "jo", "kai"),
                 {"o3": 4, "gemini-2.5-pro": 3}),
    "growth": (("copy-gen", "seo"), ("lea", "max"), {"gpt-4.1-mini": 2}),
    "platform": (("gateway", "embeddings-index"), ("nia", "oli", "svc-gateway"), {"gemini-2.5-flash": 2}),
}  # fmt: skip
_HOSTS = {
    "openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "google": "generativelanguage.googleapis.com",
}
_HOUR_PROFILE = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 9, 10, 11, 11, 10, 8, 6, 4, 3, 2, 2, 1]


@dataclass
class SampleLedger:
    """A generated ledger and what was planted in it (for tests, docs and the anomaly detector's demo)."""

    ledger: Ledger
    rows: int
    start: date
    end: date  # the last day, inclusive
    spike_day: date  # a batch job on claude-opus-4 (team research, env prod)
    runaway_day: date  # one notebook cell calling gpt-4.1 in a loop
    runaway_scope: str  # that cell's scope id

    @property
    def path(self) -> Path:
        return self.ledger.path


def _day(value: date | str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    return value if isinstance(value, date) else date.fromisoformat(value)


def _tagsets(rng: np.random.Generator) -> list[dict[str, str]]:
    sets = []
    for team, (projects, users, _) in TEAMS.items():
        for user in users:
            mine = (
                projects if user.startswith("svc-") else rng.permutation(projects)[: 1 + len(projects) // 2]
            )
            for project in mine:
                for env in ("prod",) if user.startswith("svc-") else ("dev", "staging"):
                    sets.append({"team": team, "project": str(project), "user": user, "env": env})
    return sets


def _timestamps(rng: np.random.Generator, start: date, day_idx: np.ndarray, hours: np.ndarray) -> np.ndarray:
    import numpy as np

    base = np.datetime64(start.isoformat(), "us")
    micros = rng.integers(0, 3_600_000_000, size=len(day_idx))
    return base + (day_idx * 86_400_000_000 + hours * 3_600_000_000 + micros).astype("timedelta64[us]")


def _normal_rows(
    rng: np.random.Generator, rows: int, days: int, start: date, tagsets: list[dict[str, str]]
) -> dict[str, np.ndarray]:
    import numpy as np

    weekday = np.array([(start + timedelta(d)).weekday() < 5 for d in range(days)])
    weights = np.where(weekday, 1.0, 0.25) * (1 + 0.3 * np.arange(days) / days) * rng.lognormal(0, 0.06, days)
    per_day = rng.multinomial(rows, weights / weights.sum())
    day_idx = np.repeat(np.arange(days), per_day)
    hour_p = np.array(_HOUR_PROFILE, float) / sum(_HOUR_PROFILE)
    hours = rng.choice(24, size=rows, p=hour_p)
    ts = _timestamps(rng, start, day_idx, hours)
    # service users do most of the volume
    tag_w = np.array(
        [6.0 if t["user"].startswith("svc-") else 1.0 if t["env"] == "dev" else 0.3 for t in tagsets]
    )
    tagset = rng.choice(len(tagsets), size=rows, p=tag_w / tag_w.sum())
    names = list(MODELS)
    model = np.empty(rows, dtype=np.int64)
    teams = np.array([list(TEAMS).index(t["team"]) for t in tagsets])[tagset]
    for i, (_, _, prefer) in enumerate(TEAMS.values()):
        mask = teams == i
        p = np.array([MODELS[m][2] * prefer.get(m, 1) for m in names])
        model[mask] = rng.choice(len(names), size=int(mask.sum()), p=p / p.sum())
    return {"ts": ts, "day": day_idx, "tagset": tagset, "model": model}


def _usage(rng: np.random.Generator, model: np.ndarray, scale_in: np.ndarray | None = None) -> dict[str, Any]:
    import numpy as np

    spec = list(MODELS.values())
    n = len(model)
    in_med = np.array([s[3] for s in spec])[model]
    out_med = np.array([s[4] for s in spec])[model]
    inp = np.maximum(1, (in_med * rng.lognormal(0, 0.6, n) * (1 if scale_in is None else scale_in))).astype(
        np.int64
    )
    out = np.where(out_med > 0, np.maximum(1, out_med * rng.lognormal(0, 0.6, n)), 0).astype(np.int64)
    reasoning = (out * np.array([s[5] for s in spec])[model]).astype(np.int64)
    provider = np.array([s[0] for s in spec])[model]
    cached = np.where(rng.random(n) < 0.3, inp * rng.uniform(0.3, 0.9, n), 0).astype(np.int64)
    cached[out_med == 0] = 0
    write = np.where((provider == "anthropic") & (rng.random(n) < 0.1), (inp - cached) * 0.5, 0).astype(
        np.int64
    )
    return {"input": inp, "output": out, "reasoning": reasoning, "cache_read": cached, "cache_write": write}


def _store_prices(ledger: Ledger) -> None:
    """The sample's price table as the ledger's overrides (each for its model's provider)."""
    for model, spec in MODELS.items():
        read, write = (str(p) for p in spec[7][2:])
        ledger.set_price(model, provider=spec[0], input_mtok=str(spec[7][0]), output_mtok=str(spec[7][1]),
                         cache_read_mtok=read, cache_write_mtok=write)


_UNITS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


def _unit_pusd(pricer: Any) -> np.ndarray:
    """Picodollars per token (input, output, cache read, cache write) of each model, as ``pricer`` (the
    ledger's, with the sample's overrides) states them: USD per Mtok is 1e6 picodollars per token, and the
    sample's prices have at most 6 decimals, so every row's cost below is exactly what ``Pricer.price`` gives
    for it (``Ledger.check()`` re-prices every row to prove it)."""
    import numpy as np

    table = []
    for model, spec in MODELS.items():
        units = pricer.unit_prices(spec[0], model)
        row = [units[k] * 1_000_000 for k in _UNITS]
        if any(v != v.to_integral_value() for v in row):
            raise ValueError(f"{model}: a sample price with more than 6 decimals cannot be exact per token")
        table.append([int(v) for v in row])
    return np.array(table, dtype=np.int64)


def _cost_pusd(model: np.ndarray, u: dict[str, Any], unit: np.ndarray) -> np.ndarray:
    # integer arithmetic, exact: uncached input, output, cache reads, cache writes at their prices
    prices = unit[model]
    uncached = u["input"] - u["cache_read"] - u["cache_write"]
    return (
        uncached * prices[:, 0]
        + u["output"] * prices[:, 1]
        + u["cache_read"] * prices[:, 2]
        + u["cache_write"] * prices[:, 3]
    )


def generate(
    rows: int = 100_000,
    days: int = 90,
    seed: int = 0,
    *,
    path: str | os.PathLike[str] | None = None,
    end: date | str | None = None,
) -> SampleLedger:
    """Write a sample ledger of about ``rows`` calls over ``days`` days ending ``end`` (default: today, UTC)
    into a new file ``path`` (default: a new temporary file). The same arguments give the same ledger.

    >>> sample = generate(rows=20_000, days=60, seed=1, path="demo.db", end="2026-11-20")   # doctest: +SKIP
    >>> sample.spike_day, sample.runaway_day                                                 # doctest: +SKIP
    """
    import numpy as np

    if rows < 1000 or days < 21:
        raise ValueError(f"need rows >= 1000 and days >= 21 (got rows={rows}, days={days})")
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="llmcost-sample-")) / "ledger.db"
    ledger = Ledger(path)
    if (existing := ledger.count()) > 0:
        raise ValueError(f"{ledger.path} already holds {existing} calls: sample data goes into a new file")
    last = _day(end)
    start = last - timedelta(days - 1)
    _store_prices(ledger)
    unit = _unit_pusd(ledger.pricer)
    rng = np.random.default_rng(seed)
    tagsets = _tagsets(rng)
    tag_ids = np.array([ledger.tagset_id(t) for t in tagsets])
    names = list(MODELS)
    spike, runaway = _planted_days(start, days)
    normal = _normal_rows(rng, rows, days, start, tagsets)
    usage = _usage(rng, normal["model"])
    cost_base = _cost_pusd(normal["model"], usage, unit)
    daily = int(cost_base.sum()) / days

    # planted events, sized against the average day so they stand out at any scale
    parts = [(normal, usage, None)]
    research = [i for i, t in enumerate(tagsets) if t["team"] == "research"]
    batch_tag = next(i for i in research if tagsets[i]["env"] == "staging")
    loop_tag = next(i for i in research if tagsets[i]["env"] == "dev")
    for day, model, tag, count, factor, hours in (
        (spike, "claude-opus-4-20250514", batch_tag, max(40, rows // 300), 3.0, (1, 6)),
        (runaway, "gpt-4.1", loop_tag, max(200, rows // 60), 2.5, (14, 16)),
    ):
        idx = np.full(count, names.index(model))
        one = _cost_pusd(idx, _usage(np.random.default_rng(seed + 1), idx), unit).mean()
        ev_usage = _usage(rng, idx, scale_in=factor * daily / (one * count))
        d = np.full(count, (day - start).days)
        ts = np.sort(_timestamps(rng, start, d, rng.integers(*hours, size=count)))
        parts.append(({"ts": ts, "day": d, "tagset": np.full(count, tag), "model": idx}, ev_usage, model))

    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in ("ts", "day", "tagset", "model")}
    use = {k: np.concatenate([p[1][k] for p in parts]) for k in usage}
    total = len(cols["ts"])
    is_loop = np.concatenate([np.full(len(p[0]["ts"]), p[2] == "gpt-4.1") for p in parts])
    is_batch = np.concatenate([np.full(len(p[0]["ts"]), p[2] == "claude-opus-4-20250514") for p in parts])
    cost = _cost_pusd(cols["model"], use, unit)
    spec = list(MODELS.values())
    provider = np.array([s[0] for s in spec])[cols["model"]]
    api = np.array([s[1] for s in spec])[cols["model"]]
    streamed = (api != "embeddings") & (rng.random(total) < 0.35) & ~is_loop
    r = rng.random(total)
    status = np.where(r < 0.015, "error", np.where((r < 0.018) & streamed, "unfinished", "ok"))
    failed = status == "error"
    http = np.where(failed, rng.choice([429, 500, 503, 529], size=total), 200)
    for key in use:
        use[key] = np.where(failed, 0, use[key])
    cost = np.where(failed, 0, cost)
    ms_tok = np.array([s[6] for s in spec])[cols["model"]]
    latency = np.round(
        (rng.lognormal(np.log(450), 0.35, total) + use["output"] * ms_tok) * rng.lognormal(0, 0.2, total), 1
    )
    latency = np.where(failed, np.round(rng.uniform(80, 900, total), 1), latency)

    # scopes: dev/staging calls belong to notebook cells (one per user, project and 4 hours); prod calls and
    # the batch job (a script) to none
    env_prod = np.array([t["env"] == "prod" for t in tagsets])[cols["tagset"]]
    hour = (cols["ts"].astype("datetime64[h]") - np.datetime64(start.isoformat(), "h")).astype(np.int64)
    cell_key = np.where(
        env_prod | is_loop | is_batch, -1, hour // 4 * 10_000 + cols["tagset"]
    )  # ids ascend with time
    keys, inverse = np.unique(cell_key, return_inverse=True)
    scope_hex = [
        f"{int(k):016x}{seed & 0xFFFFFFFF:08x}{i:08x}" if k >= 0 else None for i, k in enumerate(keys)
    ]
    scope = np.array(scope_hex, dtype=object)[inverse]
    runaway_scope = f"sample-runaway-{runaway.isoformat()}"
    scope[is_loop] = runaway_scope

    order = np.argsort(cols["ts"], kind="stable")
    ts_text = np.char.add(np.datetime_as_string(cols["ts"][order], unit="us"), "Z")
    model_names = np.array(names)[cols["model"]]
    error = np.where(failed, np.char.add("HTTP ", http.astype(str)), None)
    columns = {
        "ts": ts_text, "provider": provider, "api": api, "model_requested": model_names, "model": model_names,
        "input_tokens": use["input"], "output_tokens": use["output"], "cache_read_tokens": use["cache_read"],
        "cache_write_tokens": use["cache_write"], "reasoning_tokens": use["reasoning"],
        "input_audio_tokens": np.zeros(total, np.int64), "output_audio_tokens": np.zeros(total, np.int64),
        "usage_extra": None, "cost_pusd": cost, "price_source": np.where(failed, None, "override"),
        "latency_ms": latency, "status": status, "http_status": http, "error": error,
        "billed": (~failed).astype(np.int64), "streamed": streamed.astype(np.int64), "request_id": None,
        "host": np.array([_HOSTS[spec[0]] for spec in MODELS.values()])[cols["model"]],
        "service_tier": None, "session_id": np.where(env_prod, "service", f"sample-{seed}"),
        "scope_id": scope, "attribution": np.where(scope == None, "none", "context"),  # noqa: E711
        "tagset_id": tag_ids[cols["tagset"]],
    }  # fmt: skip
    # columns this generator does not set take a default Call's values (the schema may grow)
    defaults = dict(zip(WRITE_COLUMNS, call_row(Call(), None), strict=True))
    data = [
        columns[c][order].tolist()
        if isinstance(columns.get(c), np.ndarray)
        else [columns[c] if c in columns else defaults[c]] * total
        for c in WRITE_COLUMNS
        if c != "ts"
    ]
    data.insert(0, ts_text.tolist())
    conn = ledger.connection
    with ledger._lock:
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute("PRAGMA cache_size = -262144")  # 256 MB while bulk-inserting: index pages stay in memory
        try:
            with ledger._transaction(conn):
                conn.executemany(insert_sql(), zip(*data, strict=True))
                _write_scopes(
                    conn, seed, scope[order], ts_text, tagsets, tag_ids, cols["tagset"][order], runaway_scope
                )
        finally:
            conn.execute(f"PRAGMA cache_size = {cache}")
    return SampleLedger(ledger, total, start, last, spike, runaway, runaway_scope)


def _planted_days(start: date, days: int) -> tuple[date, date]:
    """A weekday about 35% and one about 75% into the period (each with a full week before it)."""

    def weekday_near(offset: int) -> date:
        day = start + timedelta(offset)
        while day.weekday() >= 5:
            day += timedelta(1)
        return day

    return weekday_near(max(8, days * 35 // 100)), weekday_near(days * 3 // 4)


def _write_scopes(
    conn: Any,
    seed: int,
    scopes: Any,
    ts: Any,
    tagsets: list[dict[str, str]],
    tag_ids: Any,
    tagset_of: Any,
    runaway: str,
) -> None:
    first: dict[str, int] = {}
    for i, s in enumerate(scopes.tolist()):
        if s is not None and s not in first:
            first[s] = i
    rows = []
    for n, (sid, i) in enumerate(first.items()):
        tags = tagsets[int(tagset_of[i])]
        name = "agent loop" if sid == runaway else None
        rows.append(
            (
                sid,
                "cell",
                name,
                f"{tags['project']}.ipynb",
                3 + (n * 7 + seed) % 40,
                f"sample-{seed}",
                str(ts[i]),
                int(tag_ids[int(tagset_of[i])]),
            )
        )
    conn.executemany("INSERT OR IGNORE INTO scopes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


# The committed sample (sample_data/ledger.db in the repository) is generate(**SAMPLE_ARGS).
SAMPLE_ARGS: dict[str, Any] = {"rows": 12_000, "days": 60, "seed": 2026, "end": "2026-11-20"}


def sample_ledger(directory: str | os.PathLike[str] | None = None, *,
                  as_of: date | str | None = None) -> Ledger:
    """A private copy of the committed sample ledger (regenerated when the repository's copy is absent), so
    queries never touch the committed file.

    ``as_of`` (a date, ``"YYYY-MM-DD"`` or ``"today"``, UTC) moves every call and scope by the same whole
    number of days so that the sample's last day is that day: ``since="7d"`` then shows its last week. Times
    of day, tokens and costs stay as they are (so the weekday rhythm moves with the days). Without it the
    sample ends on the day it was generated for, ``SAMPLE_ARGS["end"]`` (2026-11-20).

    >>> ledger = sample_ledger(as_of="today")                   # doctest: +SKIP
    >>> ledger.summary(by=("day", "model"), since="7d")         # doctest: +SKIP
    """
    target = Path(directory or tempfile.mkdtemp(prefix="llmcost-sample-")) / "sample.db"
    committed = Path(__file__).resolve().parents[2] / "sample_data" / "ledger.db"
    if committed.exists():
        shutil.copyfile(committed, target)
        ledger = Ledger(target)
    else:
        ledger = generate(**SAMPLE_ARGS, path=target).ledger
    if as_of is not None:
        shift_to(ledger, _day(None if as_of == "today" else as_of))
    return ledger


def shift_to(ledger: Ledger, last_day: date) -> int:
    """Move every call and scope of ``ledger`` by whole days so that its last call falls on ``last_day``;
    returns the number of days moved (0 for an empty ledger). One transaction."""
    _, last = ledger.time_span()
    if last is None:
        return 0
    days = (last_day - date.fromisoformat(last[:10])).days
    if days:
        shift = f"{days:+d} days"
        conn = ledger.connection
        with ledger._lock, ledger._transaction(conn):
            conn.execute("UPDATE calls SET ts = date(substr(ts, 1, 10), ?) || substr(ts, 11)", (shift,))
            conn.execute("UPDATE scopes SET started = date(substr(started, 1, 10), ?) || substr(started, 11)",
                         (shift,))
    return days


def main(argv: list[str] | None = None) -> None:
    """``python -m llmcost_nb.sample_data OUT.db [ROWS]`` (the CLI's ``llmcost sample`` does the same)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("sample_data/ledger.db")
    sample = generate(**{**SAMPLE_ARGS, **({"rows": int(args[1])} if len(args) > 1 else {})}, path=out)
    sample.ledger.connection.execute("VACUUM")  # rollups are left to the first query: a smaller file
    sample.ledger.close()
    print(f"wrote {sample.rows} calls to {out}")


if __name__ == "__main__":
    main()
