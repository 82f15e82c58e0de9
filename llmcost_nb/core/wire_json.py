"""JSON from the wire: the request and response bodies capture reads on the user's call.

Parsed with orjson: a small chat response ~4x faster than the standard library's ``json`` (0.8 against 3.4 µs)
and a 57 KB chat request 2.5x faster (47 against 116 µs): on the call's path, the body's JSON was the largest
single cost of capture. Whatever orjson refuses and ``json`` reads (``NaN`` and ``Infinity``, UTF-16 and
UTF-32 text, lone surrogates in escapes) is read by ``json``, so a body reads as ``json.loads`` reads it, with
one difference: an integer wider than 64 bits becomes a float (no such count or limit is believable; a usage
count that large is rejected either way).

>>> loads(b'{"model": "gpt-4.1", "usage": {"prompt_tokens": 12}}')
{'model': 'gpt-4.1', 'usage': {'prompt_tokens': 12}}
>>> loads(b'{"x": NaN}')
{'x': nan}
>>> from decimal import Decimal
>>> dumps({"model": "gpt-4.1", "temperature": Decimal("0.5")})
b'{"model":"gpt-4.1","temperature":"0.5"}'
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads", "loads_exact"]


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The value a JSON document holds. Raises ``ValueError`` (``json.JSONDecodeError``) if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(bytes(data) if isinstance(data, memoryview) else data)


def loads_exact(data: bytes) -> Any:
    """The value a JSON document holds, read only where orjson reads it, so that it writes back as JSON
    unchanged (no ``NaN`` or ``Infinity``, which orjson writes as ``null``; no integer over 64 bits): what
    the journal keeps of a response. Raises ``ValueError`` for anything else, JSON or not.

    >>> loads_exact(b'{"usage": {"prompt_tokens": 12}}')
    {'usage': {'prompt_tokens': 12}}
    >>> try:
    ...     loads_exact(b'{"x": NaN}')
    ... except ValueError:
    ...     print("refused")
    refused
    """
    return orjson.loads(data)


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes, what cannot be written as JSON written as its ``str()`` (as
    ``json.dumps(value, default=str)`` does): a request body a library was given as an object (aiohttp's
    ``json=``), read the way it will be sent. Raises ``TypeError`` or ``ValueError`` if it cannot be."""
    try:
        return orjson.dumps(value, default=str)
    except TypeError:  # keys that are not strings, integers over 64 bits...
        return json.dumps(value, default=str).encode()
