"""The Messages API: threadline's requests as its JSON, its replies and stream events as
threadline's.

Thinking blocks (with their signatures) must go back to Anthropic unchanged on the next
turn. They are kept in the ``provider_data`` of the part that follows them, under
``"anthropic"``, and sent again before that part; any other provider ignores them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
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
    unchecked_constructor,
)
from threadline_anthropic import AnthropicConfig
from threadline_anthropic.errors import PROVIDER

KEY: Final = "anthropic"  # where this provider's data sits in a part's provider_data
STOP_REASONS: Final = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                       "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}  # fmt: skip
CACHED: Final = {"cache_control": {"type": "ephemeral"}}
# the body keys ``POST /v1/messages/count_tokens`` takes; it refuses the ones for the reply
COUNTED: Final = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")
_text_delta: Final = unchecked_constructor(TextDelta)


def body(request: Request, config: AnthropicConfig, *, stream: bool) -> dict[str, Any]:
    """The JSON body for ``POST /v1/messages``. System messages in the history join the
    system prompt: the API takes a system prompt only at the top."""
    system = "\n\n".join(
        text for text in (request.system_prompt, *(m.text for m in request.messages if m.role is Role.SYSTEM)) if text
    )
    messages = [turn for m in request.messages if m.role is not Role.SYSTEM if (turn := _message(m))]
    options = request.options
    payload: dict[str, Any] = {
        "model": request.model or config.default_model,
        "max_tokens": options.max_tokens or config.max_tokens,
        "messages": messages,
    }
    if system:
        payload["system"] = [{"type": "text", "text": system, **CACHED}] if config.prompt_caching else system
    if config.prompt_caching and len(messages) > 1:
        _cache_up_to(messages[-2])
    if request.tools:
        payload["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
    if request.output is not None:
        payload["output_config"] = {"format": {"type": "json_schema", "schema": _supported(request.output.schema)}}
    if options.temperature is not None:
        payload["temperature"] = options.temperature
    if options.stop:
        payload["stop_sequences"] = list(options.stop)
    if config.thinking == "enabled":
        payload["thinking"] = {"type": "enabled", "budget_tokens": config.thinking_budget}
    elif config.thinking == "adaptive":
        payload["thinking"] = {"type": "adaptive"}
    if stream:
        payload["stream"] = True
    return {**payload, **options.extra}


def _supported(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` as structured outputs take it: every object closed, and the constraints
    they refuse (``minimum``, lengths, ...) moved into descriptions, by the SDK's own
    ``transform_schema``."""
    from anthropic import transform_schema

    return transform_schema(dict(schema))  # it copies what it changes


def count_body(request: Request, config: AnthropicConfig) -> dict[str, Any]:
    """The JSON body for ``POST /v1/messages/count_tokens``: the messages body without
    what only shapes the reply (``max_tokens``, sampling, stop sequences, ``stream``)."""
    payload = body(request, config, stream=False)
    return {key: payload[key] for key in COUNTED if key in payload}


def _message(message: Message) -> dict[str, Any] | None:
    if message.role is Role.TOOL:
        results = [
            {
                "type": "tool_result",
                "tool_use_id": r.call_id,
                "content": r.content,
                **({"is_error": True} if r.is_error else {}),
            }
            for r in message.parts
            if isinstance(r, ToolResult)
        ]
        return {"role": "user", "content": results}
    if message.role is Role.ASSISTANT:
        blocks = [block for part in message.parts for block in _assistant_blocks(part)]
        return {"role": "assistant", "content": blocks} if blocks else None
    if len(message.parts) == 1 and isinstance(message.parts[0], Text):
        return {"role": "user", "content": message.parts[0].text}
    return {"role": "user", "content": [_user_block(part) for part in message.parts]}


def _assistant_blocks(part: Part) -> list[dict[str, Any]]:
    ours = getattr(part, "provider_data", {}).get(KEY, {})
    blocks = [dict(block) for block in ours.get("thinking", ())]
    if isinstance(part, Text) and part.text:
        blocks.append({"type": "text", "text": part.text})
    elif isinstance(part, ToolCall):
        blocks.append({"type": "tool_use", "id": part.id, "name": part.name, "input": dict(part.arguments)})
    return blocks


