"""The Responses API (``api = "responses"``), with the conversation kept on OpenAI's side.

``Session.provider_state`` holds ``{"response_id": ..., "through_seq": n}``: the last
response and the seq of the last message it has seen. The next call names that response
as ``previous_response_id`` and sends only the messages after ``n``; when the state is
missing (a new session, one that came from another provider) or OpenAI no longer has the
response, the whole history is sent instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from attrs import define, field

from threadline.plugin import (
    PDF,
    BadRequest,
    Done,
    Event,
    File,
    Image,
    Message,
    Part,
    ProviderUnavailable,
    Request,
    Response,
    Role,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
    data_url,
    unchecked_constructor,
)
from threadline_openai import OpenAIConfig
from threadline_openai.chat import arguments, schema_format
from threadline_openai.errors import PROVIDER, stream_error

# the body keys ``POST /responses/input_tokens`` takes; it refuses the ones for the reply
COUNTED: Final = (
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "previous_response_id",
    "conversation", "reasoning", "text", "truncation", "personality",
)  # fmt: skip
_text_delta: Final = unchecked_constructor(TextDelta)


def previous_response(request: Request, config: OpenAIConfig) -> tuple[str, int] | None:
    """``(response id, through seq)`` to continue from, when the request's state has them."""
    state = request.provider_state
    response_id, through = state.get("response_id"), state.get("through_seq")
    if not config.native_state or not isinstance(response_id, str) or not isinstance(through, int):
        return None
    if not any(m.seq > through for m in request.messages):
        return None
    return response_id, through


def body(request: Request, config: OpenAIConfig, *, stream: bool, previous: tuple[str, int] | None) -> dict[str, Any]:
    """The JSON body for ``POST /responses``: the whole history, or after ``previous`` only the new turn."""
    if request.options.stop:
        raise BadRequest(
            'the Responses API has no stop sequences; leave out stop= or use api = "chat"', provider=PROVIDER
        )
    messages = [m for m in request.messages if previous is None or m.seq > previous[1]]
    payload: dict[str, Any] = {
        "model": request.model or config.default_model,
        "input": [item for message in messages for item in _items(message)],
        "store": config.native_state,
    }
    if previous is not None:
        payload["previous_response_id"] = previous[0]
    if request.system_prompt:
        payload["instructions"] = request.system_prompt
    if request.tools:
        payload["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in request.tools
        ]
    if request.output is not None:
        payload["text"] = {"format": {"type": "json_schema", **schema_format(request.output)}}
    options = request.options
    if options.temperature is not None:
        payload["temperature"] = options.temperature
    if options.max_tokens is not None:
        payload["max_output_tokens"] = options.max_tokens
    if stream:
        payload["stream"] = True
    return {**payload, **options.extra}


def count_body(request: Request, config: OpenAIConfig, *, previous: tuple[str, int] | None) -> dict[str, Any]:
    """The JSON body for ``POST /responses/input_tokens``: the ``POST /responses`` body
    without what only shapes the reply or its storing (``max_output_tokens``, sampling,
    ``store``, ``stream``)."""
    payload = body(request, config, stream=False, previous=previous)
    return {key: payload[key] for key in COUNTED if key in payload}


def _items(message: Message) -> list[dict[str, Any]]:
    if message.role is Role.TOOL:
        return [
            {"type": "function_call_output", "call_id": r.call_id, "output": r.content}
            for r in message.parts
            if isinstance(r, ToolResult)
        ]
    if message.role is Role.ASSISTANT:
        items: list[dict[str, Any]] = []
        if message.text:
            items.append({"role": "assistant", "content": [{"type": "output_text", "text": message.text}]})
        items += [
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": json.dumps(c.arguments)}
            for c in message.tool_calls
        ]
        return items
    return [{"role": message.role.value, "content": [_content(part) for part in message.parts]}]


