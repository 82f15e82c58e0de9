"""Capture overhead of each HTTP stack's hook, per call and per stream chunk, against the same call
untracked, in one run.

    .venv/bin/python benchmarks/bench_stacks.py      (needs aiohttp and boto3: the test extra)

A canned HTTP/1.1 server on loopback answers every request with prebuilt bytes (keep-alive, no parsing
beyond the headers), so the round trip is as short as a socket allows and the difference is ours. It runs
in a process of its own on a CPU of its own, as a provider runs on a machine of its own (see
``serve_apart``). For each stack, capture is switched off and on for alternate batches of calls, so the
machine's drift hits both alike: the figure is the median of the paired batch differences, in CPU time of the
calling thread (the waits for the socket, the server's work and the neighbours on a shared machine left
out). Floors: 60 µs per call (p50), 3 µs per stream chunk. Each per-call figure is printed with the
interquartile range of its batch differences, and over httpx2's from the same run (the floor is httpx2's): on
a shared machine the figures move by ±15% from one run to the next (±30% with the server in this process).

Calls back to back keep our code in the CPU caches. A notebook makes one call every few seconds: the
flusher commits between two calls and each call finds the caches cold, so the same calls are also made one
every 0.15 s (alternately tracked), the figure there being the difference of the p50s.

- httpx2: the hook openai and anthropic go through, measured the same way as a reference
- requests / urllib3 / urllib.request: the http.client + urllib3 hook (``capture_http``)
- aiohttp: the ``ClientSession._request`` hook and its StreamReader tee (``capture_aiohttp``)
- botocore: boto3 bedrock-runtime ``converse`` / ``converse_stream`` (``capture_botocore``, teeing below)
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import boto3
import httpx2
import requests
import urllib3

import llmcost_nb
from llmcost_nb.testing.wire import event_frame
from llmcost_nb.tracking import capture, capture_http, hooks

CHUNKS = 2000
JSON = {"content-type": "application/json"}
CHAT = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
}).encode()
CONVERSE = json.dumps({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
                       "stopReason": "end_turn",
                       "usage": {"inputTokens": 120, "outputTokens": 30, "totalTokens": 150},
                       "metrics": {"latencyMs": 1}}).encode()
SSE = [b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1","choices":[{"index":0,'
       b'"delta":{"content":"word "}}]}\n\n'] * CHUNKS + [
    b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4.1","choices":[],'
    b'"usage":{"prompt_tokens":10,"completion_tokens":2000,"total_tokens":2010}}\n\n', b"data: [DONE]\n\n"]


def _event(kind: str, data: dict) -> bytes:
    return event_frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                       json.dumps(data).encode())


FRAMES = [_event("messageStart", {"role": "assistant"})] + [
    _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "word "}})] * CHUNKS + [
    _event("contentBlockStop", {"contentBlockIndex": 0}), _event("messageStop", {"stopReason": "end_turn"}),
    _event("metadata", {"usage": {"inputTokens": 10, "outputTokens": 2000, "totalTokens": 2010},
                        "metrics": {"latencyMs": 1}})]


def _whole(body: bytes, content_type: str = "application/json") -> bytes:
    return (f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
            "x-request-id: req_1\r\n\r\n").encode() + body


def _chunked(events: list[bytes], content_type: str) -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n".encode()
    return head + b"".join(b"%x\r\n%b\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


ANSWERS = {  # (path suffix, streamed) -> the whole response, prebuilt
    ("/chat/completions", False): _whole(CHAT),
    ("/chat/completions", True): _chunked(SSE, "text/event-stream"),
    ("/converse", False): _whole(CONVERSE),
    ("/converse-stream", True): _chunked(FRAMES, "application/vnd.amazon.eventstream"),
}


class Canned:
    """A keep-alive HTTP/1.1 server on loopback answering each request with prebuilt bytes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].decode()
                length = next((int(line.split(b":")[1]) for line in lines[1:]
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                streamed = b'"stream":true' in body.replace(b" ", b"") or path.endswith("-stream")
                key = next(k for k in ANSWERS if path.split("?")[0].endswith(k[0]) and k[1] == streamed)
                conn.sendall(ANSWERS[key])


def paired(call: Callable[[], object], rounds: int = 30,
           batch: int = 20) -> tuple[float, float, float, tuple[float, float]]:
    """(p50 tracked µs, p50 untracked µs, median of the paired batch differences µs, their interquartile
    range), in CPU time of the calling thread: what the call costs this process, without the waits for the
    socket (and the server's work, done in its own process) or for a neighbour on a shared machine."""
    def p50(n: int) -> float:
        times = []
        for _ in range(n):
            t0 = time.thread_time()
            call()
            times.append(time.thread_time() - t0)
        return statistics.median(times) * 1e6

    capture.uninstall()
    p50(batch * 2)  # warm both paths
    capture.install()
    p50(batch * 2)
    on, off = [], []
    for _ in range(rounds):
        capture.uninstall()
        off.append(p50(batch))
        capture.install()
        on.append(p50(batch))
    differences = [a - b for a, b in zip(on, off, strict=True)]
    q1, _, q3 = statistics.quantiles(differences, n=4)
    return statistics.median(on), statistics.median(off), statistics.median(differences), (q1, q3)


def paced(call: Callable[[], object], rounds: int = 30, gap_s: float = 0.15) -> tuple[float, float]:
    """(p50 tracked µs, p50 untracked µs) of calls made one every ``gap_s`` (capture switched on and off
    for alternate calls), in CPU time of the calling thread: a notebook's pace, where the flusher commits
    between two calls and each call finds the CPU caches cold."""
    on, off = [], []
    for _ in range(rounds):
        for tracked, times in ((False, off), (True, on)):
            (capture.install if tracked else capture.uninstall)()
            time.sleep(gap_s)
            t0 = time.thread_time()
            call()
            times.append(time.thread_time() - t0)
    capture.install()
    return statistics.median(on) * 1e6, statistics.median(off) * 1e6


def stack_calls(base_url: str) -> tuple[dict[str, Callable[[], object]], dict[str, Callable[[], object]],
                                         Callable[[], None]]:
    """One non-streamed chat call per stack and a few streamed ones, all to ``base_url``, and a function that
    closes what they opened (``bench_instructions`` makes the same calls)."""
    chat = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    stream = {**chat, "stream": True, "stream_options": {"include_usage": True}}
    url = base_url + "/v1/chat/completions"
    session = requests.Session()
    pool = urllib3.PoolManager()
    data = json.dumps(chat).encode()
    loop = asyncio.new_event_loop()
    aio = loop.run_until_complete(_session())
    bedrock = boto3.client("bedrock-runtime", endpoint_url=base_url, region_name="us-east-1",
                           aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-secret")
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    model = "us.anthropic.claude-3-haiku-20240307-v1:0"

    async def aio_call(body: dict) -> bytes:
        async with aio.post(url, json=body) as resp:
            return await resp.read()

    client = httpx2.Client()
    calls: dict[str, Callable[[], object]] = {
        "httpx2 (reference)": lambda: client.post(url, json=chat).content,
        "requests": lambda: session.post(url, json=chat).content,
        "urllib3": lambda: pool.request("POST", url, body=data, headers=JSON).data,
        "urllib.request": lambda: urllib.request.urlopen(urllib.request.Request(url, data=data,
                                                                                headers=JSON)).read(),
        "aiohttp": lambda: loop.run_until_complete(aio_call(chat)),
        "botocore converse": lambda: bedrock.converse(modelId=model, messages=messages),
    }
    streams: dict[str, Callable[[], object]] = {
        "requests": lambda: sum(1 for _ in session.post(url, json=stream, stream=True).iter_content(None)),
        "aiohttp": lambda: loop.run_until_complete(aio_call(stream)),
        "botocore converse_stream": lambda: sum(
            1 for _ in bedrock.converse_stream(modelId=model, messages=messages)["stream"]),
    }
    return calls, streams, lambda: loop.run_until_complete(aio.close())


def serve_apart() -> tuple[str, Callable[[], None]]:
    """The canned server in a process of its own, on one CPU (when there are two or more): (its URL, a
    function that stops it). A provider is another machine: its work must not share the core, and the
    caches, that our code runs in (httpx2's figure was 51-71 µs with the server's threads in this process,
    38-50 µs apart, and the spread of every figure halved). This process is left free to run anywhere, as
    a kernel is: its flusher thread runs beside the calls."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(cpus[-1] if len(cpus) >= 2 else -1)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip()  # type: ignore[union-attr]
    return url, server.kill


def serve(cpu: int) -> None:
    """The canned server, on ``cpu`` (-1: any), until killed or its parent is gone (its stdin closed)."""
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})  # before its threads start: they keep it
    print(Canned().url, flush=True)
    sys.stdin.read()


def main() -> None:
    url, stop = serve_apart()
    try:
        measure(url)
    finally:
        stop()


def measure(url: str) -> None:
    tmp = Path(tempfile.mkdtemp())
    llmcost_nb.get_session().use_ledger(tmp / "stacks.db")
    calls, streams, close = stack_calls(url)
    with llmcost_nb.track():
        print("per call, CPU time of the calling thread (p50 tracked vs untracked; ours = median of paired "
              "batch differences, their interquartile range, and ours over httpx2's; floor 60 µs):")
        reference = None
        for name, call in calls.items():
            on, off, ours, (q1, q3) = paired(call)
            reference = reference or ours  # httpx2's, measured first
            print(f"  {name:<24} {on:8.1f} µs vs {off:8.1f} µs -> {ours:6.1f} µs per call "
                  f"(IQR {q1:.1f}-{q3:.1f}; {ours / reference:.2f}x httpx2's)")
        print("per call at a notebook's pace (one call every 0.15 s, alternately tracked; CPU time of the "
              "calling thread, p50):")
        for name, call in calls.items():
            on, off = paced(call)
            print(f"  {name:<24} {on:8.1f} µs vs {off:8.1f} µs -> {on - off:6.1f} µs per call")
        print(f"per stream chunk ({CHUNKS} chunks a stream, row write included; floor 3 µs):")
        for name, call in streams.items():
            on, off, ours, _ = paired(call, rounds=8, batch=3)
            print(f"  {name:<24} {on / 1000:8.1f} ms vs {off / 1000:8.1f} ms -> {ours / CHUNKS:6.2f} µs "
                  "per chunk")
    capture.uninstall()
    path_alone()
    close()
    rows = llmcost_nb.Ledger(tmp / "stacks.db").count()
    print(f"{rows} rows recorded")


class _Socket:
    """What ``http.client.HTTPResponse`` reads a response from: prebuilt bytes, no network."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))


def path_alone() -> None:
    """The http.client hook's own work on a prebuilt response (no socket, no library around it): begin
    (classify, read the body, pre-send hooks), tee, read the body, record (taped to the journal)."""
    body = json.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}).encode()

    def response() -> http.client.HTTPResponse:
        resp = http.client.HTTPResponse(_Socket(ANSWERS[("/chat/completions", False)]))  # type: ignore[arg-type]
        resp.begin()
        return resp

    def untracked() -> None:
        resp = response()
        resp.read()
        resp.close()

    def tracked() -> None:
        pending = hooks.begin("POST", "api.openai.com", "/v1/chat/completions", body)
        resp = response()
        capture_http.tee_http_response(pending, resp)  # type: ignore[arg-type]
        resp.read()
        resp.close()

    def p50(fn: Callable[[], None], n: int) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    with llmcost_nb.track():
        p50(tracked, 300)
        ours = statistics.median(p50(tracked, 1000) - p50(untracked, 1000) for _ in range(5))
    print(f"http.client hook alone (begin + tee + read + durable row, no library around it): {ours:.1f} µs "
          "p50")


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:  # the server alone (see serve_apart)
        sys.exit(serve(int(sys.argv[2])))
    sys.exit(main())
