"""Analysis speed and memory on a generated 1M-row ledger (and charts on 10M), against naive pandas.

    .venv/bin/python benchmarks/bench_analysis.py [--rows 1000000] [--skip-10m] [--dir DIR]

Prints, each measured in this run:
- generator speed (rows/s) next to a plain ``executemany`` of the same rows into the same schema;
- the first query's catch-up (building the rollups from nothing), then warm medians of
  ``summary(by=("day","model"))``, tag summaries and a full dashboard refresh;
- the same day×model query by ``pandas.read_sql`` + ``groupby`` (in a child process, with its own peak
  RSS) and the ratio;
- this process's peak RSS above its baseline (after imports) over all the analysis work;
- on a 10M-row ledger (the 1M rows copied ten times): every chart's data rows, spec size and render time.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"day_model_ms": 150, "tag_ms": 150, "refresh_s": 1.0, "rss_mb": 200}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_ms(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


GENERATE = """
import json, resource, time, sqlite3, sys
from llmcost_nb.sample_data import generate
path, rows = sys.argv[1] if len(sys.argv) > 1 else {path!r}, {rows}
start = time.perf_counter()
sample = generate(rows=rows, days=90, seed=42, path=path, end="2026-11-20")
gen_s = time.perf_counter() - start
conn = sample.ledger.connection
# the same rows again, as tuples: the executemany baseline
data = conn.execute("SELECT * FROM calls").fetchall()
cols = [d[0] for d in conn.execute("SELECT * FROM calls LIMIT 0").description][1:]
conn.execute("CREATE TABLE bench_copy AS SELECT * FROM calls WHERE 0")
conn.execute("CREATE INDEX bench_copy_ts ON bench_copy(ts)")
conn.execute("CREATE INDEX bench_copy_scope ON bench_copy(scope_id)")
ins = f"INSERT INTO bench_copy ({{', '.join(cols)}}) VALUES ({{', '.join('?' * len(cols))}})"
body = [r[1:] for r in data]
del data
start = time.perf_counter()
conn.execute("BEGIN"); conn.executemany(ins, body); conn.execute("COMMIT")
plain_s = time.perf_counter() - start
conn.execute("DROP TABLE bench_copy"); conn.execute("VACUUM")
print(json.dumps({{"rows": sample.rows, "gen_s": gen_s, "plain_s": plain_s,
                   "spike": str(sample.spike_day), "runaway": str(sample.runaway_day)}}))
"""

PANDAS = """
import json, resource, time, sqlite3
import pandas as pd
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
conn = sqlite3.connect({path!r})
start = time.perf_counter()
frame = pd.read_sql("SELECT ts, model, input_tokens, output_tokens, cache_read_tokens, cost_pusd, "
                    "latency_ms, "
                    "status FROM calls", conn)
frame["day"] = frame["ts"].str[:10]
out = frame.groupby(["day", "model"]).agg(requests=("ts", "size"), input_tokens=("input_tokens", "sum"),
      output_tokens=("output_tokens", "sum"), cost_pusd=("cost_pusd", "sum"),
      avg_latency=("latency_ms", "mean"), p95=("latency_ms", lambda s: s.quantile(0.95)))
