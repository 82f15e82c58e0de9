"""OpenTelemetry spans: the SDK's in-memory exporter, and the real OTLP/HTTP exporter to a local receiver."""

from __future__ import annotations

import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import opentelemetry.sdk  # noqa: F401  (the otel extra, part of the test extra)
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmcost_nb
from llmcost_nb import Call
from llmcost_nb.team.otel import enable_otel, export_spans, span_attributes


@pytest.fixture
def memory():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def priced(ledger):
    ledger.set_price("gpt-4.1", input_mtok="2", output_mtok="8", cache_read_mtok="0.5", provider="openai")
    ledger.set_price(
        "claude-sonnet-4-5",
        input_mtok="3",
        output_mtok="15",
        cache_read_mtok="0.3",
        cache_write_mtok="3.75",
        provider="anthropic",
    )
    return ledger


def test_each_logged_call_becomes_a_genai_span_with_its_cost(memory, priced):
    provider, exporter = memory
    sink = enable_otel(provider)
    llmcost_nb.log(
        model="gpt-4.1",
        provider="openai",
        input_tokens=1000,
        output_tokens=200,
        cache_read_tokens=400,
        reasoning_tokens=50,
        tags={"team": "search"},
        ledger=priced,
    )
    llmcost_nb.log(
        model="claude-sonnet-4-5",
        provider="anthropic",
        input_tokens=1500,
        output_tokens=100,
        cache_read_tokens=1000,
        cache_write_tokens=200,
        ledger=priced,
    )
    sink.close()
    llmcost_nb.log(model="gpt-4.1", provider="openai", input_tokens=1, output_tokens=1, ledger=priced)
    first, second = exporter.get_finished_spans()  # the third call came after close(): no span
    assert first.name == "chat gpt-4.1"
    assert first.kind.name == "CLIENT"
    attributes = dict(first.attributes)
    session_id = attributes.pop("llmcost.session_id")
    assert session_id == llmcost_nb.get_session().id
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": "gpt-4.1",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_read.input_tokens": 400,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 50,
        "llmcost.usd": 0.003,  # 600 × $2/M + 400 × $0.5/M + 200 × $8/M
        "llmcost.cost_pusd": 3_000_000_000,
        "llmcost.price_source": "override",  # the priced fixture's own prices
        "llmcost.status": "ok",
        "llmcost.billed": True,
        "llmcost.streamed": False,
        "llmcost.unpriced": False,
        "llmcost.usage_source": "manual",  # numbers given to log()
        "llmcost.tag.team": "search",
    }
    # 300 × $3/M + 1000 × $0.3/M + 200 × $3.75/M + 100 × $15/M = $0.00345
    assert second.attributes["llmcost.cost_pusd"] == 3_450_000_000
    assert second.attributes["gen_ai.usage.cache_creation.input_tokens"] == 200
    assert second.attributes["gen_ai.provider.name"] == "anthropic"


def test_captured_sdk_call_gives_a_span_timed_by_its_latency(memory, ledger, fake):
    import openai
    provider, exporter = memory
    ledger.set_price("gpt-4.1", input_mtok="2", output_mtok="8", provider="openai")
    sink = enable_otel(provider)
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")
    with llmcost_nb.track(ledger=ledger, tags={"variant": "A"}) as scope:
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi there"}])
    sink.close()
    (span,) = exporter.get_finished_spans()
    (call,) = scope.records
    assert span.attributes["gen_ai.usage.input_tokens"] == 5  # 2 words + 3 per message
    assert span.attributes["gen_ai.usage.output_tokens"] == 8  # "This is a fake reply to: hi there"
    assert span.attributes["gen_ai.response.id"] == "req_fake_1"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["llmcost.cost_pusd"] == 74_000_000  # 5 × $2/M + 8 × $8/M
    assert span.attributes["llmcost.scope_id"] == scope.id
    assert span.attributes["llmcost.tag.variant"] == "A"
    assert (span.end_time - span.start_time) == pytest.approx(call.latency_ms * 1e6, abs=1000)


