"""With ``otel = true``, every model call is an OpenTelemetry span named and described by
the GenAI semantic conventions, sent through the global tracer provider (here the SDK's,
with an in-memory exporter, as an application would set up its OTLP exporter)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import threadline
from threadline.testing import Reply, ScriptedToolCall

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # the global provider is set once
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def config(otel: bool = True) -> threadline.Config:
    return threadline.Config.from_dict(
        {"storage": {"backend": "memory"}, "middleware": {"chain": ["metrics"], "metrics": {"otel": otel}}}
    )


@threadline.tool
def lookup(name: str) -> str:
    """A person's desk."""
    return f"{name} sits at desk 4"


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


async def test_each_call_is_a_client_span_with_the_conventions_attributes(spans: InMemorySpanExporter) -> None:
    async with threadline.SessionManager(config(), tools=[lookup]) as manager:
        session = await manager.create_session(provider="echo", model="echo-1", tools=["lookup"])
        manager.provider("echo").script([Reply(tool_calls=(ScriptedToolCall("lookup", {"name": "ann"}),))])  # type: ignore[attr-defined]
        reply = await session.send("where is ann?", max_tokens=50)
        async for _ in session.stream("thanks"):
            pass
    finished = spans.get_finished_spans()
    assert [span.name for span in finished] == ["chat echo-1"] * 3  # the tool step, its answer, the stream
    tool_step, answer, streamed = (attributes(span) for span in finished)
    assert all(span.kind is trace.SpanKind.CLIENT for span in finished)
    assert answer["gen_ai.operation.name"] == "chat" and answer["gen_ai.provider.name"] == "echo"
    assert answer["gen_ai.request.model"] == answer["gen_ai.response.model"] == "echo-1"
    assert answer["gen_ai.request.max_tokens"] == 50
    assert reply.usage is not None and answer["gen_ai.usage.output_tokens"] == reply.usage.output_tokens
    assert tool_step["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert streamed["gen_ai.response.finish_reasons"] == ("stop",) and streamed["gen_ai.usage.input_tokens"] > 0  # type: ignore[operator]


async def test_a_failed_call_is_an_error_span_naming_its_class(spans: InMemorySpanExporter) -> None:
    async with threadline.SessionManager(config()) as manager:
        session = await manager.create_session(provider="echo")
        manager.provider("echo").script([Reply(error="rate_limited"), Reply(error="dropped", text="a b c d")])  # type: ignore[attr-defined]
        with pytest.raises(threadline.RateLimited):
            await session.send("hi")
        with pytest.raises(threadline.ProviderUnavailable):
            async for _ in session.stream("hi"):
                pass
    finished = spans.get_finished_spans()
    assert [span.name for span in finished] == ["chat", "chat"]  # no model asked for
    assert [attributes(span)["error.type"] for span in finished] == ["RateLimited", "ProviderUnavailable"]
    assert all(span.status.status_code is trace.StatusCode.ERROR for span in finished)
    assert all("gen_ai.usage.input_tokens" not in attributes(span) for span in finished)


async def test_no_span_unless_asked(spans: InMemorySpanExporter) -> None:
    async with threadline.SessionManager(config(otel=False)) as manager:
        await (await manager.create_session(provider="echo")).send("hi")
    assert spans.get_finished_spans() == ()