elapsed = time.perf_counter() - start
print(json.dumps({{"s": elapsed, "groups": len(out),
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="llmcost-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)

    gen = child(GENERATE.format(path=str(path), rows=args.rows))
    print(f"ledger: {gen['rows']:,} calls in {path}")
    print(
        f"generator: {gen['rows'] / gen['gen_s']:,.0f} rows/s ({gen['gen_s']:.1f} s); "
        f"plain executemany of the "
        f"same rows: {gen['rows'] / gen['plain_s']:,.0f} rows/s; ratio {gen['plain_s'] / gen['gen_s']:.2f}"
    )

    import altair  # noqa: F401  (imports count in the baseline, not in the analysis)
    import ipywidgets  # noqa: F401
    import pandas  # noqa: F401
    import vl_convert  # noqa: F401

    from llmcost_nb import Ledger
    from llmcost_nb.ledger.query import Query
    from llmcost_nb.ledger.rollups import plan
    from llmcost_nb.notebook.dashboard import dashboard

    base_rss = rss_mb()
    ledger = Ledger(path)
    start = time.perf_counter()
    ledger.summary(by=("day", "model"))
    print(f"first query (builds the rollups from nothing): {time.perf_counter() - start:.1f} s")

    queries = {
        "summary(by=('day','model'))": (lambda: ledger.summary(by=("day", "model")), ("day", "model"), {}),
        "summary(by='tag:team')": (lambda: ledger.summary(by="tag:team"), ("tag:team",), {}),
        "summary(by=('month','user'), where=tag:team)": (
            lambda: ledger.summary(by=("month", "user"), where={"tag:team": "research"}),
            ("month", "user"),
            {"where": {"tag:team": "research"}},
        ),
        "summary(by=('tag:team','model'))": (
            lambda: ledger.summary(by=("tag:team", "model")),
            ("tag:team", "model"),
            {},
        ),
        "anomalies()": (lambda: ledger.anomalies(), None, {}),
        "forecast(as_of=2026-11-20)": (lambda: ledger.forecast(as_of="2026-11-20"), None, {}),
    }
    results = {}
    for name, (fn, by, kw) in queries.items():
        results[name] = median_ms(fn)
        path_taken = plan(Query.parse(by, **kw)).path if by else "rollups"
        print(f"  {name:<48} {results[name]:8.1f} ms  ({path_taken})")

    board = dashboard(ledger, budget=5000)
    refresh = median_ms(board.refresh, repeat=5) / 1000
    print(f"  {'dashboard refresh (queries, tiles, table, visible chart)':<48} {refresh * 1000:8.1f} ms")
    board.provider.value = "openai"
    filtered = median_ms(board.refresh, repeat=5) / 1000
    print(f"  {'dashboard refresh, filtered by provider':<48} {filtered * 1000:8.1f} ms")
    used = rss_mb() - base_rss
    print(f"peak RSS above baseline (after imports): {used:.0f} MB")

    pandas_run = child(PANDAS.format(path=str(path)))
    day_model = results["summary(by=('day','model'))"]
    print(
        f"naive pandas.read_sql + groupby (day, model): {pandas_run['s'] * 1000:,.0f} ms, "
        f"peak RSS +{pandas_run['rss_mb']:.0f} MB; "
        f"ratio to summary: {pandas_run['s'] * 1000 / day_model:,.0f}x"
    )

    verdict = {
        "day_model_ms": day_model <= GOALS["day_model_ms"],
        "tag_ms": results["summary(by='tag:team')"] <= GOALS["tag_ms"],
        "refresh_s": max(refresh, filtered) <= GOALS["refresh_s"],
        "rss_mb": used <= GOALS["rss_mb"],
    }
    print("goals:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in verdict.items()))
    ledger.close()
    if not args.skip_10m:
        ten_million(path, work)


def ten_million(path: Path, work: Path) -> None:
    """Charts on ten times the ledger: no MaxRowsError, specs under 1 MB."""
    import shutil

    from llmcost_nb import Ledger
    from llmcost_nb.notebook import charts
    from llmcost_nb.notebook.display import chart_svg

    big = work / "bench10.db"
    shutil.copyfile(path, big)
    ledger = Ledger(big)
    conn = ledger.connection
    cols = [d[0] for d in conn.execute("SELECT * FROM calls LIMIT 0").description][1:]
    start = time.perf_counter()
    for _ in range(9):
        conn.execute("BEGIN")
        conn.execute(
            f"INSERT INTO calls ({', '.join(cols)}) SELECT {', '.join(cols)} FROM calls "
            f"WHERE id <= (SELECT MIN(id) FROM calls) + {10**6} - 1 LIMIT {10**6}"
        )
        conn.execute("COMMIT")
    total = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    print(
        f"10M ledger: {total:,} calls (copies of the 1M rows), built in {time.perf_counter() - start:.0f} s"
    )
    start = time.perf_counter()
    ledger.summary(by=())
    print(f"  rollups built in {time.perf_counter() - start:.0f} s")
    builders = {
        "spend_over_time(model, day)": lambda: charts.spend_over_time(ledger, by="model"),
        "spend_over_time(tag:user, hour)": lambda: charts.spend_over_time(
            ledger, by="tag:user", freq="hour", since="2026-11-14"
        ),
        "cumulative_spend": lambda: charts.cumulative_spend(ledger, as_of="2026-11-20", budget=50_000),
        "cost_by_tag(user)": lambda: charts.cost_by_tag(ledger, "user"),
        "token_mix": lambda: charts.token_mix(ledger),
        "latency_distribution": lambda: charts.latency_distribution(ledger),
    }
    for name, build in builders.items():
        start = time.perf_counter()
        chart = build()
        spec = chart.to_dict()  # raises MaxRowsError past 5,000 rows
        built = time.perf_counter() - start
        rows = max(len(v) for v in spec["datasets"].values())
        start = time.perf_counter()
        chart_svg(chart)
        print(
            f"  {name:<34} data rows {rows:>5,}  spec {len(json.dumps(spec)) / 1024:6.1f} KB  "
            f"build {built * 1000:6.0f} ms  render {(time.perf_counter() - start) * 1000:5.0f} ms"
        )
    ledger.close()


if __name__ == "__main__":
    main()
