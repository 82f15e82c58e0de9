"""The ledger: schema, exact money, tags, filters, durability and clear errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

import llmcost_nb
from llmcost_nb import Call, Ledger, LedgerError
from llmcost_nb.core.call import from_pusd, to_pusd
from llmcost_nb.ledger.sqlite import SCHEMA_VERSION


def test_schema_version_matches_migrations(ledger):
    from sqlite_utils import Database

    from llmcost_nb.ledger.migrations import migrations

    assert len(migrations.pending(Database(memory=True))) == SCHEMA_VERSION  # one migration per version
    applied = migrations.applied(Database(ledger.connection))
    assert len(applied) == SCHEMA_VERSION and migrations.pending(Database(ledger.connection)) == []


def test_new_ledger_is_wal_with_all_tables(ledger):
    conn = ledger.connection
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"calls", "tagsets", "tags", "prices", "scopes", "meta"} <= tables
    assert len(conn.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()[0]) == 32


@pytest.mark.parametrize(
    ("cost", "pusd"),
    [
        (Decimal("0.00345"), 3_450_000_000),
        (Decimal("0"), 0),
        (Decimal("1234.5678"), 1_234_567_800_000_000),
        (Decimal("0.0000000000015"), 2),  # half-even below a picodollar
        (Decimal("0.0000000000025"), 2),
        (None, None),
    ],
)
def test_picodollars_are_exact(cost, pusd):
    assert to_pusd(cost) == pusd
    if cost is not None and cost == from_pusd(pusd):
        assert from_pusd(pusd) == cost


def test_write_and_read_back_exactly(ledger):
    call = Call(provider="openai", api="chat", model="gpt-4.1", input_tokens=1000, output_tokens=200,
                cache_read_tokens=100, cost=Decimal("0.00345"), tags={"team": "search", "variant": "A"})
    call_id = ledger.write(call)
    frame = ledger.calls()
    assert list(frame.id) == [call_id]
    row = frame.iloc[0]
    assert row.cost_usd == Decimal("0.00345")
    assert row.tags == {"team": "search", "variant": "A"}
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == (1000, 200, 100)
    assert row.billed and not row.streamed
    assert str(row.ts.tz) == "UTC"


def test_rows_with_and_without_optional_values_read_back_exactly(ledger):
    """A row is inserted with only the columns it has values for: what is left out must read back as it
    was (None stays NULL, never 0 or ''), whatever the mix of rows."""
    bare = Call(model="m", billed=False, latency_ms=None)
    full = Call(provider="openai", api="responses", model_requested="gpt-4.1", model="gpt-4.1-2025-04-14",
                input_tokens=10, output_tokens=5, cache_read_tokens=2, cache_write_tokens=1,
                reasoning_tokens=3, input_audio_tokens=4, output_audio_tokens=6,
                usage_extra={"web_search": 1},
                cost=Decimal("0.123456789012"), price_source="override", latency_ms=12.5, http_status=200,
                error="none", streamed=True, request_id="req_1", host="api.openai.com", service_tier="flex",
                session_id="s", scope_id="sc", attribution="context", estimated_input_tokens=9, replayed=True,
                saved=Decimal("0.5"), tags={"team": "a"})
    for call in (bare, full, Call(model="m", billed=False, latency_ms=None)):
        ledger.write(call)
    rows = ledger.connection.execute("SELECT * FROM calls ORDER BY id").fetchall()
    columns = [d[0] for d in ledger.connection.execute("SELECT * FROM calls").description]
    first, second, third = (dict(zip(columns, row, strict=True)) for row in rows)
    assert {k for k, v in first.items() if v is None} == {
        "provider", "model_requested", "usage_extra", "cost_pusd", "price_source", "latency_ms",
        "http_status", "error", "request_id", "host", "service_tier", "session_id", "scope_id", "tagset_id",
        "estimated_input_tokens", "saved_pusd"}
    assert {k: v for k, v in first.items() if k not in ("id", "ts")} == {
        k: v for k, v in third.items() if k not in ("id", "ts")}
    assert [k for k, v in second.items() if v is None] == []
    frame = ledger.calls()
    assert frame.cost_usd.tolist() == [None, Decimal("0.123456789012"), None]
    assert frame.saved_usd.tolist() == [None, Decimal("0.5"), None]
    assert frame.usage_extra.tolist() == [None, {"web_search": 1}, None]
    assert frame.tags.tolist() == [{}, {"team": "a"}, {}]


def test_columns_match_scope_frames(ledger):
    from llmcost_nb.core.frames import CALL_COLUMNS

    ledger.write(Call(model="m"))
    assert list(ledger.calls().columns) == list(CALL_COLUMNS)


def test_update_in_place(ledger):
    call = Call(model="gpt-4.1", status="unfinished", input_tokens=5)
    ledger.write(call)
    call.status, call.output_tokens = "ok", 7
    ledger.write(call)
    frame = ledger.calls()
    assert len(frame) == 1
    assert (frame.status[0], frame.output_tokens[0]) == ("ok", 7)


def test_tag_sets_are_stored_once_and_filterable(ledger):
    for i in range(10):
        ledger.write(Call(model="m", tags={"team": "a" if i < 7 else "b"}, cost=Decimal("0.1")))
    assert ledger.connection.execute("SELECT COUNT(*) FROM tagsets").fetchone()[0] == 2
    assert ledger.count(tags={"team": "a"}) == 7
    assert ledger.total_cost(tags={"team": "b"}) == Decimal("0.3")
    assert ledger.total_cost() == Decimal("1")


@pytest.mark.parametrize("value", ["it's", 'say "hi"', "'; DROP TABLE calls; --", "naïve ☃ 日本", "x" * 5000])
def test_awkward_tags_round_trip(ledger, value):
    ledger.write(Call(model="m", tags={value: value}))
    assert ledger.calls(tags={value: value}).tags[0] == {value: value}


def test_filters(ledger):
    ledger.write(Call(model="a", provider="openai", ts="2026-01-01T00:00:00.000000Z"))
    ledger.write(Call(model="b", provider="anthropic", ts="2026-02-01T00:00:00.000000Z", billed=False))
    assert ledger.count(model="a") == 1
    assert ledger.count(since="2026-01-15") == 1
    assert ledger.count(until="2026-01-15") == 1
    assert ledger.count(billed=True) == 1
    with pytest.raises(TypeError, match="unknown filter 'colour', allowed filters: api, billed"):
        ledger.calls(colour="red")


def test_corrupt_file_gives_clear_error_and_keeps_the_file(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match=r"is not a usable llmcost_nb ledger .*Nothing was changed"):
        Ledger(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_a_ledger_another_process_keeps_locked_is_a_clear_error_not_a_corrupt_one(tmp_path, monkeypatch):
    """A new file another writer holds exclusively (before it is in WAL mode, readers wait for it): after
    the busy timeout, say so; do not tell the user to move a sound file aside."""
    monkeypatch.setattr(llmcost_nb.ledger.connection, "BUSY_TIMEOUT_MS", 1000)
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # an empty new file: a ledger once set up (another app's is refused)
    locked = r"^the ledger at .*busy.db stayed locked by another process for 1 s\. Nothing was changed"
    with pytest.raises(LedgerError, match=locked):
        Ledger(path)
    holder.execute("COMMIT")
    assert Ledger(path).count() == 0


def test_a_lock_sqlite_refuses_to_wait_for_is_waited_for_until_the_busy_timeout(tmp_path):
    """Switching a new file to WAL while another connection holds its write lock: SQLite answers "database
    is locked" at once, without its busy handler (waiting could deadlock). The open tries again until the
    lock is released, within the busy timeout, instead of saying the ledger stayed locked for 10 s."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock of a new, empty file (rollback journal mode)
    released = threading.Timer(0.3, holder.execute, ("COMMIT",))
    released.start()
    started = time.monotonic()
    try:
        ledger = Ledger(path)
    finally:
        released.join()
    assert time.monotonic() - started >= 0.3
    assert ledger.connection.execute("PRAGMA journal_mode").fetchone() == ("wal",) and ledger.count() == 0


