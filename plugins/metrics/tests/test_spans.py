"""With ``otel = true``, every turn, model call and tool run is an OpenTelemetry span named
and described by the GenAI semantic conventions, sent through the global tracer provider
(here the SDK's, with an in-memory exporter, as an application would set up its OTLP
exporter)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

import attrs
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import threadline
from threadline.plugin import Call, Event, Middleware, Request, SessionRecord, Turn, TurnNext, hookimpl
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


def config(otel: bool = True, **metrics: object) -> threadline.Config:
    return threadline.Config.from_dict(
        {"storage": {"backend": "memory"}, "middleware": {"chain": ["metrics"], "metrics": {"otel": otel, **metrics}}}
    )


@threadline.tool
def lookup(name: str) -> str:
    """A person's desk."""
    with trace.get_tracer("the application").start_as_current_span("desk directory"):
        return f"{name} sits at desk 4"


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def by_name(finished: Sequence[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        named.setdefault(span.name, []).append(span)
    return named


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def chat_with_a_tool(manager: threadline.SessionManager) -> threadline.Message:
    session = await manager.create_session(provider="echo", model="echo-1", tools=["lookup"], system_prompt="Be brief.")
    manager.provider("echo").script([Reply(tool_calls=(ScriptedToolCall("lookup", {"name": "ann"}),))])  # type: ignore[attr-defined]
    reply = await session.send("where is ann?", max_tokens=50)
    async for _ in session.stream("thanks"):
        pass
    return reply


async def test_each_call_is_a_client_span_with_the_conventions_attributes(spans: InMemorySpanExporter) -> None:
    async with threadline.SessionManager(config(), tools=[lookup]) as manager:
        reply = await chat_with_a_tool(manager)
    calls = by_name(spans.get_finished_spans())["chat echo-1"]
    assert len(calls) == 3  # the tool step, its answer, the stream
    tool_step, answer, streamed = (attributes(span) for span in calls)
    assert all(span.kind is trace.SpanKind.CLIENT for span in calls)
    assert answer["gen_ai.operation.name"] == "chat" and answer["gen_ai.provider.name"] == "echo"
    assert answer["gen_ai.request.model"] == answer["gen_ai.response.model"] == "echo-1"
    assert answer["gen_ai.request.max_tokens"] == 50
    assert answer["gen_ai.conversation.id"] == reply.session_id
    assert reply.usage is not None and answer["gen_ai.usage.output_tokens"] == reply.usage.output_tokens
    assert tool_step["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert streamed["gen_ai.response.finish_reasons"] == ("stop",) and streamed["gen_ai.usage.input_tokens"] > 0  # type: ignore[operator]
    assert not any(key.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system")) for key in answer)


async def test_a_turn_is_the_parent_of_its_calls_and_tool_runs(spans: InMemorySpanExporter) -> None:
    application = trace.get_tracer("the application")
    async with threadline.SessionManager(config(), tools=[lookup]) as manager:
        with application.start_as_current_span("handle request") as request:
            reply = await chat_with_a_tool(manager)
    named = by_name(spans.get_finished_spans())
    first, second = named["invoke_agent"]
    assert parent_of(first) == parent_of(second) == request.get_span_context().span_id
    assert first.kind is trace.SpanKind.INTERNAL
    turn = attributes(first)
    assert turn["gen_ai.operation.name"] == "invoke_agent" and turn["gen_ai.provider.name"] == "echo"
    assert turn["gen_ai.conversation.id"] == reply.session_id and turn["gen_ai.request.model"] == "echo-1"
    calls = named["chat echo-1"]
    assert turn["gen_ai.usage.output_tokens"] == sum(attributes(c)["gen_ai.usage.output_tokens"] for c in calls[:2])  # type: ignore[misc]
    turn_id = first.get_span_context().span_id
    assert [parent_of(span) for span in calls] == [turn_id, turn_id, second.get_span_context().span_id]
    (tool,) = named["execute_tool lookup"]
    assert parent_of(tool) == turn_id and tool.kind is trace.SpanKind.INTERNAL
    assert attributes(tool) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup",
        "gen_ai.tool.call.id": reply_call_id(named),
        "gen_ai.tool.type": "function",
        "gen_ai.conversation.id": reply.session_id,
    }
    (directory,) = named["desk directory"]  # the tool's own span nests under its run
    assert parent_of(directory) == tool.get_span_context().span_id


def reply_call_id(named: dict[str, list[ReadableSpan]]) -> object:
    (tool,) = named["execute_tool lookup"]
    call_id = attributes(tool)["gen_ai.tool.call.id"]
    assert isinstance(call_id, str) and call_id
    return call_id


async def test_a_tool_that_raises_is_an_error_span_and_so_is_a_refused_one(spans: InMemorySpanExporter) -> None:
    @threadline.tool
    def broken(name: str) -> str:
        """Always fails."""
        raise LookupError(name)

    async with threadline.SessionManager(config(), tools=[broken]) as manager:
        session = await manager.create_session(provider="echo", tools=["broken"])
        calls = (ScriptedToolCall("broken", {"name": "ann"}), ScriptedToolCall("missing", {}))
        manager.provider("echo").script([Reply(tool_calls=calls)])  # type: ignore[attr-defined]
        await session.send("go")
    named = by_name(spans.get_finished_spans())
    (raised,), (unknown,) = named["execute_tool broken"], named["execute_tool missing"]
    assert attributes(raised)["error.type"] == "LookupError" and attributes(unknown)["error.type"] == "ToolError"
    assert raised.status.status_code is unknown.status.status_code is trace.StatusCode.ERROR
    assert "error.type" not in attributes(named["invoke_agent"][0])  # the model read the errors and replied


async def test_with_capture_content_the_messages_are_on_the_spans_as_the_conventions_shape_them(
    spans: InMemorySpanExporter,
) -> None:
    async with threadline.SessionManager(config(capture_content=True), tools=[lookup]) as manager:
        reply = await chat_with_a_tool(manager)
    named = by_name(spans.get_finished_spans())
    tool_step, answer, streamed = (attributes(span) for span in named["chat echo-1"])
    assert json.loads(str(tool_step["gen_ai.system_instructions"])) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(str(tool_step["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "where is ann?"}]}
    ]
    (call,) = json.loads(str(tool_step["gen_ai.output.messages"]))[0]["parts"]
    assert call["type"] == "tool_call" and call["name"] == "lookup" and call["arguments"] == {"name": "ann"}
    sent = json.loads(str(answer["gen_ai.input.messages"]))
    assert [message["role"] for message in sent] == ["user", "assistant", "tool"]
    assert sent[2]["parts"] == [{"type": "tool_call_response", "id": call["id"], "response": "ann sits at desk 4"}]
    assert json.loads(str(answer["gen_ai.output.messages"])) == [
        {"role": "assistant", "parts": [{"type": "text", "content": reply.text}], "finish_reason": "stop"}
    ]
    (output,) = json.loads(str(streamed["gen_ai.output.messages"]))  # a stream's reply, assembled from its deltas
    assert output["parts"] == [{"type": "text", "content": "thanks"}]
    (tool,) = named["execute_tool lookup"]
    assert json.loads(str(attributes(tool)["gen_ai.tool.call.arguments"])) == {"name": "ann"}
    assert attributes(tool)["gen_ai.tool.call.result"] == "ann sits at desk 4"


async def test_a_failed_call_is_an_error_span_naming_its_class(spans: InMemorySpanExporter) -> None:
    async with threadline.SessionManager(config()) as manager:
        session = await manager.create_session(provider="echo")
        manager.provider("echo").script([Reply(error="rate_limited"), Reply(error="dropped", text="a b c d")])  # type: ignore[attr-defined]
        with pytest.raises(threadline.RateLimited):
            await session.send("hi")
        with pytest.raises(threadline.ProviderUnavailable):
            async for _ in session.stream("hi"):
                pass
    finished = [span for span in spans.get_finished_spans() if span.name != "invoke_agent"]
    assert [span.name for span in finished] == ["chat", "chat"]  # no model asked for
    assert [attributes(span)["error.type"] for span in finished] == ["RateLimited", "ProviderUnavailable"]
    assert all(span.status.status_code is trace.StatusCode.ERROR for span in finished)
    assert all("gen_ai.usage.input_tokens" not in attributes(span) for span in finished)


async def test_no_span_unless_asked(spans: InMemorySpanExporter) -> None:
    async with threadline.SessionManager(config(otel=False)) as manager:
        await (await manager.create_session(provider="echo")).send("hi")
    assert spans.get_finished_spans() == ()


async def test_a_turn_a_later_stage_changes_is_still_the_parent_of_its_calls(spans: InMemorySpanExporter) -> None:
    class Upgrade(Middleware):
        def turn(self, turn: Turn, next: TurnNext) -> AsyncGenerator[Event, None]:
            return next(attrs.evolve(turn, model="echo-2"))

    class Plugin:
        @hookimpl
        def threadline_register_middleware(self, register: Any) -> None:
            register("upgrade", lambda _config: Upgrade())

    config = threadline.Config.from_dict(
        {"storage": {"backend": "memory"}, "middleware": {"chain": ["metrics", "upgrade"], "metrics": {"otel": True}}}
    )
    async with threadline.SessionManager(config, plugins=[Plugin()]) as manager:
        await (await manager.create_session(provider="echo")).send("hi")
    named = by_name(spans.get_finished_spans())
    (turn,), (call,) = named["invoke_agent"], named["chat echo-2"]
    assert parent_of(call) == turn.get_span_context().span_id


def test_gemini_is_named_as_the_conventions_name_it(spans: InMemorySpanExporter) -> None:
    from threadline_metrics.spans import Spans

    call = Call(SessionRecord(provider="gemini"), "gemini", Request("gemini-2.5-flash", ()))
    Spans(capture_content=False).start_call(call, None).end()
    (span,) = spans.get_finished_spans()
    assert attributes(span)["gen_ai.provider.name"] == "gcp.gemini"
