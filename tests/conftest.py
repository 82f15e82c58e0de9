"""Shared fixtures: every test gets its own ledger file, session and warnings; capture is removed after."""

from __future__ import annotations

import pytest

import llmcost_nb
from llmcost_nb.core import warn as _warnings
from llmcost_nb.ledger import journal as _journal
from llmcost_nb.tracking import capture, scope


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh session whose default ledger lives in this test's temp dir; no capture left behind."""
    monkeypatch.setenv("LLMCOST_DB", str(tmp_path / "default-ledger.db"))
    monkeypatch.setattr(scope, "_session", None)
    _warnings.reset_warnings()
    yield
    _journal.abandon_all()  # calls not recorded yet stay in their segments, as when a process ends
    capture.uninstall()
    with scope._active_lock:
        scope._active.clear()


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
