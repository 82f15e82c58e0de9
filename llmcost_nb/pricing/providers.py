"""Which HTTP requests are LLM calls: the provider and wire format (API flavor) of a request, and what the
request asks for (model, streaming, output limit).

Recognised by path, so any OpenAI-compatible base URL works (vLLM, Ollama, LiteLLM proxy, OpenRouter, ...):

============================  ===========  ===================================
path ends with                api          wire format
============================  ===========  ===================================
``/chat/completions``         chat         OpenAI Chat Completions
``/responses``                responses    OpenAI Responses
``/embeddings``               embeddings   OpenAI Embeddings
``/completions``              completions  OpenAI legacy Completions
``/v1/messages``              messages     Anthropic Messages
``:generateContent``          gemini       Google Gemini (also ``:streamGenerateContent``)
``/model/{id}/converse``      converse     Amazon Bedrock Converse (also ``-stream``)
``/model/{id}/invoke``        invoke       Amazon Bedrock InvokeModel (also ``-with-response-stream``)
============================  ===========  ===================================

Bedrock's formats are read by :mod:`.bedrock`; the model id comes from the path.

The provider (a genai-prices provider id) comes from the host; on an unknown host (a proxy, a local server)
it is left empty and pricing finds the provider from the model name: a gateway's provider prefix
(``openai/gpt-4o-mini``, ``anthropic/claude-sonnet-4``, ``meta-llama/...``) names it, read as genai-prices
reads a provider id (its ids and ``provider_match`` rules) plus :data:`PREFIX_ALIASES`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ..core import wire_json
from . import bedrock

__all__ = ["PREFIX_ALIASES", "WIRE_PROVIDER", "Endpoint", "RequestInfo", "classify", "host_of",
           "provider_for_host", "request_info"]

# The provider whose wire format each API flavor is: where pricing looks a model up first when the host is
# unknown (a proxy, a local server, the fake provider); the pricer falls back to any provider listing it.
WIRE_PROVIDER = {"chat": "openai", "responses": "openai", "embeddings": "openai", "completions": "openai",
                 "messages": "anthropic", "gemini": "google", "converse": "aws", "invoke": "aws"}

# Model-name prefixes gateways write (OpenRouter's organisation names, LiteLLM's provider names) that are
# neither a genai-prices provider id nor taken by its ``provider_match`` rules, and the provider they mean.
# The others (``openai``, ``anthropic``, ``google``, ``mistralai``, ``x-ai``/``xai``, ``deepseek``,
# ``moonshotai``, ``vertex_ai``, ``bedrock``, ``together_ai``, ``groq``, ``openrouter``, ...) genai-prices
# resolves itself.
PREFIX_ALIASES = {
    "meta-llama": "meta",
    "deepseek-ai": "deepseek",
    "fireworks_ai": "fireworks",
    "fireworks-ai": "fireworks",
    "z-ai": "zai",
    "azure_ai": "azure",
}

_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "google",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.together.xyz": "together",
    "api.mistral.ai": "mistral",
    "api.x.ai": "x-ai",
    "api.fireworks.ai": "fireworks",
    "api.perplexity.ai": "perplexity",
    "api.cerebras.ai": "cerebras",
    "api.moonshot.ai": "moonshotai",
    "api.cohere.ai": "cohere",
}
_HOST_SUFFIXES = {
    ".openai.azure.com": "azure",
    ".services.ai.azure.com": "azure",
    "aiplatform.googleapis.com": "google",
}
_PATH_SUFFIXES = (
    ("/chat/completions", "chat"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/completions", "completions"),
    ("/v1/messages", "messages"),
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    provider: str | None
    api: str
    host: str


@dataclass(slots=True)
class RequestInfo:
    """What the request body asks for; every field may be None when the body says nothing of it."""

    model: str | None = None
    stream: bool = False
    max_output_tokens: int | None = None
    include_usage: bool = False
    service_tier: str | None = None
    body: dict[str, Any] | None = None


def host_of(base_url: str) -> str:
    """The host a base URL (``http://127.0.0.1:8000/v1``) or a bare host (``gpu-box``, ``gpu-box:8000``)
    names, lower-cased and without port: what capture records as a call's ``host``.

    >>> host_of("http://127.0.0.1:8000/v1"), host_of("GPU-Box:8000")
    ('127.0.0.1', 'gpu-box')
    """
    from urllib.parse import urlsplit

    if not isinstance(base_url, str) or not base_url.strip():
        raise TypeError(f"expected a base URL such as 'http://127.0.0.1:8000/v1' or a host name, got "
                        f"{base_url!r}")
    text = base_url.strip()
    host = urlsplit(text if "://" in text else f"//{text}").hostname
    if not host:
        raise ValueError(f"no host in {base_url!r}: expected a base URL such as 'http://127.0.0.1:8000/v1'")
    return host.lower()


def provider_for_host(host: str) -> str | None:
    host = host.lower()
    if (found := _HOSTS.get(host)) is not None:
        return found
    if bedrock.is_bedrock_host(host):
        return "aws"
    for suffix, provider in _HOST_SUFFIXES.items():
        if host.endswith(suffix):
            return provider
    return None


def classify(method: str, host: str, path: str) -> Endpoint | None:
    """The endpoint of an LLM call, or None for any other request (which capture lets through untouched)."""
    if method != "POST":
        return None
    return _classify_post(host, path)


@functools.lru_cache(maxsize=1024)  # hosts and paths repeat: a Bedrock path alone took ~4 µs to read
def _classify_post(host: str, path: str) -> Endpoint | None:
    if path.startswith("/model/"):
        found = bedrock.route(path)
        return Endpoint(provider_for_host(host), found[0], host) if found is not None else None
    if ":" in path:
        if path.endswith((":generateContent", ":streamGenerateContent")):
            return Endpoint(provider_for_host(host) or None, "gemini", host)
        return None
    for suffix, api in _PATH_SUFFIXES:
        if path.endswith(suffix):
            return Endpoint(provider_for_host(host), api, host)
    return None


def request_info(endpoint: Endpoint, path: str, content: bytes | None) -> RequestInfo:
    """Parse what a request asks for. Raises ValueError on a body that is not a JSON object."""
    info = RequestInfo()
    body = wire_json.loads(content) if content else {}
    if not isinstance(body, dict):
        raise ValueError(f"request body is {type(body).__name__}, not a JSON object")
    info.body = body
    if endpoint.api in bedrock.APIS:
        _, info.model, info.stream = bedrock.route(path) or ("", None, False)
        info.max_output_tokens = bedrock.max_output_tokens(endpoint.api, info.model, body)
        return info
    if endpoint.api == "gemini":
        # .../models/{model}:generateContent — the model lives in the path, not the body.
        name = path.rsplit("/", 1)[-1].split(":", 1)[0]
        info.model = name or None
        info.stream = path.endswith(":streamGenerateContent")
        config = body.get("generationConfig") or body.get("generation_config") or {}
        info.max_output_tokens = _int(config.get("maxOutputTokens") or config.get("max_output_tokens"))
        return info
    model = body.get("model")
    info.model = model if isinstance(model, str) else None
    info.stream = body.get("stream") is True
    info.max_output_tokens = _int(
        body.get("max_completion_tokens") or body.get("max_output_tokens") or body.get("max_tokens")
    )
    options = body.get("stream_options")
    info.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    tier = body.get("service_tier")
    info.service_tier = tier if isinstance(tier, str) and tier not in ("auto", "default") else None
    return info


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
