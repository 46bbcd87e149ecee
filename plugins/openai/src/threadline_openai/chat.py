"""The Chat Completions API (``api = "chat"``): what OpenAI-compatible servers speak."""

from __future__ import annotations

import json
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
    OutputSchema,
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
from threadline_openai.errors import PROVIDER

_text_delta: Final = unchecked_constructor(TextDelta)
FINISH_REASONS: Final = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls"}


def body(request: Request, config: OpenAIConfig, *, stream: bool) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``."""
    messages: list[dict[str, Any]] = []
    if request.system_prompt:
        messages.append({"role": "system", "content": request.system_prompt})
    for message in request.messages:
        messages += _messages(message)
    payload: dict[str, Any] = {"model": request.model or config.default_model, "messages": messages}
    if request.tools:
        payload["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    if request.output is not None:
        payload["response_format"] = {"type": "json_schema", "json_schema": schema_format(request.output)}
    options = request.options
    if options.temperature is not None:
        payload["temperature"] = options.temperature
    if options.max_tokens is not None:
        # OpenAI's reasoning models take only the newer name; compatible servers know the older one
        payload["max_tokens" if config.base_url else "max_completion_tokens"] = options.max_tokens
    if options.stop:
        payload["stop"] = list(options.stop)
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return {**payload, **options.extra}


def schema_format(output: OutputSchema) -> dict[str, Any]:
    """A reply's JSON schema as both APIs name it (Chat's ``response_format.json_schema``,
    the Responses API's ``text.format``)."""
    return {"name": output.name, "schema": output.schema, "strict": output.strict}


def _messages(message: Message) -> list[dict[str, Any]]:
    if message.role is Role.TOOL:
        return [
            {"role": "tool", "tool_call_id": r.call_id, "content": f"Error: {r.content}" if r.is_error else r.content}
            for r in message.parts
            if isinstance(r, ToolResult)
        ]
    if message.role is Role.ASSISTANT:
        reply: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        if calls := message.tool_calls:
            reply["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in calls
            ]
        return [reply]
    if all(isinstance(part, Text) for part in message.parts):
        return [{"role": message.role.value, "content": message.text}]
    return [{"role": message.role.value, "content": [_content(part) for part in message.parts]}]


def _content(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        url = part.url or data_url(part.media_type, part.data or b"")
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(part, File) and part.media_type == PDF:
        if part.data is None:
            raise BadRequest(
                'Chat Completions takes a PDF as bytes, not a URL: pass File(data=...) or use api = "responses"',
                provider=PROVIDER,
            )
        return {
            "type": "file",
            "file": {"filename": part.name or "document.pdf", "file_data": data_url(PDF, part.data)},
        }
    if isinstance(part, File) and part.media_type.startswith("text/") and part.data is not None:
        return {"type": "text", "text": f"{part.name or 'attached file'}:\n{part.data.decode('utf-8', 'replace')}"}
    raise BadRequest(
        f"cannot send a {type(part).__name__} of type {getattr(part, 'media_type', '?')}", provider=PROVIDER
    )


def response(completion: Any) -> Response:
    """A ``ChatCompletion`` as a threadline ``Response``."""
    if not completion.choices:
        raise ProviderUnavailable("the reply had no choices", provider=PROVIDER)
    choice = completion.choices[0]
    text = choice.message.content or getattr(choice.message, "refusal", None)  # a refusal is what it said
    parts: list[Part] = [Text(text)] if text else []
    for call in choice.message.tool_calls or ():
        parts.append(ToolCall(call.id, call.function.name, arguments(call.function.arguments, call.function.name)))
    return Response(tuple(parts), usage(completion.usage), _finish(choice.finish_reason), completion.model)


@define
class ChatStream:
    """Reads ``ChatCompletionChunk``s (a ``StreamReader``)."""

    finish_reason: str = "stop"
    model: str | None = None
    usage: Usage = field(factory=Usage)

    def feed(self, chunk: Any) -> list[Event]:
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            self.usage = usage(chunk.usage)
        if not chunk.choices:
            return []
        choice = chunk.choices[0]
        delta = choice.delta
        if choice.finish_reason:
            self.finish_reason = _finish(choice.finish_reason)
        text = delta.content or getattr(delta, "refusal", None)  # a refusal streams as its own text
        events: list[Event] = [_text_delta(text=text)] if text else []
        for position, call in enumerate(delta.tool_calls or ()):
            function = call.function
            events.append(
                ToolCallDelta(
                    call.index if call.index is not None else position,
                    call.id,
                    function.name if function else None,
                    (function.arguments if function else None) or "",
                )
            )
        return events

    def finish(self) -> Done:
        return Done(self.usage, self.finish_reason, self.model)


def usage(reported: Any) -> Usage:
    if reported is None:
        return Usage()
    details = getattr(reported, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(reported.prompt_tokens or 0, reported.completion_tokens or 0, cached)


def arguments(text: str | None, name: str) -> dict[str, Any]:
    """A tool call's arguments, which the API sends as JSON text."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise ProviderUnavailable(
            f"tool call {name!r} arrived with arguments that are not JSON: {text!r}", provider=PROVIDER
        ) from None
    if not isinstance(value, dict):
        raise ProviderUnavailable(
            f"tool call {name!r} arrived with arguments that are not a JSON object: {text!r}", provider=PROVIDER
        )
    return value


def _finish(reason: str | None) -> str:
    return FINISH_REASONS.get(reason or "stop", reason or "stop")
