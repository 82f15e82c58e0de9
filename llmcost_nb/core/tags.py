"""Tags: what a call's tags may be, checked in one place for every way in (``log``, ``record``, ``log_many``,
``track``, ``%%llmcost --tag``, ``%llmcost tag``, ``compare``) and for the ``tags=`` filter of ``calls()``,
``count()`` and ``total_cost()``.

A tag set is a mapping of keys to values. A key is a non-empty ``str``; a value is a ``str`` or a number
(stored as its text: ``{"run": 3}`` is ``"3"``, ``True`` is ``"True"``). Each is at most
:data:`MAX_TAG_CHARS` characters. ``None``, lists, dicts and other objects are refused (``TypeError``), never
stored as their ``repr``.

>>> clean_tags({"team": "search", "run": 3})
{'team': 'search', 'run': '3'}
>>> clean_tags(None)
{}
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["MAX_TAG_CHARS", "clean_tags"]

MAX_TAG_CHARS = 1_000  # per key and per value: a label, not a payload (a prompt belongs elsewhere)
_EXAMPLE = '{"team": "search"}'


def clean_tags(tags: Any, what: str = "tags", *, limit: bool = True) -> dict[str, str]:
    """``tags`` as stored: ``{str: str}``, in the order given; ``None`` is no tags. Raises ``TypeError`` for
    anything but a mapping of ``str`` keys to ``str`` or number values, ``ValueError`` for an empty key or
    (with ``limit``: tags being written, not a filter over older rows) a key or value longer than
    :data:`MAX_TAG_CHARS` characters."""
    if tags is None:
        return {}
    if type(tags) is not dict and not isinstance(tags, Mapping):  # (the ABC check only for other types)
        raise TypeError(f"{what} must be a mapping of tag keys to values, e.g. {_EXAMPLE}, got "
                        f"{type(tags).__name__} {_short(tags)}")
    cleaned: dict[str, str] = {}
    for key, value in tags.items():  # log_many checks every row's tags: the messages are made on failure only
        if not isinstance(key, str):
            raise TypeError(f"{what}: a tag key must be a str, got {type(key).__name__} {_short(key)}")
        if not key:
            raise ValueError(f"{what}: a tag key must not be empty")
        if isinstance(value, str):
            text = value
        elif isinstance(value, numbers.Real | Decimal):  # bool too: True is "True"
            text = str(value)
        else:
            raise TypeError(f"{what}: the value of tag {_short(key)} must be a str or a number, got "
                            f"{type(value).__name__} {_short(value)}")
        if limit and (len(key) > MAX_TAG_CHARS or len(text) > MAX_TAG_CHARS):
            name, item = (f"tag key {_short(key)}", key) if len(key) > MAX_TAG_CHARS else (
                f"the value of tag {_short(key)}", text)
            raise ValueError(f"{what}: {name} is {len(item):,} characters; at most {MAX_TAG_CHARS:,} are "
                             "allowed")
        cleaned[key] = text
    return cleaned


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