def test_ledger_rows_replayed_as_spans_with_error_status(memory, ledger):
    provider, exporter = memory
    ok = Call(
        provider="google",
        api="gemini",
        model="gemini-2.5-flash",
        model_requested="gemini-2.5-flash",
        input_tokens=10,
        output_tokens=4,
        cost=Decimal("0.00001"),
        latency_ms=250.0,
        ts="2026-11-20T10:00:00.000000Z",
    )
    failed = Call(
        provider="openai",
        api="embeddings",
        model_requested="text-embedding-3-small",
        status="error",
        http_status=429,
        error="rate limited",
        billed=False,
        cost=Decimal(0),
        latency_ms=5.0,
        ts="2026-11-20T10:00:01.000000Z",
    )
    ledger.write_many([ok, failed])
    assert export_spans(ledger, provider, since="2026-11-20") == 2
    gemini, embeddings = exporter.get_finished_spans()
    assert gemini.name == "generate_content gemini-2.5-flash"
    assert gemini.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert gemini.start_time == 1_795_168_800_000_000_000
    assert gemini.end_time - gemini.start_time == 250_000_000
    assert embeddings.name == "embeddings text-embedding-3-small"
    assert embeddings.status.status_code.name == "ERROR"
    assert embeddings.status.description == "rate limited"
    assert embeddings.attributes["error.type"] == "429"
    assert "gen_ai.response.model" not in embeddings.attributes


def test_unpriced_call_has_no_cost_attribute():
    attributes = span_attributes(Call(provider="openai", model="mystery", input_tokens=3))
    assert "llmcost.usd" not in attributes and "llmcost.cost_pusd" not in attributes
    assert attributes["gen_ai.usage.input_tokens"] == 3
    assert (attributes["llmcost.unpriced"], attributes["llmcost.usage_source"]) == (True, "provider")


def test_ledger_rows_say_unpriced_and_estimated_in_their_spans(memory, ledger):
    """Issue 16: a span says a call had no price (and carries no cost), or that its tokens were estimated."""
    from _honest import DAY, write_honest

    provider, exporter = memory
    write_honest(ledger)
    assert export_spans(ledger, provider, since=DAY) == 5
    marks = [(s.attributes["gen_ai.request.model" if "gen_ai.request.model" in s.attributes else
                            "gen_ai.response.model"], s.attributes["llmcost.unpriced"],
              s.attributes["llmcost.usage_source"], s.attributes.get("llmcost.cost_pusd"))
             for s in exporter.get_finished_spans()]
    assert marks == [
        ("gpt-4.1", False, "provider", 1_200_000_000_000),
        ("gpt-4o-mini", False, "estimated", 4_200_000_000),
        ("my-ft", True, "provider", None),
        ("my-ft", True, "provider", None),
        ("gpt-4.1", False, "provider", None),  # a failed attempt: not billed, so not unpriced
    ]


class _Receiver(BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, self.headers["Content-Type"], body))  # type: ignore[attr-defined]
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_real_otlp_http_exporter_reaches_a_receiver_on_loopback(priced):
    import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        provider = TracerProvider()
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces", timeout=5)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        sink = enable_otel(provider)
        llmcost_nb.log(
            model="gpt-4.1",
            provider="openai",
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=400,
            ledger=priced,
            tags={"team": "ads"},
        )
        sink.close()
        assert provider.force_flush(10_000)
        provider.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    ((path, content_type, body),) = server.received  # type: ignore[attr-defined]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    (span,) = request.resource_spans[0].scope_spans[0].spans
    assert request.resource_spans[0].scope_spans[0].scope.name == "llmcost_nb"
    values = {kv.key: kv.value for kv in span.attributes}
    assert span.name == "chat gpt-4.1"
    assert values["gen_ai.usage.input_tokens"].int_value == 1000
    assert values["gen_ai.usage.cache_read.input_tokens"].int_value == 400
    assert values["llmcost.cost_pusd"].int_value == 3_000_000_000  # 600 × $2/M + 400 × $0.5/M + 200 × $8/M
    assert values["llmcost.usd"].double_value == 0.003
    assert values["llmcost.tag.team"].string_value == "ads"
