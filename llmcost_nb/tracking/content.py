"""Opt-in storage of prompt and response text, through a redaction hook.

By default the ledger holds tokens, costs and tags — never what was asked or answered. A user who wants the
text (to audit a run, to compare answers) opts in for this session; every text passes through ``redact``
before it is written, and the default redactor already masks API-key-shaped strings and bearer tokens.

>>> import llmcost_nb.content as content
>>> content.enable(redact=lambda text, kind: text.replace("ACME", "[client]"))   # doctest: +SKIP
>>> content.get(call.id)                                                     # doctest: +SKIP
StoredContent(request='{"model": "gpt-4.1", "messages": [...]}', response='{"id": ...}')
>>> content.disable()                                                        # doctest: +SKIP

``request`` is the request's JSON body, ``response`` the response body as received (JSON, or the SSE text
of a stream), decoded. A redactor that raises stores nothing for that call (one warning).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.warn import warn_once

if TYPE_CHECKING:
    from ..ledger.sqlite import Ledger
    from .scope import Session

__all__ = ["StoredContent", "default_redact", "disable", "enable", "enabled", "get"]

Redactor = Callable[[str, str], str]  # (text, "request" | "response") -> text to store
_policies: weakref.WeakKeyDictionary[Any, Redactor] = weakref.WeakKeyDictionary()
_SECRETS = re.compile(
    r"(?i)(sk-[a-z0-9_\-]{8,}|AIza[0-9a-z_\-]{20,}|bearer\s+[a-z0-9._\-]{8,}"
    r"|(?:api[_-]?key|x-api-key|x-goog-api-key|authorization)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]{6,})"
)


@dataclass(frozen=True, slots=True)
class StoredContent:
    request: str | None
    response: str | None


def default_redact(text: str, kind: str) -> str:
    """Mask API keys (``sk-…``, ``AIza…``), bearer tokens and ``api_key=…`` / ``authorization: …`` pairs."""
    return _SECRETS.sub("[redacted]", text)


def enable(redact: Redactor | None = None, *, session: Session | None = None) -> None:
    """Store prompt and response text of this session's captured calls, after ``redact(text, kind)``
    (which runs after :func:`default_redact`)."""
    from .scope import get_session

    if redact is not None and not callable(redact):
        raise TypeError(f"redact must be a callable (text, kind) -> str, got {type(redact).__name__}")

    def both(text: str, kind: str) -> str:
        text = default_redact(text, kind)
        return redact(text, kind) if redact is not None else text

    _policies[session or get_session()] = both


def disable(*, session: Session | None = None) -> None:
    """Stop storing text (what was stored stays)."""
    from .scope import get_session

    _policies.pop(session or get_session(), None)


def enabled(session: Session | None = None) -> bool:
    from .scope import get_session

    return (session or get_session()) in _policies


def get(call_id: int, *, ledger: Ledger | None = None) -> StoredContent | None:
    """The stored text of a call, or None if none was stored."""
    from .scope import get_session

    ledger = ledger or get_session().ledger
    with ledger._lock:
        row = ledger.connection.execute("SELECT request, response FROM call_content WHERE call_id = ?",
                                        (call_id,)).fetchone()
    return None if row is None else StoredContent(*row)


def store(pending: Any, call: Any, content: bytes, ledger: Any = None) -> None:
    """Called by the recorder after a call's row is written; a no-op unless this session opted in."""
    redact = _policies.get(pending.session)
    if redact is None or call.id is None:
        return
    try:
        request = json.dumps(pending.info.body, ensure_ascii=False) if pending.info.body is not None else None
        texts = [None if t is None else redact(t, kind) for t, kind in (
            (request, "request"), (content.decode("utf-8", "replace"), "response"))]
        if any(t is not None and not isinstance(t, str) for t in texts):
            raise TypeError("the redactor must return a str")
        ledger = ledger or (pending.scope.ledger if pending.scope is not None else pending.session.ledger)
        with ledger._lock:
            ledger.connection.execute("INSERT OR REPLACE INTO call_content VALUES (?, ?, ?)",
                                      (call.id, *texts))
    except Exception as exc:
        warn_once(f"content:{type(exc).__name__}", f"could not store a call's text ({exc!r}); nothing stored")
