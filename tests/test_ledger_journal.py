"""The journal of captured calls (llmcost_nb.ledger.journal): a captured call is taped to a memory-mapped
segment before it returns, and made into a priced row in a batch soon after. Tested on real openai clients
talking to the fake provider, a real SQLite ledger, and real processes killed with SIGKILL."""

from __future__ import annotations

import marshal
import os
import re
import resource
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import httpx2
import openai
import pytest
from _env import isolated_env
from genai_prices import Usage

import llmcost_nb
from llmcost_nb.ledger import journal as _journal
from llmcost_nb.ledger import segment as _segment

PROMPT = "the zebra-prompt that must not be stored"
KERNEL = tuple(int(part) for part in re.findall(r"\d+", os.uname().release)[:2])


def client(fake):
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-journal-secret", max_retries=0)


def ask(fake, text="hi"):
    return client(fake).chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": text}])


def expected_cost(resp) -> Decimal:
    usage = Usage(input_tokens=resp.usage.prompt_tokens, output_tokens=resp.usage.completion_tokens)
    return genai_prices.calc_price(usage, "gpt-4.1", provider_id="openai",
                                   genai_request_timestamp=datetime.now(UTC)).total_price


def committed(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, input_tokens, output_tokens, cost_pusd, status FROM calls "
                            "ORDER BY id").fetchall()


def texts(path) -> list[str]:
    """The ts text of every committed row, in id order."""
    with sqlite3.connect(path) as conn:
        return [ts for (ts,) in conn.execute("SELECT ts FROM calls ORDER BY id")]


def segments(path) -> list:
    return sorted(path.with_name(path.name + "-pending").glob("*.rows"))


@pytest.fixture
def no_background(monkeypatch):
    """The background flusher waits an hour: only what the test does records a taped call."""
    monkeypatch.setattr(_journal, "INTERVAL_S", 3600.0)


def test_a_call_is_taped_before_it_returns_priced_when_a_total_is_read_and_written_when_the_ledger_is(
        fake, ledger, no_background):
    with llmcost_nb.track(ledger=ledger, tags={"run": "a"}) as t:
        answers = [ask(fake, "w " * k) for k in (1, 2, 3)]
        assert committed(ledger.path) == []  # not in SQLite yet ...
        (segment,) = segments(ledger.path)  # ... but on disk: one frame per call, usage only, read later
        taped = _segment.read_exchanges(segment)
        assert [x[-3:] for x in taped] == [(None, {"usage": r.usage.to_dict(), "model": r.model}, 1)
                                           for r in answers]
        total = t.total_cost  # reading a total makes them into priced calls ...
    costs = [expected_cost(r) for r in answers]
    assert total == sum(costs) and [c.cost for c in t.records] == costs
    assert committed(ledger.path) == [] and len(segments(ledger.path)) == 1
    assert ledger.count() == 3  # ... reading the ledger writes their rows
    assert committed(ledger.path) == [
        (i + 1, r.usage.prompt_tokens, r.usage.completion_tokens, int(c * 10**12), "ok")
        for i, (r, c) in enumerate(zip(answers, costs, strict=True))]
    assert [c.id for c in t.records] == [1, 2, 3]
    assert segments(ledger.path) == []
    assert ledger.calls().tags.tolist() == [{"run": "a"}] * 3


def test_a_call_kept_while_the_ledger_is_locked_is_written_by_a_flush_without_waiting_for_the_retry(
        fake, ledger, no_background):
    from _faultkit import LockHolder

    ledger.connection.execute("PRAGMA busy_timeout = 50")
    holder = LockHolder(ledger.path)
    try:
        with pytest.warns(llmcost_nb.LlmcostWarning, match="database is locked"), \
                llmcost_nb.track(ledger=ledger) as t:
            ask(fake)
            assert t.total_cost > 0  # made into a priced call ...
            ledger.flush()  # ... whose write fails (as it would on the background thread)
    finally:
        holder.release()
    (call,) = t.records
    assert call.recorded and call.id is None and len(segments(ledger.path)) == 1
    assert call.id is None and len(segments(ledger.path)) == 1  # asking for the id again writes nothing
    ledger.flush()  # written now, without waiting for the retry
    assert call.id == 1
    assert committed(ledger.path)[0][:3] == (1, call.input_tokens, call.output_tokens)
    assert segments(ledger.path) == []


