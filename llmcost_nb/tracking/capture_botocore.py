"""Capture for botocore, so boto3: Bedrock Runtime's Converse, ConverseStream, InvokeModel and
InvokeModelWithResponseStream (any other AWS call is let through untouched).

botocore runs on urllib3, but a hook there cannot stop a request cleanly: botocore wraps whatever urllib3
raises in its own ``HTTPClientError`` and retries it. So the hook is botocore's one send,
``URLLib3Session.send`` (once per attempt; botocore's retries are attempts of their own): it runs the
pre-send hooks before the request reaches urllib3 (a budget stop propagates as itself, never retried), and
the urllib3 and http.client hooks below it stand aside. A body botocore reads at once (Converse) is recorded
then; a streamed one (the event streams, and InvokeModel's body, which boto3 hands over unread) is teed at
its socket file by :func:`.capture_http.tee_http_response`, framing (AWS event-stream frames) parsed when
the stream ends or is closed. A recorded response (replay) is served as botocore's own response over the
recorded bytes.
"""

from __future__ import annotations

from time import perf_counter
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..core.warn import warn_once
from . import hooks
from . import recorder as _recorder
from .capture_http import response_headers, tee_http_response

__all__ = ["patch"]


def patch(module: ModuleType) -> None:
    cls = module.URLLib3Session
    hooks.replace(cls, "send", _make_send(cls.__dict__["send"]))


def _make_send(original: Any) -> Any:
    def send(self: Any, request: Any) -> Any:
        if hooks.in_send.get():
            return original(self, request)
        try:
            parts = urlsplit(request.url)
            host, path, method, body = parts.hostname or "", parts.path, request.method, request.body
        except Exception:
            return original(self, request)
        pending = hooks.begin(method, host, path, body)  # may raise a budget stop: nothing sent yet
        if pending is None:
            return original(self, request)
        token = hooks.in_send.set(True)
        pending.t0 = perf_counter()
        try:
            if pending.respond_with is not None:  # answered from a recording, without the network
                response = _replayed(request, pending.respond_with)
            else:
                response = original(self, request)
        except BaseException as exc:
            _recorder.failed(pending, exc)
            raise
        finally:
            hooks.in_send.reset(token)
        _record(pending, request, response)
        return response

    return send


def _record(pending: _recorder.Pending, request: Any, response: Any) -> None:
    try:
        if request.stream_output and not pending.replayed:  # its headers read by the tee
            tee_http_response(pending, response.raw._fp)  # the http.client response under urllib3's, unread
            return
        original = getattr(response.raw, "_original_response", None)  # a live one's http.client response
        headers = hooks.Headers(response.headers.items()) if original is None else response_headers(original)
        # a replay: the recording's bytes, all there while the caller still reads the stream; else the body
        # botocore read already (AWSResponse.content)
        content = pending.respond_with.content if pending.replayed else response.content
        hooks.record_whole(pending, response.status_code, headers, content)
    except Exception as exc:
        warn_once(f"responded:{type(exc).__name__}", f"could not record a response ({exc!r})")


def _replayed(request: Any, answer: Any) -> Any:
    """botocore's response to ``request`` carrying a recording's status, content type and bytes, its raw
    body a urllib3 response over them, exactly as botocore reads a live one."""
    import io

    from botocore.awsrequest import AWSResponse
    from urllib3 import HTTPResponse
    from urllib3._collections import HTTPHeaderDict

    headers = HTTPHeaderDict({"content-length": str(len(answer.content))})
    if answer.content_type:
        headers["content-type"] = answer.content_type
    raw = HTTPResponse(body=io.BytesIO(answer.content), headers=headers, status=answer.status,
                       preload_content=False, decode_content=False)
    response = AWSResponse(request.url, answer.status, headers, raw)
    if not request.stream_output:
        response.content  # noqa: B018 (read now, as botocore's own send does)
    return response