def _content(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, Image):
        return {"type": "input_image", "image_url": part.url or data_url(part.media_type, part.data or b"")}
    if isinstance(part, File) and part.media_type == PDF:
        if part.url is not None:
            return {"type": "input_file", "file_url": part.url}
        return {
            "type": "input_file",
            "filename": part.name or "document.pdf",
            "file_data": data_url(PDF, part.data or b""),
        }
    if isinstance(part, File) and part.media_type.startswith("text/") and part.data is not None:
        return {
            "type": "input_text",
            "text": f"{part.name or 'attached file'}:\n{part.data.decode('utf-8', 'replace')}",
        }
    raise BadRequest(
        f"cannot send a {type(part).__name__} of type {getattr(part, 'media_type', '?')}", provider=PROVIDER
    )


def response(result: Any, request: Request, config: OpenAIConfig) -> Response:
    """A ``Response`` object of the API as a threadline ``Response``."""
    if result.status == "failed" and result.error is not None:
        raise stream_error(_as_mapping(result.error))
    parts: list[Part] = []
    for item in result.output or ():
        if item.type == "message":
            text = "".join(c.text if c.type == "output_text" else c.refusal for c in item.content)
            if text:
                parts.append(Text(text))
        elif item.type == "function_call":
            parts.append(ToolCall(item.call_id, item.name, arguments(item.arguments, item.name)))
    return Response(
        tuple(parts),
        usage(result.usage),
        finish_reason(result, parts),
        result.model,
        state(result, request, config),
    )


@define
class ResponseStream:
    """Reads the API's stream events (a ``StreamReader``). Tool calls are numbered by their
    position among the reply's tool calls, not by their place among all output items."""

    request: Request
    config: OpenAIConfig
    calls: dict[int, int] = field(factory=dict)  # output_index -> position among tool calls
    done: Done | None = None

    def feed(self, event: Any) -> list[Event]:
        kind = event.type
        if kind == "response.output_text.delta":
            return [_text_delta(text=event.delta)]
        if kind == "response.function_call_arguments.delta":
            return [ToolCallDelta(self.calls[event.output_index], arguments=event.delta)]
        if kind == "response.output_item.added" and event.item.type == "function_call":
            position = self.calls[event.output_index] = len(self.calls)
            item = event.item
            return [ToolCallDelta(position, item.call_id, item.name, item.arguments or "")]
        if kind in ("response.completed", "response.incomplete"):
            final = response(event.response, self.request, self.config)
            self.done = Done(final.usage, final.finish_reason, final.model, final.provider_state)
        elif kind == "response.failed":
            raise stream_error(_as_mapping(event.response.error) or {"message": "the response failed"})
        elif kind == "error":
            raise stream_error({"code": event.code, "message": event.message})
        return []

    def finish(self) -> Done:
        if self.done is None:
            raise ProviderUnavailable("the stream ended before the response was completed", provider=PROVIDER)
        return self.done


def usage(reported: Any) -> Usage:
    if reported is None:
        return Usage()
    details = getattr(reported, "input_tokens_details", None)
    return Usage(reported.input_tokens or 0, reported.output_tokens or 0, getattr(details, "cached_tokens", 0) or 0)


def finish_reason(result: Any, parts: list[Part]) -> str:
    if result.status == "incomplete":
        reason = getattr(result.incomplete_details, "reason", None)
        return "length" if reason == "max_output_tokens" else str(reason or "length")
    return "tool_calls" if any(isinstance(p, ToolCall) for p in parts) else "stop"


def state(result: Any, request: Request, config: OpenAIConfig) -> Mapping[str, Any] | None:
    """What the next call continues from: this response, which has seen every message up to
    the reply it is about to become."""
    if not config.native_state or not result.id:
        return None
    last = max((m.seq for m in request.messages), default=0)
    return {"response_id": result.id, "through_seq": last + 1}


def _as_mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return value.model_dump() if hasattr(value, "model_dump") else dict(value)
