"""Recorded OpenAI chat exchanges (``benchmarks/data/openai_chat_pairs.json``, origin and licence in its
README) through the estimator of usage a response did not report: what it counts against what OpenAI
reported. Shared by ``benchmarks/bench_estimate.py`` and the estimator's test."""

from __future__ import annotations

import json
from typing import Any

from ..tracking.stream_usage import body_usage, stream_usage

__all__ = ["estimate_pair"]


def estimate_pair(pair: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((estimated input, output), (reported input, output)) of one recorded pair, counted as the capture
    counts a response that reported no usage: a recorded stream loses its usage chunk, a plain response its
    usage object."""
    request = pair["request"]
    if "sse" in pair:
        events = [line for line in pair["sse"].splitlines(keepends=True) if line.strip()]
        reported = next(json.loads(e[5:]) for e in events if '"usage":{' in e)["usage"]
        content = "\n".join(e for e in events if '"usage":{' not in e).encode()
        usage, _ = stream_usage("chat", content, request, request["model"], None, output_reported=False)
    else:
        reported = pair["response"]["usage"]
        body = {key: value for key, value in pair["response"].items() if key != "usage"}
        usage, _ = body_usage("chat", body, request, request["model"])
    return ((usage.get("input_tokens", 0), usage.get("output_tokens", 0)),
            (reported["prompt_tokens"], reported["completion_tokens"]))
