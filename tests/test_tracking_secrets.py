"""Secrets and privacy: a planted API key and the auth headers never reach anything llmcost_nb writes — the
ledger (and its WAL), the replay cache, saved widget state, the executed notebook, its HTML export; prompt
and response text are not stored unless the user opts in (a replay recording); tag keys and values with
quotes, SQL, unicode, NULs and 100,000 characters are stored and queried safely.
"""

from __future__ import annotations

import json
import re
import sqlite3

import nbclient
import nbformat
import openai
import pytest
from _env import isolated_env, ledger_files

import llmcost_nb
from llmcost_nb.testing.fake import FakeProvider

KEYS = {
    "OPENAI_API_KEY": "sk-proj-PLANTEDopenai0123456789abcdef",
    "ANTHROPIC_API_KEY": "sk-ant-api03-PLANTEDanthropic0123456789",
    "GOOGLE_API_KEY": "AIzaPLANTEDgoogle0123456789abcdefghij",
}
HEADERS = (b"authorization", b"x-api-key", b"x-goog-api-key", b"bearer ")
PROMPT, REPLY = "zebra-private-prompt-7", "quokka-private-answer-9"

CELLS = [
    """%load_ext llmcost_nb
import anthropic, openai, llmcost_nb
from google import genai
oai = openai.OpenAI(base_url={oai!r})            # keys come from the environment, as users keep them
claude = anthropic.Anthropic(base_url={base!r})
gem = genai.Client(http_options={{"base_url": {base!r}}})
HELLO = [{{"role": "user", "content": {prompt!r}}}]""",
    """%%llmcost --tag team=search
oai.chat.completions.create(model="gpt-4.1", messages=HELLO)
for _ in oai.chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True,
                                     stream_options={{"include_usage": True}}):
    pass
claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
gem.models.generate_content(model="gemini-2.5-flash", contents={prompt!r})
print("calls done")""",
    """%%llmcost --tag team=search
try:
    oai.with_options(max_retries=0).chat.completions.create(model="gpt-4.1", messages=HELLO)
except openai.APIStatusError as exc:
    print("failed as planned:", exc.status_code)""",
    """with llmcost_nb.replay("record", path={replay!r}):
    oai.chat.completions.create(model="gpt-4.1-mini", messages=HELLO)
llmcost_nb.Ledger().summary(by="model")""",
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Execute the notebook in a real kernel (widget state saved), export HTML; return every file written."""
    from nbconvert import HTMLExporter

    root = tmp_path_factory.mktemp("secrets")
    env = isolated_env(root, **KEYS, LLMCOST_DB=str(root / "ledger" / "ledger.db"))  # keys planted on purpose
    with FakeProvider() as fake:
        fake.reply = f"{REPLY} here"
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(
                    c.format(
                        oai=fake.openai_base_url,
                        base=fake.url,
                        prompt=PROMPT,
                        replay=str(root / "cache" / "replay.jsonl"),
                    )
                )
                for c in CELLS
            ]
        )
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=120,
            store_widget_state=True,
            resources={"metadata": {"path": str(root)}},
        )

        def arm_failure(cell, cell_index, **kwargs):
            if cell_index == 2:
                fake.fail_next(status=401, times=1)

        client.on_cell_execute = arm_failure
        client.execute(env=env)
        seen = [dict(r.headers) for r in fake.requests]
    (root / "notebook.ipynb").write_text(nbformat.writes(nb))
    html, _ = HTMLExporter().from_notebook_node(nb)
    (root / "notebook.html").write_text(html)
    return root, nb, seen


@pytest.mark.slow
def test_the_keys_were_really_sent(written):
    """The planted keys did travel (so finding none below means something)."""
    _, nb, seen = written
    sent = " ".join(str(h) for h in seen)
    assert all(key in sent for key in KEYS.values())
    assert "calls done" in "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "failed as planned: 401" in "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "widgets" in nb.metadata and "application/vnd.jupyter.widget-state+json" in nb.metadata.widgets


@pytest.mark.slow
def test_no_key_anywhere_under_the_run(written):
    root, _, _ = written
    files = [p for p in root.rglob("*") if p.is_file()]
    assert {"ledger.db", "replay.jsonl", "notebook.ipynb", "notebook.html"} <= {p.name for p in files}
    found = [(p.name, key) for p in files for key in KEYS.values() if key.encode() in p.read_bytes()]
    assert found == []


@pytest.mark.slow
def test_no_auth_header_in_what_llmcost_writes(written):
    root, _, _ = written
    targets = [*ledger_files(root / "ledger" / "ledger.db"), root / "cache" / "replay.jsonl",
               root / "notebook.ipynb"]
    found = [(p.name, h) for p in targets for h in HEADERS if h in p.read_bytes().lower()]
    assert found == []
    # the HTML export embeds nbconvert's own scripts; look only at what came from the notebook's outputs
    html = (root / "notebook.html").read_text().lower()
    shown = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    assert "calls done" in shown and "gpt-4.1" in shown
    assert [h for h in HEADERS if h.decode() in shown] == []


@pytest.mark.slow
def test_prompts_and_answers_are_kept_only_where_the_user_asked(written):
    root, _, _ = written
    for path in ledger_files(root / "ledger" / "ledger.db"):
        data = path.read_bytes()
        assert PROMPT.encode() not in data and REPLY.encode() not in data, path.name
    recording = (root / "cache" / "replay.jsonl").read_bytes()  # opted in: replay needs the bodies
    assert PROMPT.encode() in recording and REPLY.encode() in recording
    with sqlite3.connect(root / "ledger" / "ledger.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 6


# -- tags: stored as data, never as SQL ---------------------------------------------------------------------
NASTY = [
    ("quote'key", 'it\'s "quoted"'),
    ("sql", "x'); DROP TABLE calls; --"),
    ("'; DELETE FROM tags; --", "v"),
    ("percent%_", "like%_wildcards"),
    ("emoji 🧪", "naïve 中文 ✓"),
    ("nul", "a\x00b"),
    ("long", "x" * 1_000),  # the longest value allowed (core/tags.py: MAX_TAG_CHARS)
    ("k" * 1_000, "long key"),
    ("json", '{"a": [1, 2]}'),
    ("newline", "line1\nline2\r\n"),
]


@pytest.mark.parametrize(("key", "value"), NASTY, ids=[f"tag{i}" for i in range(len(NASTY))])
def test_nasty_tags_are_stored_and_queried_exactly(ledger, key, value):
    llmcost_nb.log(
        model="gpt-4.1", input_tokens=1000, output_tokens=200, tags={key: value, "plain": "1"}, ledger=ledger
    )
    llmcost_nb.log(model="gpt-4.1", input_tokens=10, output_tokens=2, tags={"plain": "1"}, ledger=ledger)
    frame = ledger.calls(tags={key: value})
    assert len(frame) == 1 and frame.tags[0] == {key: value, "plain": "1"}
    assert ledger.total_cost(tags={key: value}) == ledger.calls().cost_usd[0]
    assert ledger.count(tags={key: value + "x"}) == 0 and ledger.count(tags={"plain": "1"}) == 2
    summary = ledger.summary(by=f"tag:{key}")
    assert sorted(summary.requests) == [1, 1] and value in set(summary.iloc[:, 0])
    report = ledger.check()
    assert report.ok, str(report)
    assert ledger.count() == 2


def test_request_urls_and_headers_never_reach_the_ledger(fake, ledger):
    """Gemini can carry the key in the URL (?key=...); only the host is stored."""
    client = openai.OpenAI(
        base_url=fake.openai_base_url,
        api_key=KEYS["OPENAI_API_KEY"],
        default_query={"key": KEYS["GOOGLE_API_KEY"]},
        default_headers={"x-goog-api-key": KEYS["GOOGLE_API_KEY"]},
    )
    with llmcost_nb.track(ledger=ledger):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": PROMPT}])
    assert KEYS["GOOGLE_API_KEY"] in fake.requests[-1].path  # it was sent in the URL
    ledger.close()
    data = b"".join(p.read_bytes() for p in ledger_files(ledger.path))
    for secret in (*(k.encode() for k in KEYS.values()), *HEADERS, PROMPT.encode()):
        assert secret not in data.lower() and secret not in data


# -- opt-in text storage (llmcost_nb.content) ---------------------------------------------------------------
def ask(fake, prompt, **kw):
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key=KEYS["OPENAI_API_KEY"], max_retries=0)
    return client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": prompt}], **kw
    )


def stored(ledger):
    with sqlite3.connect(ledger.path) as conn:
        return conn.execute("SELECT call_id, request, response FROM call_content ORDER BY call_id").fetchall()


def test_text_is_not_stored_by_default(fake, ledger):
    from llmcost_nb.tracking import content

    with llmcost_nb.track(ledger=ledger) as t:
        ask(fake, PROMPT)
    ledger.flush()  # the call's row, so that its id is known
    assert (
        not content.enabled() and stored(ledger) == [] and content.get(t.records[0].id, ledger=ledger) is None
    )


def test_opted_in_text_is_stored_redacted(fake, ledger):
    from llmcost_nb.tracking import content

    content.enable(redact=lambda text, kind: text.replace("zebra", f"[{kind} animal]"))
    try:
        with llmcost_nb.track(ledger=ledger) as t:
            ask(fake, f"{PROMPT} with my key {KEYS['OPENAI_API_KEY']} and Bearer abcdefgh12345678")
            for _ in ask(fake, "stream me", stream=True, stream_options={"include_usage": True}):
                pass
    finally:
        content.disable()
    first, second = (content.get(c.id, ledger=ledger) for c in t.records)
    assert (
        '"content": "[request animal]-private-prompt-7 with my key [redacted] and [redacted]"'
        in first.request
    )
    assert "This is a fake reply to: [response animal]-private-prompt-7" in first.response
    assert KEYS["OPENAI_API_KEY"] not in first.request + first.response
    # the request body as the SDK sent it (its key order is the SDK's, not ours)
    assert json.loads(second.request) == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "stream me"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert "data: [DONE]" in second.response
    with llmcost_nb.track(ledger=ledger):
        ask(fake, "after disable")
    assert len(stored(ledger)) == 2
    ledger.close()
    raw = b"".join(p.read_bytes() for p in ledger_files(ledger.path))
    assert KEYS["OPENAI_API_KEY"].encode() not in raw and b"zebra" not in raw


def test_a_raising_redactor_stores_nothing_and_warns_once(fake, ledger):
    from llmcost_nb import LlmcostWarning
    from llmcost_nb.tracking import content

    content.enable(redact=lambda text, kind: 1 / 0)
    try:
        with (
            pytest.warns(LlmcostWarning, match="could not store a call's text") as caught,
            llmcost_nb.track(ledger=ledger) as t,
        ):
            replies = [ask(fake, PROMPT).choices[0].message.content for _ in range(3)]
    finally:
        content.disable()
    assert replies == [f"This is a fake reply to: {PROMPT}"] * 3
    assert len([w for w in caught if "store a call's text" in str(w.message)]) == 1
    assert stored(ledger) == [] and len(t.records) == 3 and ledger.count() == 3


def test_enable_rejects_a_redactor_that_is_not_callable():
    from llmcost_nb.tracking import content

    with pytest.raises(TypeError, match="redact must be a callable"):
        content.enable(redact="mask")
