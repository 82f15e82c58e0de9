"""Which requests are LLM calls, and what they ask for."""

from __future__ import annotations

import json

import pytest

from llmcost_nb.pricing.providers import Endpoint, classify, request_info


@pytest.mark.parametrize(
    ("method", "host", "path", "expected"),
    [
        ("POST", "api.openai.com", "/v1/chat/completions", Endpoint("openai", "chat", "api.openai.com")),
        ("POST", "api.openai.com", "/v1/responses", Endpoint("openai", "responses", "api.openai.com")),
        ("POST", "api.openai.com", "/v1/embeddings", Endpoint("openai", "embeddings", "api.openai.com")),
        ("POST", "api.openai.com", "/v1/completions", Endpoint("openai", "completions", "api.openai.com")),
        ("POST", "api.anthropic.com", "/v1/messages", Endpoint("anthropic", "messages", "api.anthropic.com")),
        ("POST", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:generateContent",
         Endpoint("google", "gemini", "generativelanguage.googleapis.com")),
        ("POST", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
         Endpoint("google", "gemini", "generativelanguage.googleapis.com")),
        ("POST", "my.openai.azure.com", "/openai/deployments/x/chat/completions",
         Endpoint("azure", "chat", "my.openai.azure.com")),
        ("POST", "openrouter.ai", "/api/v1/chat/completions",
         Endpoint("openrouter", "chat", "openrouter.ai")),
        ("POST", "localhost", "/v1/chat/completions", Endpoint(None, "chat", "localhost")),
        ("GET", "api.openai.com", "/v1/models", None),
        ("GET", "api.openai.com", "/v1/chat/completions", None),
        ("POST", "api.anthropic.com", "/v1/messages/count_tokens", None),
        ("POST", "api.openai.com", "/v1/threads/t1/messages", None),
        ("POST", "api.openai.com", "/v1/files", None),
        ("POST", "generativelanguage.googleapis.com", "/v1beta/models/x:countTokens", None),
    ],
)
def test_classify(method, host, path, expected):
    assert classify(method, host, path) == expected


def test_request_info_openai():
    ep = Endpoint("openai", "chat", "h")
    body = {"model": "gpt-4.1", "stream": True, "stream_options": {"include_usage": True},
            "max_completion_tokens": 50, "service_tier": "flex"}
    info = request_info(ep, "/v1/chat/completions", json.dumps(body).encode())
    assert (info.model, info.stream, info.include_usage, info.max_output_tokens, info.service_tier) == (
        "gpt-4.1", True, True, 50, "flex")


def test_request_info_gemini_takes_model_from_path():
    ep = Endpoint("google", "gemini", "h")
    body = {"contents": [], "generationConfig": {"maxOutputTokens": 7}}
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    info = request_info(ep, path, json.dumps(body).encode())
    assert (info.model, info.stream, info.max_output_tokens) == ("gemini-2.5-flash", True, 7)


@pytest.mark.parametrize("content", [b"[1, 2]", b'"text"'])
def test_request_info_rejects_non_objects(content):
    with pytest.raises(ValueError, match="not a JSON object"):
        request_info(Endpoint(None, "chat", "h"), "/v1/chat/completions", content)


def test_request_info_ignores_odd_values():
    info = request_info(Endpoint(None, "chat", "h"), "/x/chat/completions",
                        b'{"model": 5, "max_tokens": -3, "stream": "yes", "service_tier": "auto"}')
    assert (info.model, info.max_output_tokens, info.stream, info.service_tier) == (None, None, False, None)
