"""Recorded LLM responses on disk, for :mod:`llmcost_nb.replay`: a JSON Lines file, one exchange a line.

A line holds the normalized request (method, URL path, model, body minus volatile fields — never a header, so
never an API key), its key (sha256 of that request as canonical JSON), and the response: status, content
type and the decoded body exactly as the SDK parsed it (text, or base64 when it is not UTF-8). Appending a
line is one ``write``: several processes may record into the same file; the last line for a key wins.

>>> store = ReplayStore("sample_data/replay/demo.jsonl")     # doctest: +SKIP
>>> store.get(request_key("POST", "/v1/chat/completions", "gpt-4.1", body))   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.call import now_iso

__all__ = ["VOLATILE_FIELDS", "Recording", "ReplayStore", "normalized_request", "request_key"]

# Request fields that do not change the answer but differ between runs or users: left out of the key.
VOLATILE_FIELDS = frozenset({"user", "metadata", "safety_identifier", "prompt_cache_key", "store"})


def normalized_request(method: str, path: str, model: str | None, body: Mapping[str, Any] | None,
                       ignore: Iterable[str] = VOLATILE_FIELDS) -> dict[str, Any]:
    """What identifies a request for replay: no host (a recording made against one base URL replays against
    another), no query string (Gemini may carry its key there), no headers."""
    ignored = set(ignore)
    return {
        "method": method.upper(),
        "path": path,
        "model": model,
        "body": {k: v for k, v in (body or {}).items() if k not in ignored},
    }


def request_key(method: str, path: str, model: str | None, body: Mapping[str, Any] | None,
                ignore: Iterable[str] = VOLATILE_FIELDS) -> str:
    """The sha256 (hex) of the normalized request as canonical JSON."""
    return _key(normalized_request(method, path, model, body, ignore))


def _key(request: Mapping[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded exchange."""

    key: str
    request: dict[str, Any]
    status: int
    content_type: str
    content: bytes  # decoded (no content-encoding): what the SDK parsed
    recorded: str

    def to_json(self) -> str:
        try:
            body: dict[str, str] = {"body": self.content.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"body_b64": base64.b64encode(self.content).decode("ascii")}
        response = {"status": self.status, "content_type": self.content_type, **body}
        return json.dumps({"key": self.key, "request": self.request, "response": response,
                           "recorded": self.recorded}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Recording:
        data = json.loads(line)
        response = data["response"]
        content = (response["body"].encode("utf-8") if "body" in response
                   else base64.b64decode(response["body_b64"]))
        return cls(data["key"], data["request"], int(response["status"]), response.get("content_type", ""),
                   content, data.get("recorded", ""))

    @classmethod
    def new(cls, request: dict[str, Any], status: int, content_type: str, content: bytes) -> Recording:
        return cls(_key(request), request, status, content_type, content, now_iso())


class ReplayStore:
    """Recordings in one JSON Lines file, read on first use and re-read when another process appends."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._entries: dict[str, Recording] = {}
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file when last read

    def __repr__(self) -> str:
        return f"ReplayStore({str(self.path)!r})"

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._entries)

    def get(self, key: str) -> Recording | None:
        with self._lock:
            self._refresh()
            return self._entries.get(key)

    def put(self, recording: Recording) -> None:
        """Append ``recording`` (skipped when the same response is already stored for its key)."""
        with self._lock:
            self._refresh()
            old = self._entries.get(recording.key)
            if old is not None and (old.status, old.content_type, old.content) == (
                    recording.status, recording.content_type, recording.content):
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = (recording.to_json() + "\n").encode("utf-8")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            self._entries[recording.key] = recording
            self._seen = self._stat()

    def clear(self) -> int:
        """Delete every recording (the file); returns how many there were."""
        with self._lock:
            self._refresh()
            count = len(self._entries)
            self.path.unlink(missing_ok=True)
            self._entries, self._seen = {}, None
            return count

    def recordings(self) -> list[Recording]:
        with self._lock:
            self._refresh()
            return list(self._entries.values())

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def _refresh(self) -> None:
        seen = self._stat()
        if seen == self._seen:
            return
        entries: dict[str, Recording] = {}
        if seen is not None:
            with self.path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        recording = Recording.from_json(line)
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ValueError(f"{self.path}:{number} is not a replay recording ({exc})") from None
                    entries[recording.key] = recording
        self._entries, self._seen = entries, seen