def test_reading_totals_prices_and_counts_taped_calls_but_calls_no_listener_and_writes_nothing(
        fake, ledger, no_background):
    heard = []
    session = llmcost_nb.get_session()
    session.listeners.append(lambda call, scope: heard.append((call.cost, scope)))
    with llmcost_nb.track(ledger=ledger) as t:
        answers = [ask(fake, "w " * k) for k in (1, 2)]
        costs = [expected_cost(r) for r in answers]
        assert (t.total_cost, session.total_cost, session.call_count) == (sum(costs), sum(costs), 2)
        assert [c.cost for c in t.records] == costs and t.unpriced == 0 and list(t.calls.cost_usd) == costs
        assert [c.id for c in t.records] == [None, None]  # a plain value: reading it writes nothing
        assert heard == [] and committed(ledger.path) == []
        assert t.total_cost == sum(costs) and session.call_count == 2  # the same answer when read again
        assert heard == [] and committed(ledger.path) == []
    assert heard == [(c, t) for c in costs]  # the scope's end shows them to the listeners, once each
    assert committed(ledger.path) == []  # ... and still writes nothing
    ledger.flush()
    assert [c.id for c in t.records] == [1, 2] and heard == [(c, t) for c in costs]


def test_a_flush_shows_the_listeners_the_calls_before_it_commits_them(fake, ledger, no_background):
    seen = []
    session = llmcost_nb.get_session()
    session.listeners.append(lambda call, scope: seen.append((call.id, len(committed(ledger.path)))))
    with llmcost_nb.track(ledger=ledger) as t:
        ask(fake)
        assert t.total_cost > 0 and seen == []
        ledger.flush()
        assert seen == [(None, 0)] and [c.id for c in t.records] == [1]


def test_the_background_thread_records_within_the_interval(fake, ledger):
    with llmcost_nb.track(ledger=ledger):
        ask(fake)
        deadline = time.monotonic() + 5
        while not committed(ledger.path):  # no read of ours: the flusher thread, 0.1 s after the call
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert len(committed(ledger.path)) == 1


