"""Helpers for tests/test_tracking_faults.py: a canned-response HTTP server on loopback, ledger breakers,
clients.

The canned server answers every request with one configured response: any status, body, content type and
encoding, sent with Content-Length or chunked, or it drops the connection without answering. It stands in
for the responses the fake provider never gives (malformed usage, HTML error pages, a proxy path prefix).
"""

from __future__ import annotations

import functools
import gzip
import sqlite3
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import openai
from google import genai

HELLO = [{"role": "user", "content": "hello there world"}]
KEY = "sk-fault-PLANTED-0123456789"


@dataclass
class Answer:
    body: bytes = b"{}"
    status: int = 200
    content_type: str = "application/json"
    mode: str = "plain"  # plain | chunked | drop (close the connection without answering)
    encoding: str | None = None  # gzip | deflate
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        answer: Answer = self.server.answer  # type: ignore[attr-defined]
        if answer.mode == "drop":
            self.close_connection = True
            return
        body = answer.body
        if answer.encoding == "gzip":
            body = gzip.compress(body)
        elif answer.encoding == "deflate":
            body = zlib.compress(body)
        self.send_response(answer.status)
        self.send_header("content-type", answer.content_type)
        if answer.encoding:
            self.send_header("content-encoding", answer.encoding)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.mode == "chunked":
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 7):
                piece = body[start : start + 7]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()


class Canned:
    """``with Canned() as canned: canned.answer = Answer(body=b"...")``; ``canned.url`` is the base URL."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.answer = Answer()  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def answer(self) -> Answer:
        return self._server.answer  # type: ignore[attr-defined]

    @answer.setter
    def answer(self, value: Answer) -> None:
        self._server.answer = value  # type: ignore[attr-defined]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Canned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- clients (kept per base URL and options: building one makes an SSL context, ~20-150 ms) ---------------
@functools.cache
def _client(kind: str, base: str, options: tuple[tuple[str, Any], ...]) -> Any:
    if kind == "openai":
        return openai.OpenAI(base_url=base, api_key=KEY, **dict(options))
    if kind == "anthropic":
        return anthropic.Anthropic(base_url=base, api_key=KEY, **dict(options))
    return genai.Client(api_key=KEY, http_options={"base_url": base})  # kept referenced: see fake_provider.md


def oai(base: str, **kw: Any) -> openai.OpenAI:
    kw.setdefault("max_retries", 2)
    return _client("openai", base, tuple(sorted(kw.items())))


def aoai(base: str, **kw: Any) -> openai.AsyncOpenAI:
    kw.setdefault("max_retries", 2)
    return openai.AsyncOpenAI(base_url=base, api_key=KEY, **kw)


def claude(base: str, **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 2)
    return _client("anthropic", base, tuple(sorted(kw.items())))


def gemini(base: str) -> genai.Client:
    return _client("gemini", base, ())


# -- ledger breakers --------------------------------------------------------------------------------
class LockHolder:
    """Another process holding the ledger's write lock (``BEGIN EXCLUSIVE``) until :meth:`release`."""

    def __init__(self, path: Any, hold_seconds: float | None = None) -> None:
        wait = "sys.stdin.read()" if hold_seconds is None else f"time.sleep({hold_seconds})"
        code = (
            f"import sqlite3, sys, time\nc = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            f"c.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\n{wait}\nc.execute('COMMIT')\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline() == "locked\n"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
        self.proc.wait(10)
        self.proc.stdout.close()


def fill_to_the_brim(conn: sqlite3.Connection) -> int:
    """Cap the file at its size (``PRAGMA max_page_count``) and fill the calls table until not even the
    smallest row fits: a full disk, as SQLite sees it. Filler rows have api 'filler'; returns how many."""
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    added = 0
    for size in (2000, 500, 100, 20, 0):
        while True:
            try:
                conn.execute(
                    "INSERT INTO calls (ts, api, status, billed, streamed, error) "
                    "VALUES ('2000-01-01', 'filler', 'ok', 0, 0, ?)",
                    ("x" * size if size else None,),
                )
                added += 1
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc), exc
                break
    return added


def scribble(path: Any) -> None:
    """Overwrite every page but the first (the header and schema stay readable, the tables do not)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[page_size:] = b"\xa5" * (len(data) - page_size)
    path.write_bytes(bytes(data))
