"""core.wire_json: request and response bodies read as the standard library's json reads them, faster."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

from llmcost_nb.core import wire_json
from llmcost_nb.pricing.usage import json_object

REAL = json.loads((Path(__file__).parent / "data" / "real_usages.json").read_text())


def test_every_real_usage_body_reads_as_json_reads_it() -> None:
    for entry in REAL:
        raw = json.dumps(entry["body"]).encode()
        assert wire_json.loads(raw) == json.loads(raw)
        assert json_object(raw) == json.loads(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"a": 1, "a": 2}', {"a": 2}),  # the last of a repeated key, as json
    ('{"model": "gpt-4.1"}'.encode("utf-16"), {"model": "gpt-4.1"}),  # orjson reads UTF-8 only
    ('{"model": "gpt-4.1"}'.encode("utf-32-le"), {"model": "gpt-4.1"}),
    (b'{"text": "\\ud800"}', {"text": "\ud800"}),  # a lone surrogate: orjson refuses it
    (b'{"n": 12}', {"n": 12}),
    (b"[1, 2]", [1, 2]),
])
def test_what_orjson_refuses_is_read_by_json(raw: bytes, expected: object) -> None:
    assert wire_json.loads(raw) == expected


def test_nan_and_infinity_are_read_as_json_reads_them() -> None:
    value = wire_json.loads(b'{"x": NaN, "y": Infinity, "z": -Infinity}')
    assert math.isnan(value["x"]) and value["y"] == math.inf and value["z"] == -math.inf


@pytest.mark.parametrize("raw", [b"", b"{", b"<html>502 Bad Gateway</html>", b'{"a": }', b"\xff\xfe\xff"])
def test_what_is_not_json_raises_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        wire_json.loads(raw)
    assert json_object(raw) is None


def test_a_memoryview_reads_as_its_bytes() -> None:
    assert wire_json.loads(memoryview(b'{"x": NaN, "n": 1}'))["n"] == 1
    assert wire_json.loads(memoryview(b'{"n": 1}')) == {"n": 1}


def test_dumps_writes_what_json_cannot_as_its_str() -> None:
    body = {"model": "gpt-4.1", "temperature": Decimal("0.5"),
            "messages": [{"role": "user", "content": "hé"}]}
    assert json.loads(wire_json.dumps(body)) == {**body, "temperature": "0.5"}


def test_dumps_falls_back_to_json_for_keys_orjson_refuses() -> None:
    assert json.loads(wire_json.dumps({1: "a", "big": 2**70})) == {"1": "a", "big": 2**70}


def test_dumps_raises_for_what_cannot_be_written() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises((TypeError, ValueError)):
        wire_json.dumps(loop)
