"""Recorded OpenAI chat exchanges (``benchmarks/data/openai_chat_pairs.json``, origin and licence in its
README) through the stream estimator: what it counts against what OpenAI reported. Shared by
``benchmarks/bench_estimate.py`` and the estimator's test."""

from __future__ import annotations

import json
from typing import Any

from ..tracking.stream_usage import stream_usage

__all__ = ["estimate_pair"]


def estimate_pair(pair: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((estimated input, output), (reported input, output)) of one recorded pair: a recorded stream loses
    its usage chunk; a plain response's message text (and tool calls) is streamed as one chunk."""
    request = pair["request"]
    if "sse" in pair:
        events = [line for line in pair["sse"].splitlines(keepends=True) if line.strip()]
        reported = next(json.loads(e[5:]) for e in events if '"usage":{' in e)["usage"]
        content = "\n".join(e for e in events if '"usage":{' not in e).encode()
    else:
        reported = pair["response"]["usage"]
        choices = pair["response"]["choices"]
        text = "".join(c["message"].get("content") or "" for c in choices)
        calls = [c for choice in choices for c in choice["message"].get("tool_calls") or ()]
        delta = {"content": text, "tool_calls": [{"index": i, "function": c["function"]}
                                                 for i, c in enumerate(calls)]}
        content = b"data: " + json.dumps({"model": pair["response"]["model"],
                                          "choices": [{"index": 0, "delta": delta}]}).encode()
    usage, _ = stream_usage("chat", content, request, request["model"], None, output_reported=False)
    return ((usage.get("input_tokens", 0), usage.get("output_tokens", 0)),
            (reported["prompt_tokens"], reported["completion_tokens"]))
