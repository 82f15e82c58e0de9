"""Shared fixtures: every test gets its own ledger file, session and warnings; capture is removed after."""

from __future__ import annotations

import pytest

import llmcost_nb
import llmcost_nb.testing

# test_notebook_server.py imports two of this plugin's fixtures before its pytest_plugins line registers it:
# rewritten on that first import, as pytest rewrites a plugin's asserts (else a warning that it cannot be)
pytest.register_assert_rewrite("pytest_jupyter")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh session whose default ledger lives in this test's temp dir; no capture left behind, and calls
    not recorded yet stay in their segments, as when a process ends."""
    monkeypatch.setenv("LLMCOST_DB", str(tmp_path / "default-ledger.db"))
    llmcost_nb.testing.reset()
    yield
    llmcost_nb.testing.reset()


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """Not pytest-jupyter's, outside test_notebook_server.py. That module loads the plugin (pytest_plugins),
    which pytest registers for the whole run, and its two autouse fixtures would then run around every test:
    take this thread's current event loop, run a ServerApp's cleanup on it and close it. Beside Playwright's
    sync API, whose loop keeps running in this thread, that fails the browser tests' teardown whenever a
    server test ran first in the process (``-n 2``, or any order but the alphabetical one). The server
    tests import the plugin's own two fixtures, which win over these in their module."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """See :func:`jp_asyncio_loop`: no jupyter_server here to clean up."""
    yield


@pytest.fixture(scope="module")
def sample(request, tmp_path_factory):
    """A generated sample ledger for the module: ``generate(**SAMPLE)`` with the test module's
    ``SAMPLE = dict(rows=…, days=…, seed=…)`` over ``testing.sample_data.SAMPLE_ARGS`` (which ends on
    2026-11-20); tests pin exact values to those arguments."""
    from llmcost_nb.testing.sample_data import SAMPLE_ARGS, generate

    args = {**SAMPLE_ARGS, **getattr(request.module, "SAMPLE", {})}
    result = generate(**args, path=tmp_path_factory.mktemp("sample") / "sample.db")
    yield result
    result.ledger.close()


@pytest.fixture
def ledger(tmp_path):
    led = llmcost_nb.Ledger(tmp_path / "ledger.db")
    yield led
    led.close()


@pytest.fixture
def kernel_env(tmp_path, monkeypatch, tiktoken_cache):
    """For tests that start kernels: per-user dirs under this test's temp dir (returned), no API key
    (notebooks then run offline), its own default ledger."""
    from _env import API_KEYS, isolated_dirs

    for name, value in isolated_dirs(tmp_path).items():
        monkeypatch.setenv(name, value)
    for key in API_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LLMCOST_DB", str(tmp_path / "ledger.db"))
    return tmp_path


@pytest.fixture
def fake():
    from llmcost_nb.testing.fake import FakeProvider

    with FakeProvider() as server:
        yield server


@pytest.fixture
def unused_port():
    """A loopback port nothing listens on (connections are refused): bound, never listening, for the whole
    test, so no other process can take it meanwhile."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def tiktoken_cache(tmp_path_factory):
    """tiktoken's encodings without network: a writable copy of tests/data/tiktoken (cl100k_base, o200k_base)
    as TIKTOKEN_CACHE_DIR, for this process and the kernels and subprocesses the tests start."""
    import os
    import shutil
    from pathlib import Path

    source = Path(__file__).parent / "data" / "tiktoken"
    target = tmp_path_factory.mktemp("tiktoken")
    for path in source.iterdir():
        shutil.copyfile(path, target / path.name)
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    yield target
    if old is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = old