def test_a_ledger_that_cannot_be_set_up_is_a_clear_error_and_stays_as_it_was(tmp_path):
    """A new file needs its set-up lock file beside it; where that cannot be made (here a folder is in its
    way; a read-only folder does the same), say so in one line and leave the file as it was."""
    path = tmp_path / "plain.db"
    path.touch()  # a new, empty file (another application's database is refused before this step)
    before = path.read_bytes()
    (tmp_path / "plain.db-migrate.lock").mkdir()
    with pytest.raises(LedgerError, match=r"^cannot set up the ledger at .*plain.db: .*Nothing was changed"):
        Ledger(path)
    assert path.read_bytes() == before


def test_unwritable_path_gives_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match=r"cannot open the ledger at .*LLMCOST_DB"):
        Ledger(blocker / "sub" / "ledger.db")


def test_default_path_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOST_DB", str(tmp_path / "x.db"))
    assert Ledger().path == tmp_path / "x.db"


def test_bulk_write(ledger):
    n = ledger.write_many(Call(model="m", input_tokens=i, cost=Decimal(i) / 1000) for i in range(5000))
    assert n == 5000
    assert ledger.total_cost() == sum(Decimal(i) / 1000 for i in range(5000))


def test_committed_row_survives_sigkill(tmp_path):
    """Durability: a row written before the process is killed is in the ledger afterwards."""
    path = tmp_path / "kill.db"
    script = (
        "import os, signal, llmcost_nb\n"
        f"led = llmcost_nb.Ledger({str(path)!r})\n"
        "llmcost_nb.log(model='gpt-4.1', input_tokens=10, output_tokens=5, ledger=led)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    led = Ledger(path)
    assert led.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert led.count() == 1


def test_reopen_after_fork_uses_a_new_connection(ledger):
    conn = ledger.connection
    ledger._pid = -1  # as if this were a forked child
    assert ledger.connection is not conn
    assert isinstance(ledger.connection, sqlite3.Connection)


def test_set_price_persists_and_reprices(tmp_path):
    path = tmp_path / "p.db"
    with pytest.warns(llmcost_nb.LlmcostWarning, match="no price known for model 'my-model'"):
        call = llmcost_nb.log(model="my-model", input_tokens=1_000_000, output_tokens=500_000, ledger=path)
    assert call.cost is None
    llmcost_nb.set_price("my-model", input_mtok="3", output_mtok="12", ledger=path)
    led = Ledger(path)  # a new process would see the override too
    assert led.reprice() == 1
    assert led.calls().cost_usd[0] == Decimal("9")
    assert led.pricer.price(None, "my-model", {"input_tokens": 10}, call_ts(call)).source == "override"


def call_ts(call):
    from llmcost_nb.core.call import parse_iso

    return parse_iso(call.ts)


@pytest.mark.parametrize("bad", [{"input_mtok": "-1"}, {"input_mtok": "nan"}, {"output_mtok": "inf"}])
def test_set_price_rejects_bad_prices(ledger, bad):
    prices = {"input_mtok": "1", "output_mtok": "2", **bad}
    with pytest.raises(ValueError, match="finite and non-negative"):
        ledger.set_price("m", **prices)


def statements(ledger, action):
    """The SQL statements ``action`` runs on the ledger's connection."""
    seen = []
    ledger.connection.set_trace_callback(seen.append)
    try:
        action()
    finally:
        ledger.connection.set_trace_callback(None)
    return [s.split()[0] for s in seen]


def test_a_new_tag_set_and_its_call_are_one_commit_then_one_statement(ledger):
    first = Call(provider="openai", api="chat", model="gpt-4.1", tags={"team": "a", "v": "1"})
    assert statements(ledger, lambda: ledger.write(first)) == [
        "BEGIN", "INSERT", "SELECT", "INSERT", "INSERT", "INSERT", "COMMIT"]  # tagset, id, 2 tags, call
    again = Call(provider="openai", api="chat", model="gpt-4.1", tags={"team": "a", "v": "1"})
    assert statements(ledger, lambda: ledger.write(again)) == ["INSERT"]
    assert ledger.calls().tags.tolist() == [{"team": "a", "v": "1"}] * 2


def test_tag_sets_stored_ahead_and_calls_retagged_in_one_commit(ledger):
    cells = [{"experiment": "x", "input_id": f"q{i}"} for i in range(5)]
    assert statements(ledger, lambda: ledger.store_tagsets(cells + cells))[:1] == ["BEGIN"]
    calls = [Call(provider="openai", api="chat", model="gpt-4.1", tags=tags) for tags in cells]
    assert statements(ledger, lambda: [ledger.write(c) for c in calls]) == ["INSERT"] * 5
    scored = [(c, {**c.tags, "score": "1"}) for c in calls]
    done = statements(ledger, lambda: ledger.retag(scored))
    assert done[0] == "BEGIN" and done[-1] == "COMMIT" and done.count("COMMIT") == 1 and "UPDATE" in done
    assert ledger.count(tags={"score": "1"}) == 5 and calls[0].tags["score"] == "1"
    assert ledger.count(tags={"experiment": "x", "input_id": "q3", "score": "1"}) == 1


def test_retag_mixes_known_new_shared_and_empty_tag_sets_and_a_second_ledger_agrees(ledger, tmp_path):
    calls = [Call(provider="openai", api="chat", model="gpt-4.1", tags={"v": str(i)}) for i in range(4)]
    for call in calls:
        ledger.write(call)
    sets_before = ledger.connection.execute("SELECT COUNT(*) FROM tagsets").fetchone()[0]
    ledger.retag([
        (calls[0], {"v": "1"}),                # a set stored already (calls[1]'s)
        (calls[1], {"v": "1", "score": "0"}),  # a new set ...
        (calls[2], {"score": "0", "v": "1"}),  # ... the same set in another order: stored once
        (calls[3], {}),                        # no tags at all
    ])
    assert ledger.connection.execute("SELECT COUNT(*) FROM tagsets").fetchone()[0] == sets_before + 1
    scored = {"score": "0", "v": "1"}
    assert ledger.calls().tags.tolist() == [{"v": "1"}, scored, scored, {}]
    assert ledger.count(tags={"score": "0"}) == 2 and ledger.count(tags={"v": "1"}) == 3
    assert calls[3].tags == {} and calls[2].tags == {"score": "0", "v": "1"}
    other = Ledger(ledger.path)  # a fresh cache: finds the stored sets instead of storing them again
    other.store_tagsets([{"v": "1", "score": "0"}, {"v": "9"}])
    assert other.connection.execute("SELECT COUNT(*) FROM tagsets").fetchone()[0] == sets_before + 2
    assert other.tagset_id({"score": "0", "v": "1"}) == ledger.tagset_id({"v": "1", "score": "0"})


def test_notebook_sessions_and_latest_calls_read_what_the_jupyterlab_meter_shows(ledger):
    """Per notebook and tracking session: the tracked cells' calls, exact cost, unpriced and estimated calls
    (from the notebook rollup, or from the calls when the file is read-only);
    the last calls newest first, of one session, tracked ones only on request."""
    from llmcost_nb.testing import reset
    from llmcost_nb.tracking.scope import Scope, get_session

    def priced():
        get_session().use_ledger(ledger)
        ledger.set_price("model-x", input_mtok="1", output_mtok="10")

    priced()
    first = get_session().id
    with Scope(kind="cell", notebook="/nb/a.ipynb", cell=1):
        llmcost_nb.log(model="model-x", input_tokens=100, output_tokens=0)
    reset()
    priced()
    second = get_session().id
    with Scope(kind="cell", notebook="/nb/a.ipynb", cell=1):
        llmcost_nb.log(model="model-x", input_tokens=200, output_tokens=1, tags={"t": "1"})
    llmcost_nb.log(model="model-x", input_tokens=7, output_tokens=0)  # no cell
    with Scope(kind="cell", notebook="/nb/b.ipynb", cell=4):
        llmcost_nb.log(model="model-x", input_tokens=300, output_tokens=0)
        with pytest.warns(llmcost_nb.LlmcostWarning):  # no price known: unpriced
            llmcost_nb.log(model="model-z", input_tokens=9, output_tokens=0)
    ledger.flush()
    conn = ledger.connection
    rolled_up = "SELECT COALESCE(MAX(last_id), 0) FROM rollup_state WHERE name = 'calls'"
    assert conn.execute(rolled_up).fetchone()[0] < 5
    conn.execute("PRAGMA query_only = 1")  # as a read-only file: the rollup cannot catch up; from the calls
    raw = ledger.notebook_sessions(["/nb/a.ipynb", "/nb/b.ipynb", "/nb/none.ipynb"])
    conn.execute("PRAGMA query_only = 0")
    found = ledger.notebook_sessions(["/nb/a.ipynb", "/nb/b.ipynb", "/nb/none.ipynb"])
    assert conn.execute(rolled_up).fetchone()[0] == 5
    assert [(*row[:4], *row[6:]) for row in found] == [  # ..., calls, picodollars, unpriced, estimated
        ("/nb/a.ipynb", first, 1, 100_000_000, 0, 0), ("/nb/a.ipynb", second, 1, 210_000_000, 0, 0),
        ("/nb/b.ipynb", second, 2, 300_000_000, 1, 0)]
    assert raw == found
    assert all(row[4] <= row[5] for row in found)
    assert ledger.notebook_sessions([]) == []

    calls = ledger.latest_calls(10, session_id=second)
    assert [(c["input_tokens"], c["notebook"], c["cell"], c["cost"], c["tags"]) for c in calls] == [
        (9, "/nb/b.ipynb", 4, None, {}), (300, "/nb/b.ipynb", 4, Decimal("0.0003"), {}),
        (7, None, None, Decimal("0.000007"), {}), (200, "/nb/a.ipynb", 1, Decimal("0.00021"), {"t": "1"})]
    tracked = ledger.latest_calls(10, session_id=second, tracked=True)
    assert [c["input_tokens"] for c in tracked] == [9, 300, 200]
    assert [c["input_tokens"] for c in ledger.latest_calls(2)] == [9, 300]
    before = ledger.latest_calls(10, session_id=second, until=calls[1]["ts"])  # until: ts < bound
    assert [c["input_tokens"] for c in before] == [7, 200]
    assert ledger.latest_calls(10, since=calls[0]["ts"], until=calls[0]["ts"]) == []
    assert ledger.latest_calls(10, since="2999-01-01") == []
    with pytest.raises(ValueError, match="limit must be a non-negative integer"):
        ledger.latest_calls(-1)