def _user_block(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image | File) and part.url is not None:
        kind = "image" if isinstance(part, Image) else "document"
        if kind == "document" and part.media_type != PDF:
            raise BadRequest(f"a {part.media_type} file can be sent as bytes only, not by URL", provider=PROVIDER)
        return {"type": kind, "source": {"type": "url", "url": part.url}}
    if isinstance(part, Image) and part.data is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": part.media_type, "data": _b64(part.data)}}
    if isinstance(part, File) and part.data is not None and part.media_type == PDF:
        return {"type": "document", "source": {"type": "base64", "media_type": PDF, "data": _b64(part.data)}}
    if isinstance(part, File) and part.data is not None and part.media_type.startswith("text/"):
        text = part.data.decode("utf-8", "replace")
        return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    raise BadRequest(
        f"cannot send a {type(part).__name__} of type {getattr(part, 'media_type', '?')}", provider=PROVIDER
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _cache_up_to(message: dict[str, Any]) -> None:
    """Mark the end of ``message`` as a prompt-cache breakpoint: what comes before is cached."""
    if isinstance(message["content"], str):
        message["content"] = [{"type": "text", "text": message["content"]}]
    message["content"][-1] = {**message["content"][-1], **CACHED}


def response(message: Any) -> Response:
    """A ``Message`` of the API as a threadline ``Response``."""
    blocks = [block.model_dump(exclude_none=True) for block in message.content]
    return Response(_parts(blocks), usage(message.usage), _finish(message.stop_reason), message.model)


def _parts(blocks: list[dict[str, Any]]) -> tuple[Part, ...]:
    """Content blocks as parts; thinking blocks ride on the part after them."""
    parts: list[Part] = []
    thinking: list[dict[str, Any]] = []
    for block in blocks:
        kind = block["type"]
        if kind == "thinking":
            thinking.append({"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]})
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block["data"]})
        elif kind == "text":
            parts.append(Text(block["text"], provider_data=_carrying(thinking)))
            thinking = []
        elif kind == "tool_use":
            parts.append(ToolCall(block["id"], block["name"], block["input"], provider_data=_carrying(thinking)))
            thinking = []
    if thinking:
        parts.append(Text("", provider_data=_carrying(thinking)))
    return tuple(parts)


def _carrying(thinking: list[dict[str, Any]]) -> dict[str, Any]:
    return {KEY: {"thinking": thinking}} if thinking else {}


def usage(reported: Any) -> Usage:
    """Anthropic counts cached input apart from ``input_tokens``; threadline's input is all of it."""
    cache_read = getattr(reported, "cache_read_input_tokens", None) or 0
    cache_write = getattr(reported, "cache_creation_input_tokens", None) or 0
    return Usage((reported.input_tokens or 0) + cache_read + cache_write, reported.output_tokens or 0, cache_read)


def _finish(reason: str | None) -> str:
    return STOP_REASONS.get(reason or "end_turn", reason or "stop")


@define
class _Block:
    """A content block as its stream builds it."""

    type: str
    pieces: list[str] = field(factory=list)
    head: dict[str, Any] = field(factory=dict)

    def finished(self) -> dict[str, Any]:
        joined = "".join(self.pieces)
        if self.type == "text":
            return {"type": "text", "text": joined}
        if self.type == "thinking":
            return {"type": "thinking", "thinking": joined, "signature": self.head.get("signature", "")}
        if self.type == "tool_use":
            try:
                arguments = json.loads(joined or "{}")
            except json.JSONDecodeError:
                raise ProviderUnavailable(
                    f"tool call {self.head['name']!r} arrived with arguments that are not JSON", provider=PROVIDER
                ) from None
            return {"type": "tool_use", "id": self.head["id"], "name": self.head["name"], "input": arguments}
        return {"type": self.type, **self.head}


@define
class MessageStream:
    """Reads the API's stream events (a ``StreamReader``). A tool call's index is its position
    among the reply's tool calls, not its content block's index. ``Done`` carries the
    reply's parts with their thinking blocks, which no delta carries."""

    blocks: dict[int, _Block] = field(factory=dict)
    calls: dict[int, int] = field(factory=dict)  # content block index -> position among tool calls
    started: Any = None
    finish_reason: str = "stop"
    output_tokens: int = 0

    def feed(self, event: Any) -> Sequence[Event]:
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":  # most events: first, and with no call between
                text = delta.text
                self.blocks[event.index].pieces.append(text)
                return (_text_delta(text=text),)
            return self._delta(event.index, delta)
        if kind == "content_block_start":
            return self._start(event.index, event.content_block.model_dump(exclude_none=True))
        if kind == "message_start":
            self.started = event.message
        elif kind == "message_delta":
            self.finish_reason = _finish(event.delta.stop_reason)
            self.output_tokens = event.usage.output_tokens or 0
        return []

    def _start(self, index: int, block: dict[str, Any]) -> list[Event]:
        opened = self.blocks[index] = _Block(block.pop("type"), head=block)
        if opened.type == "tool_use":
            self.calls[index] = len(self.calls)
            return [ToolCallDelta(self.calls[index], block["id"], block["name"])]
        if opened.type in ("text", "thinking") and (first := block.pop(opened.type, "")):
            opened.pieces.append(first)
            return [TextDelta(first)] if opened.type == "text" else []
        return []

    def _delta(self, index: int, delta: Any) -> list[Event]:
        building = self.blocks[index]
        kind = delta.type
        if kind == "input_json_delta":
            building.pieces.append(delta.partial_json)
            return [ToolCallDelta(self.calls[index], arguments=delta.partial_json)]
        if kind == "thinking_delta":
            building.pieces.append(delta.thinking)
        elif kind == "signature_delta":
            building.head["signature"] = building.head.get("signature", "") + delta.signature
        return []

    def finish(self) -> Done:
        if self.started is None:
            raise ProviderUnavailable("the stream ended without a message_start event", provider=PROVIDER)
        used = usage(self.started.usage)
        parts = _parts([self.blocks[index].finished() for index in sorted(self.blocks)])
        final = Usage(used.input_tokens, self.output_tokens, used.cached_tokens)
        return Done(final, self.finish_reason, self.started.model, parts=parts)