def test_after_a_commit_the_next_call_is_taped_into_a_segment_made_ahead_and_exit_leaves_none(fake, tmp_path):
    """At a notebook's pace every call comes after the flusher's commit sealed the last segment: the
    flusher makes the next one then (a file, its first page written), so the call only copies its record."""
    db = tmp_path / "spare.db"
    script = """
import sqlite3, sys, time, llmcost_nb, openai
from pathlib import Path
pending = Path(sys.argv[2] + "-pending")
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-x", max_retries=0)
ledger = llmcost_nb.Ledger(sys.argv[2])
def ask():
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
def committed():
    with sqlite3.connect(sys.argv[2]) as conn:
        return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
with llmcost_nb.track(ledger=ledger):
    ask()
    first = {p.name for p in pending.glob("*.rows")}
    deadline = time.monotonic() + 10
    while committed() < 1 or {p.name for p in pending.glob("*.rows")} in (first, set()):
        assert time.monotonic() < deadline, "no segment made ahead"
        time.sleep(0.01)
    spare = {p.name for p in pending.glob("*.rows")}
    ask()
    print(len(first), len(spare), spare != first, {p.name for p in pending.glob("*.rows")} == spare)
"""
    proc = subprocess.run([sys.executable, "-c", script, fake.openai_base_url, str(db)],
                          env=isolated_env(tmp_path), capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    # one segment for the first call; once it was committed, a new one waiting; the second call went into it
    assert proc.stdout == "1 1 True True\n"
    assert segments(db) == []  # the exit removed it once its call was committed
    assert committed(db)[1][1:3] == committed(db)[0][1:3] and len(committed(db)) == 2


def test_calls_back_to_back_each_go_into_a_segment_the_flusher_made_ahead(fake, ledger, monkeypatch):
    """Calls back to back (a loop over a dataset, an A/B grid): each commit seals the segment, and the call
    after it copies its record into a segment the flusher made, and made writable, before that commit. A call
    makes a file on its own path only for the journal's first call (made after the commit, the spare came too
    late: the next call had already made its own, ~0.5 ms and a page fault every ~20 calls after)."""
    made = []  # (thread, made writable ahead) of every segment made
    original = _segment.Segment.__init__

    def spy(self, directory, pid, *, populate=False):
        made.append((threading.current_thread().name, populate))
        original(self, directory, pid, populate=populate)

    monkeypatch.setattr(_segment.Segment, "__init__", spy)
    openai_client = client(fake)
    with llmcost_nb.track(ledger=ledger) as scope:
        deadline = time.monotonic() + 30
        while sum(1 for _, ahead in made if ahead) < 5:  # five commits at least
            assert time.monotonic() < deadline, made
            openai_client.chat.completions.create(model="gpt-4.1",
                                                  messages=[{"role": "user", "content": "hi"}])
        calls = len(scope.records)
    assert made[0] == ("MainThread", False)  # the first call's
    assert made[1:] == [("llmcost-flush", True)] * (len(made) - 1)
    assert ledger.count() == calls


@pytest.mark.skipif(not sys.platform.startswith("linux") or KERNEL < (5, 14),
                    reason="MADV_POPULATE_WRITE is Linux 5.14+")
def test_a_segment_made_ahead_takes_its_records_without_a_page_fault(tmp_path):
    """A first write into a page of a fresh file's mapping faults (one every ~20 records, on the call's
    thread); a segment made ahead has its first POPULATED_BYTES made writable when it is made."""
    record = _segment.frame(("x" * 200, 1, None))

    def faults(segment) -> int:
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for _ in range(_segment.POPULATED_BYTES // len(record)):
            assert segment.append(record)
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    plain = _segment.Segment(tmp_path, os.getpid())
    ahead = _segment.Segment(tmp_path, os.getpid(), populate=True)
    try:
        assert faults(plain) >= _segment.POPULATED_BYTES // 4096 - 2  # one a page (the first was written)
        assert faults(ahead) == 0
    finally:
        plain.close(tmp_path)
        ahead.close(tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_segment_holds_no_prompt_answer_or_key(fake, ledger, no_background):
    with llmcost_nb.track(ledger=ledger):
        resp = ask(fake, PROMPT)
        data = b"".join(p.read_bytes() for p in segments(ledger.path))
    answer = resp.choices[0].message.content.encode()
    assert data and len(answer) > 10
    for secret in (PROMPT.encode(), answer, b"sk-journal-secret", b"authorization", b"Bearer"):
        assert secret not in data


KILLED = """
import sys, llmcost_nb, openai
from llmcost_nb.ledger import journal as _journal; from llmcost_nb.ledger import segment as _segment
_journal.INTERVAL_S = 3600.0  # nothing recorded in the background: the kill finds the calls taped only
client = openai.OpenAI(base_url={base!r}, api_key="sk-x", max_retries=0)
ledger = llmcost_nb.Ledger({db!r})
with llmcost_nb.track(ledger=ledger, tags={{"run": "killed"}}):
    for k in (1, 2, 3):
        client.chat.completions.create(model="gpt-4.1", messages=[{{"role": "user", "content": "w " * k}}])
    print("done", flush=True)
    sys.stdin.read()
"""


def test_calls_taped_by_a_killed_process_are_recorded_once_by_the_next_open(fake, tmp_path):
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-c", KILLED.format(base=fake.openai_base_url, db=str(db))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "done\n"
    assert committed(db) == [] and len(segments(db)) == 1
    other = llmcost_nb.Ledger(db)  # the owner is alive and holds its segment: left alone
    assert other.count() == 0 and len(segments(db)) == 1
    other.close()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    ledger = llmcost_nb.Ledger(db)  # the next open records what the dead process taped
    rows = ledger.calls()
    assert rows.input_tokens.tolist() == [4, 5, 6] and rows.tags.tolist() == [{"run": "killed"}] * 3
    usage = [Usage(input_tokens=i, output_tokens=o) for i, o in zip(rows.input_tokens, rows.output_tokens,
                                                                     strict=True)]
    assert rows.cost_usd.tolist() == [
        genai_prices.calc_price(u, "gpt-4.1", provider_id="openai",
                                genai_request_timestamp=datetime.now(UTC)).total_price for u in usage]
    assert segments(db) == []
    notes = ledger.connection.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'pending:%'").fetchone()
    assert notes == (0,)
    ledger.close()
    assert llmcost_nb.Ledger(db).count() == 3  # opened again: nothing recorded twice


def test_a_segment_recorded_but_not_removed_is_not_recorded_again(fake, ledger, no_background):
    """The process died between the commit and the unlink: the commit noted the segment in meta."""
    with llmcost_nb.track(ledger=ledger):
        ask(fake)
        ask(fake)
        (segment,) = segments(ledger.path)
        data = segment.read_bytes()
        ledger.flush()
    assert segments(ledger.path) == [] and ledger.count() == 2
    segment.write_bytes(data)  # as if the unlink never happened
    _journal.abandon_all()  # the process dies
    ledger.close()
    again = llmcost_nb.Ledger(ledger.path)
    assert again.count() == 2 and segments(ledger.path) == []


def test_a_frame_cut_short_or_damaged_is_left_out(fake, ledger, no_background):
    with llmcost_nb.track(ledger=ledger):
        ask(fake)
        ask(fake, "w w w")
        (segment,) = segments(ledger.path)
        data = segment.read_bytes()
    assert len(data) == _segment.SEGMENT_BYTES  # preallocated, zero-filled after the frames
    first = 8 + struct.unpack_from("<I", data, 0)[0]
    end = first + 8 + struct.unpack_from("<I", data, first)[0]
    tmp = segment.with_name("cut.rows")
    tmp.write_bytes(data[:end])
    assert [x[-2]["usage"]["prompt_tokens"] for x in _segment.read_exchanges(tmp)] == [4, 6]
    tmp.write_bytes(data[:end - 3])  # the second frame lost its last bytes
    assert len(_segment.read_exchanges(tmp)) == 1
    tmp.write_bytes(data[:end - 3] + bytes(3) + data[end:])  # ... or the process died while copying it in
    assert len(_segment.read_exchanges(tmp)) == 1
    tmp.write_bytes(data[:10] + b"\xff" + data[11:])  # the first frame damaged: nothing after it trusted
    assert _segment.read_exchanges(tmp) == []
    tmp.unlink()


def as_older(taped: tuple) -> tuple:
    """The record an older version taped for the same call: 16 fields, the usage read already (genai-prices'
    keys) and the response's model, its tags a tuple of tuples."""
    part = taped[15]
    model, usage = part["model"], part["usage"]
    read = {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]}
    return (*taped[:12], tuple(map(tuple, taped[12])), taped[13], model, read)


def test_a_record_of_this_version_holds_the_usage_object_as_it_came_read_when_its_call_is_made(
        fake, ledger, no_background):
    """The call's path appends the response's usage object and model as they came (17th field 1); reading
    them into tokens, like pricing, happens when the call is made: the same tokens, model and cost as a call
    recorded at once. A usage object that cannot be read is warned about then, and the call kept without
    tokens and unpriced, as at once."""
    with llmcost_nb.track(ledger=ledger) as t:
        resp = ask(fake, "w w w")
        (segment,) = segments(ledger.path)
        (taped,) = _segment.read_exchanges(segment)
        part = {"usage": resp.usage.to_dict(), "model": resp.model}
        assert len(taped) == 17 and taped[14:] == (None, part, 1)
        (call,) = t.records
    assert (call.input_tokens, call.output_tokens, call.model, call.cost) == (
        resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.model, expected_cost(resp))
    pricer = ledger.pricer
    bad = (*taped[:15], {"usage": {"prompt_tokens": -5, "completion_tokens": 1}, "model": "gpt-4.1"}, 1)
    unreadable = r"could not read token usage from a response .*negative"
    with pytest.warns(llmcost_nb.LlmcostWarning, match=unreadable):
        made = _journal.call_from_exchange(pricer, bad)
    assert (made.status, made.input_tokens, made.output_tokens, made.model) == ("ok", 0, 0, "gpt-4.1")
    assert (made.usage_source, made.cost, made.billed) == ("unknown", None, True)  # unpriced, never $0


def test_a_body_its_record_could_not_hold_exactly_is_recorded_at_once_as_after_a_crash(fake, ledger,
                                                                                      no_background):
    """NaN (which Python's json reads, and a JSON record cannot hold: orjson writes it as null) in a count
    that may be left out: the call is not taped but recorded at once, so what a crash leaves is what the
    live process saw: the usage refused whole, with its warning, not read again from the record as a count
    left out."""
    usage = {"prompt_tokens": 5, "completion_tokens": 2,
             "prompt_tokens_details": {"cached_tokens": float("nan")}}
    fake.fail_next(status=200, body={"id": "x", "object": "chat.completion", "model": "gpt-4.1",
                                     "choices": [], "usage": usage})
    with pytest.warns(llmcost_nb.LlmcostWarning, match="could not read token usage"), llmcost_nb.track(
            ledger=ledger):
        httpx2.post(f"{fake.openai_base_url}/chat/completions", json={"model": "gpt-4.1"})
        _journal.abandon_all()  # the process dies here: what it taped is in its segment alone
    ledger.close()
    llmcost_nb.Ledger(ledger.path).count()
    assert committed(ledger.path) == [(1, 0, 0, None, "ok")]  # as any call whose usage cannot be read:
    with sqlite3.connect(ledger.path) as conn:  # unpriced, and marked so
        assert conn.execute("SELECT usage_source FROM calls").fetchall() == [("unknown",)]


def test_a_taped_call_keeps_the_time_it_was_made_and_an_older_segment_its_text_time(fake, ledger,
                                                                                    no_background):
    """The call's time is taped as time.time_ns() and formatted when the row is made; a segment a previous
    version wrote (the ledger's text in that field) is still read."""
    before = llmcost_nb.core.times.now_iso()
    with llmcost_nb.track(ledger=ledger):
        ask(fake)
        (segment,) = segments(ledger.path)
        (taped,) = _segment.read_exchanges(segment)
        after = llmcost_nb.core.times.now_iso()
        assert type(taped[0]) is int
        older = _segment.frame(("2026-01-02T03:04:05.678901Z", *as_older(taped)[1:]))
    ledger.flush()
    (ts,) = texts(ledger.path)
    assert before <= ts <= after and ts == llmcost_nb.core.times.iso_of_ns(taped[0])
    directory = ledger.path.with_name(ledger.path.name + "-pending")
    (directory / "1-older.rows").write_bytes(older + bytes(64))  # left by a dead process of an older version
    ledger.close()
    again = llmcost_nb.Ledger(ledger.path)
    assert again.count() == 2 and texts(ledger.path) == [ts, "2026-01-02T03:04:05.678901Z"]
    assert segments(ledger.path) == []


def test_a_segment_an_older_version_wrote_with_marshal_is_still_recorded(fake, ledger, no_background):
    """A record is a JSON array (orjson); older versions marshal-ed the tuple. A dead process's segment of the
    older kind is still recorded by the next open, with its tags, usage and price."""
    with llmcost_nb.track(ledger=ledger, tags={"run": "a", "team": "search"}):
        ask(fake, "w w w")
        (segment,) = segments(ledger.path)
        assert segment.read_bytes()[8:9] == b"["  # this version's record
        (taped,) = _segment.read_exchanges(segment)
    ledger.flush()
    payload = marshal.dumps(as_older(taped))
    directory = ledger.path.with_name(ledger.path.name + "-pending")
    (directory / "1-older.rows").write_bytes(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
                                             + bytes(64))
    ledger.close()
    again = llmcost_nb.Ledger(ledger.path)
    first, second = committed(ledger.path)
    assert second[1:] == first[1:] and first[1] == 6  # tokens, cost and status as the live call's
    assert again.calls().tags.tolist() == [{"run": "a", "team": "search"}] * 2
    assert segments(ledger.path) == []


def test_a_record_json_cannot_hold_is_refused_before_anything_is_written():
    """frame() refuses what a JSON array cannot hold (the taping call is then recorded at once)."""
    assert _segment.frame(("a", 1, 2.5, None, [["k", "v"]], {"input_tokens": 3}))[8:] == (
        b'["a",1,2.5,null,[["k","v"]],{"input_tokens":3}]')
    for value in (2**64, b"bytes", {1: "x"}, object()):
        with pytest.raises(TypeError):
            _segment.frame(("a", value))


def test_a_forked_child_records_only_its_own_calls(fake, ledger, no_background):
    with llmcost_nb.track(ledger=ledger):
        ask(fake)
        ask(fake)  # two calls pending in the parent when it forks
        pid = os.fork()
        if pid == 0:  # the child: one call of its own, recorded before it ends
            try:
                ask(fake)
                llmcost_nb.Ledger(ledger.path).flush()
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        assert ledger.count() == 3  # the child's one, and the parent's two (this read records them)
    assert ledger.calls().input_tokens.tolist() == [4, 4, 4]


def test_a_fork_while_another_thread_holds_the_ledger_does_not_leave_the_child_locked_out(fake, ledger):
    import threading

    with llmcost_nb.track(ledger=ledger):
        ask(fake)
    assert ledger.count() == 1
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # as the flusher thread does while it commits
        with ledger._lock:
            held.set()
            release.wait(0.3)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    pid = os.fork()  # waits for the lock: the child must not inherit it held by a thread it lacks
    if pid == 0:
        signal.alarm(10)  # a child that deadlocks dies of SIGALRM instead of hanging the test
        try:
            with llmcost_nb.track(ledger=ledger):
                ask(fake)
            os._exit(0 if llmcost_nb.Ledger(ledger.path).count() == 2 else 3)
        finally:
            os._exit(4)
    release.set()
    holder.join()
    assert os.waitpid(pid, 0)[1] == 0
    assert ledger.count() == 2
