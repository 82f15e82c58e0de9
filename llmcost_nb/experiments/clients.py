"""Requests and clients for :mod:`llmcost_nb.compare`: build a variant's request for one input, and send it
through whichever client serves the model — openai, anthropic or google-genai (sync or async), or a user
function ``call(model, request)``.

A request is OpenAI-chat shaped, whatever the provider: ``{"messages": [...], "max_tokens": N, **extra}``;
each client adapter translates it (Anthropic: system messages go to ``system``; Gemini: ``contents`` and a
``config``). Extra keys a callable variant returns (``temperature``, ...) go to the SDK call as they are.

>>> build_request("Q: {question}", {"question": "2+2?"}, max_tokens=16)
{'messages': [{'role': 'user', 'content': 'Q: 2+2?'}], 'max_tokens': 16}
>>> provider_of("claude-haiku-4-5"), provider_of("gemini-2.5-flash"), provider_of("gpt-4.1-mini")
('anthropic', 'google', 'openai')
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "Router", "build_request", "is_transient", "provider_of"]

_PREFIXES = (
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("gemma", "google"),
    ("gpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
)
_KINDS = {"openai": "openai", "anthropic": "anthropic", "google": "genai"}  # provider -> client kind


def provider_of(model: str) -> str | None:
    """The provider a model name belongs to, by its prefix (None when it cannot be told)."""
    name = model.lower().rsplit("/", 1)[-1]
    return next((provider for prefix, provider in _PREFIXES if name.startswith(prefix)), None)


def _fill(template: Any, item: Mapping[str, Any], variant: str) -> Any:
    if not isinstance(template, str):
        return template
    try:
        return template.format_map(item)
    except KeyError as exc:
        raise KeyError(
            f"variant {variant!r} uses {{{exc.args[0]}}} but the input has only the fields "
            f"{', '.join(sorted(map(str, item)))} (write literal braces as {{{{ }}}})"
        ) from None


def build_request(
    variant: Any, item: Mapping[str, Any], *, max_tokens: int, name: str = ""
) -> dict[str, Any]:
    """The request for one input: a template string (the user message), a list of chat messages whose
    string contents are templates, or a callable ``variant(item)`` returning either, or a request dict."""
    built = variant(item) if callable(variant) else variant
    if isinstance(built, str):
        messages = [{"role": "user", "content": _fill(built, item, name) if not callable(variant) else built}]
        return {"messages": messages, "max_tokens": max_tokens}
    if isinstance(built, list | tuple):
        messages = [
            {**m, "content": _fill(m.get("content"), item, name)} if not callable(variant) else dict(m)
            for m in built
        ]
        return {"messages": messages, "max_tokens": max_tokens}
    if isinstance(built, Mapping) and callable(variant):
        request = dict(built)
        if not isinstance(request.get("messages"), list):
            raise TypeError(f"variant {name!r} returned a dict without a 'messages' list")
        request.setdefault("max_tokens", max_tokens)
        return request
    raise TypeError(
        f"variant {name!r} must be a template string, a list of chat messages or a callable "
        f"building one, got {type(variant).__name__}"
    )


@dataclass(slots=True)
class Answer:
    """What a client returned: the text, and token usage when a user function reports it."""

    text: str
    usage: dict[str, int] | None = None


def _kind(client: Any) -> str | None:
    module = type(client).__module__ or ""
    for prefix, kind in (("openai", "openai"), ("anthropic", "anthropic"), ("google.genai", "genai")):
        if module.startswith(prefix):
            return kind
    return None


_CLIENT_ERROR = (
    "client must be an openai, anthropic or google-genai client, a function call(model, request), "
    "a list or dict of those, or None"
)


def _is_async(client: Any) -> bool:
    """openai.AsyncOpenAI, anthropic.AsyncAnthropic and their subclasses (Azure, Bedrock, ...)."""
    return any(cls.__name__.startswith("Async") for cls in type(client).__mro__)


def _split_system(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    system = [str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer")]
    rest = [m for m in messages if m.get("role") not in ("system", "developer")]
    return ("\n\n".join(system) if system else None), rest


def _openai_kwargs(model: str, request: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in request.items() if k not in ("messages", "max_tokens")}
    return {
        "model": model,
        "messages": request["messages"],
        "max_completion_tokens": request["max_tokens"],
        **extra,
    }


def _openai_text(response: Any) -> str:
    return response.choices[0].message.content or "" if response.choices else ""


def _anthropic_kwargs(model: str, request: dict[str, Any]) -> dict[str, Any]:
    system, messages = _split_system(request["messages"])
    extra = {k: v for k, v in request.items() if k not in ("messages", "max_tokens")}
    kwargs = {"model": model, "messages": messages, "max_tokens": request["max_tokens"], **extra}
    if system is not None:
        kwargs["system"] = system
    return kwargs


def _anthropic_text(response: Any) -> str:
    return "".join(getattr(block, "text", "") for block in response.content)


def _genai_call(client: Any, model: str, request: dict[str, Any]) -> str:
    system, messages = _split_system(request["messages"])
    contents = [
        {
            "role": "model" if m.get("role") == "assistant" else "user",
            "parts": [{"text": str(m.get("content") or "")}],
        }
        for m in messages
    ]
    config = {
        "max_output_tokens": request["max_tokens"],
        **{k: v for k, v in request.items() if k not in ("messages", "max_tokens")},
    }
    if system is not None:
        config["system_instruction"] = system
    return client.models.generate_content(model=model, contents=contents, config=config).text or ""


def _user_answer(result: Any) -> Answer:
    if isinstance(result, Answer):
        return result
    if isinstance(result, str):
        return Answer(result)
    if isinstance(result, Mapping):
        usage = {k: int(v) for k, v in result.items() if k.endswith("_tokens")}
        return Answer(str(result.get("text") or ""), usage or None)
    for extract in (_openai_text, _anthropic_text, lambda r: r.text):
        try:
            return Answer(str(extract(result)))
        except (AttributeError, IndexError, TypeError):
            continue
    raise TypeError(
        f"call(model, request) must return a str, a dict with 'text' (and optionally "
        f"'input_tokens'/'output_tokens') or an SDK response, got {type(result).__name__}"
    )


class Router:
    """Sends a request for a model through the right client. ``client``: one SDK client (used for every
    model), a list of them (chosen by the model's provider), a dict keyed by model or provider, a user
    function ``call(model, request)`` (sync or async), or None for each provider's default client."""

    def __init__(self, client: Any, *, loop_local: bool = False) -> None:
        self.client = client
        self.loop_local = loop_local
        self._defaults: dict[str, Any] = {}
        self._copies: dict[int, Any] = {}
        self._routes: dict[str, tuple[str, Callable[[dict[str, Any]], Callable[[], Any]]]] = {}

    def _on_this_loop(self, client: Any) -> Any:
        """An async SDK client's connections belong to the event loop that opened them. On a private loop
        (``compare()``'s worker), use a copy with its own connection pool, so the caller's client is not
        left holding connections of a closed loop; closed by :meth:`aclose`. A custom ``http_client`` the
        SDK cannot rebuild is used as it is."""
        if not self.loop_local or type(client._client).__name__ != "AsyncHttpxClientWrapper":
            return client
        if id(client) not in self._copies:
            self._copies[id(client)] = client.copy(http_client=_loop_local_http_client(client))
        return self._copies[id(client)]

    async def aclose(self) -> None:
        """Close the loop-local client copies (on the loop that used them)."""
        copies, self._copies = list(self._copies.values()), {}
        for copy in copies:
            await copy.close()

    def _client_for(self, model: str) -> Any:
        client, provider = self.client, provider_of(model)
        if isinstance(client, Mapping):
            if model in client:
                return client[model]
            if provider in client:
                return client[provider]
            raise KeyError(
                f"no client for model {model!r}: the client dict has keys {', '.join(map(str, client))}"
                " (use model names or providers: openai, anthropic, google)"
            )
        if isinstance(client, list | tuple):
            wanted = _KINDS.get(provider or "openai")
            found = [c for c in client if _kind(c) == wanted]
            if not found:
                raise KeyError(f"no {wanted} client among those given for model {model!r}")
            return found[0]
        if client is None:
            return self._default(provider or "openai")
        return client

    def _default(self, provider: str) -> Any:
        if provider not in self._defaults:
            if provider == "anthropic":
                import anthropic

                self._defaults[provider] = anthropic.Anthropic()
            elif provider == "google":
                from google import genai

                self._defaults[provider] = genai.Client()
            else:
                import openai

                self._defaults[provider] = openai.OpenAI()
        return self._defaults[provider]

    def check(self, models: list[str]) -> None:
        """Fail before the grid starts when a model has no client."""
        for model in models:
            client = self._client_for(model)
            if _kind(client) is None and not callable(client):
                raise TypeError(_CLIENT_ERROR + f"; got {type(client).__name__}")

    def plan(self, model: str, request: dict[str, Any]) -> tuple[str, Callable[[], Any]]:
        """How to send: ``("async", make_coroutine)`` or ``("thread", blocking_function)``."""
        route = self._routes.get(model)
        if route is None:  # the client, its kind and its method found once per model, not per request
            route = self._routes[model] = self._route(model)
        mode, make = route
        return mode, make(request)

    def _route(self, model: str) -> tuple[str, Callable[[dict[str, Any]], Callable[[], Any]]]:
        client = self._client_for(model)
        kind = _kind(client)
        if kind in ("openai", "anthropic"):
            if _is_async(client):
                return "async", _sdk_sender(self._on_this_loop(client), kind, model, is_async=True)
            return "thread", _sdk_sender(client, kind, model, is_async=False)
        if kind == "genai":  # the sync client: its async one bypasses httpx when aiohttp is installed
            return "thread", lambda request: lambda: Answer(_genai_call(client, model, request))
        if callable(client):
            if inspect.iscoroutinefunction(client):

                def make_user(request: dict[str, Any]) -> Callable[[], Any]:
                    async def send_user() -> Answer:
                        return _user_answer(await client(model, request))

                    return send_user

                return "async", make_user
            return "thread", lambda request: lambda: _user_answer(client(model, request))
        raise TypeError(_CLIENT_ERROR + f"; got {type(client).__name__}")


def _sdk_sender(client: Any, kind: str, model: str, *, is_async: bool
                ) -> Callable[[dict[str, Any]], Callable[[], Any]]:
    """For an openai or anthropic client: request -> what sends it (a coroutine function when async)."""
    create = client.chat.completions.create if kind == "openai" else client.messages.create
    kwargs, text = _SDK_ADAPTERS[kind]
    if not is_async:
        return lambda request: lambda: Answer(text(create(**kwargs(model, request))))

    def make(request: dict[str, Any]) -> Callable[[], Any]:
        async def send_async() -> Answer:
            return Answer(text(await create(**kwargs(model, request))))

        return send_async

    return make


_SDK_ADAPTERS = {"openai": (_openai_kwargs, _openai_text), "anthropic": (_anthropic_kwargs, _anthropic_text)}


def _loop_local_http_client(client: Any) -> Any:
    """A new default http client for an SDK client's copy, sharing one SSL context per process: building
    the context (loading the CA bundle) is most of a new client's cost, about 10-30 ms per ``compare()``."""
    import importlib

    sdk = importlib.import_module(type(client).__module__.split(".")[0])
    factory = sdk.DefaultAsyncHttpxClient
    http_module = importlib.import_module(factory.__mro__[1].__module__.split(".")[0])  # httpx or httpx2
    with _ssl_lock:
        context = _ssl_contexts.get(http_module.__name__)
        if context is None:
            context = _ssl_contexts[http_module.__name__] = http_module.create_ssl_context()
    return factory(verify=context)


_ssl_contexts: dict[str, Any] = {}  # http library -> its default SSL context (safe to share across loops)
_ssl_lock = threading.Lock()


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: rate limits, timeouts, 5xx, dropped connections — never a deliberate budget stop."""
    if getattr(exc, "_llmcost_deliberate", False):
        return False
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(exc, "code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return status in (408, 409, 429) or 500 <= status < 600
    name = type(exc).__name__
    return any(part in name for part in ("Timeout", "Connection", "RemoteProtocol", "ReadError"))
