"""OpenTelemetry spans by the GenAI semantic conventions (v1.41), through the global tracer
provider: a turn is ``invoke_agent`` (its model calls and tool runs are its children), a
model call ``chat {model}``, a tool run ``execute_tool {name}``. With ``capture_content``,
the messages too (``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``, ``gen_ai.tool.call.arguments`` and ``.result``), in the
conventions' JSON."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from threadline.plugin import (
    Call,
    Done,
    File,
    Image,
    Message,
    Part,
    Response,
    Text,
    ToolCall,
    ToolResult,
    Turn,
)

OPERATION = "chat"  # gen_ai.operation.name of every model call a session makes
#: gen_ai.provider.name of the threadline providers whose conventional name is not their own
PROVIDER_NAMES = {"gemini": "gcp.gemini"}
Attributes = dict[str, str | int | float | Sequence[str]]


class Spans:
    def __init__(self, capture_content: bool) -> None:
        self.tracer = trace.get_tracer("threadline_metrics")
        self.capture_content = capture_content

    def start_turn(self, turn: Turn) -> Span:
        """A turn's span, a child of the span current where the turn began."""
        attributes: Attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": PROVIDER_NAMES.get(turn.provider, turn.provider),
            "gen_ai.conversation.id": turn.session.id,
            **({"gen_ai.request.model": turn.model} if turn.model else {}),
        }
        return self.tracer.start_span("invoke_agent", kind=SpanKind.INTERNAL, attributes=attributes)

    def start_call(self, call: Call, parent: Span | None) -> Span:
        model = call.request.model
        attributes: Attributes = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": PROVIDER_NAMES.get(call.provider, call.provider),
            "gen_ai.conversation.id": call.session.id,
            **({"gen_ai.request.model": model} if model else {}),
        }
        options = call.request.options
        if options.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = options.max_tokens
        if options.temperature is not None:
            attributes["gen_ai.request.temperature"] = options.temperature
        if self.capture_content:
            attributes["gen_ai.input.messages"] = _json(_message(m) for m in call.request.messages)
            if call.request.system_prompt:
                attributes["gen_ai.system_instructions"] = _json([_text(call.request.system_prompt)])
        name = f"{OPERATION} {model}" if model else OPERATION
        return self.tracer.start_span(name, _context(parent), SpanKind.CLIENT, attributes)

    def start_tool(self, call: ToolCall, turn: Turn, parent: Span | None) -> Span:
        attributes: Attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
            "gen_ai.tool.type": "function",
            "gen_ai.conversation.id": turn.session.id,
        }
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = json.dumps(dict(call.arguments), default=str)
        return self.tracer.start_span(f"execute_tool {call.name}", _context(parent), SpanKind.INTERNAL, attributes)

    def end_call(self, span: Span, reply: Response | Done | None, error: str, parts: Sequence[Part] = ()) -> None:
        """End a model call's or a turn's span, with what it replied (``parts``, when the reply
        does not carry them) or the class of its error."""
        attributes: Attributes = {}
        if reply is not None:
            usage = reply.usage
            if reply.model:
                attributes["gen_ai.response.model"] = reply.model
            attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
            if usage.cached_tokens:
                attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
            attributes["gen_ai.response.finish_reasons"] = [reply.finish_reason]
            if self.capture_content:
                output = {**_message_parts("assistant", parts or reply.parts), "finish_reason": reply.finish_reason}
                attributes["gen_ai.output.messages"] = _json([output])
        _end(span, attributes, error)

    def end_tool(self, span: Span, result: ToolResult | None, error: str) -> None:
        attributes: Attributes = {}
        if result is not None and result.is_error and not error:
            error = "tool_error"  # a result that says it failed, from a stage that refused the run
        elif result is not None and self.capture_content:
            attributes["gen_ai.tool.call.result"] = result.content
        _end(span, attributes, error)


def _context(parent: Span | None) -> Any:
    return trace.set_span_in_context(parent) if parent is not None else None


def _end(span: Span, attributes: Attributes, error: str) -> None:
    if error:
        attributes["error.type"] = error
        span.set_status(Status(StatusCode.ERROR))
    if attributes:
        span.set_attributes(attributes)
    span.end()


def _json(items: Iterable[Any]) -> str:
    return json.dumps(list(items), ensure_ascii=False, default=str)


def _message(message: Message) -> dict[str, Any]:
    return _message_parts(message.role.value, message.parts)


def _message_parts(role: str, parts: Iterable[Part]) -> dict[str, Any]:
    return {"role": role, "parts": [_part(part) for part in parts]}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


def _part(part: Part) -> dict[str, Any]:
    """A part as the conventions' JSON schema of messages has it."""
    if isinstance(part, Text):
        return _text(part.text)
    if isinstance(part, ToolCall):
        return {"type": "tool_call", "id": part.id, "name": part.name, "arguments": dict(part.arguments)}
    if isinstance(part, ToolResult):
        return {"type": "tool_call_response", "id": part.call_id, "response": part.content}
    assert isinstance(part, Image | File)
    modality = "image" if isinstance(part, Image) else "document"
    if part.url is not None:
        return {"type": "uri", "modality": modality, "mime_type": part.media_type, "uri": part.url}
    content = base64.b64encode(part.data or b"").decode()
    return {"type": "blob", "modality": modality, "mime_type": part.media_type, "content": content}
