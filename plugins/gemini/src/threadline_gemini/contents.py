"""The Gemini API's ``generateContent``: threadline's requests as its contents and config,
its replies and stream chunks as threadline's.

Gemini's thought signatures must go back with the part they came on, on the next turn.
They are kept, base64, in the part's ``provider_data`` under ``"gemini"``; any other
provider ignores them. Gemini gives a function call no id unless asked; such a call gets a
stable one made from the response id and its position, and is sent back without it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
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
    new_id,
    output_instruction,
    unchecked_constructor,
)
from threadline_gemini import GeminiConfig
from threadline_gemini.errors import PROVIDER

_text_delta: Final = unchecked_constructor(TextDelta)
KEY: Final = "gemini"  # where this provider's data sits in a part's provider_data
# models that refuse a JSON schema for the reply in a call with tools: told in the prompt
_NO_JSON_WITH_TOOLS: Final = ("gemini-2",)
FINISH_REASONS: Final = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                         "RECITATION": "content_filter", "PROHIBITED_CONTENT": "content_filter",
                         "BLOCKLIST": "content_filter", "SPII": "content_filter"}  # fmt: skip


def call_arguments(request: Request, config: GeminiConfig) -> dict[str, Any]:
    """``model``, ``contents`` and ``config`` for ``generate_content`` and its stream."""
    messages = request.messages
    system = "\n\n".join(
        text for text in (request.system_prompt, *(m.text for m in messages if m.role is Role.SYSTEM)) if text
    )
    calls = {call.id: call for m in messages for call in m.tool_calls}
    contents = [turn for m in messages if m.role is not Role.SYSTEM if (turn := _content(m, calls))]
    model = request.model or config.default_model
    settings: dict[str, Any] = {}
    if request.tools:
        declarations = [
            {"name": t.name, "description": t.description, "parameters_json_schema": dict(t.parameters)}
            for t in request.tools
        ]
        settings["tools"] = [{"function_declarations": declarations}]
    if request.output is not None and request.tools and model.startswith(_NO_JSON_WITH_TOOLS):
        system = "\n\n".join(filter(None, [system, output_instruction(request.output)]))
    elif request.output is not None:
        settings["response_mime_type"] = "application/json"
        settings["response_json_schema"] = request.output.schema
    if system:
        settings["system_instruction"] = system
    options = request.options
    if options.temperature is not None:
        settings["temperature"] = options.temperature
    if options.max_tokens is not None:
        settings["max_output_tokens"] = options.max_tokens
    if options.stop:
        settings["stop_sequences"] = list(options.stop)
    if options.extra:  # merged into the request body as it goes on the wire
        settings["http_options"] = {"extra_body": dict(options.extra)}
    return {"model": model, "contents": contents, "config": settings}


def count_arguments(request: Request, config: GeminiConfig) -> dict[str, Any]:
    """``model`` and ``contents`` for ``count_tokens``: the contents ``generate_content``
    would get, after the system instruction as a user turn of its own (on the Gemini API
    the SDK takes no system instruction for a count)."""
    arguments = call_arguments(request, config)
    system = arguments["config"].get("system_instruction")
    instruction = [{"role": "user", "parts": [{"text": system}]}] if system else []
    return {"model": arguments["model"], "contents": instruction + arguments["contents"]}


def _content(message: Message, calls: Mapping[str, ToolCall]) -> dict[str, Any] | None:
    if message.role is Role.TOOL:
        results = [_function_response(r, calls.get(r.call_id)) for r in message.parts if isinstance(r, ToolResult)]
        return {"role": "user", "parts": results}
    if message.role is Role.ASSISTANT:
        parts = [part for p in message.parts if (part := _model_part(p))]
        return {"role": "model", "parts": parts} if parts else None
    return {"role": "user", "parts": [_user_part(part) for part in message.parts]}


def _ours(part: Part) -> Mapping[str, Any]:
    data: Mapping[str, Any] = getattr(part, "provider_data", {}).get(KEY, {})
    return data


def _signed(part: Part, sent: dict[str, Any]) -> dict[str, Any]:
    if signature := _ours(part).get("thought_signature"):
        sent["thought_signature"] = base64.b64decode(signature)
    return sent


def _model_part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, ToolCall):
        call: dict[str, Any] = {"name": part.name, "args": dict(part.arguments)}
        if _ours(part).get("id_from_gemini"):
            call["id"] = part.id
        return _signed(part, {"function_call": call})
    if isinstance(part, Text) and (part.text or _ours(part)):
        return _signed(part, {"text": part.text})
    return None


def _function_response(result: ToolResult, call: ToolCall | None) -> dict[str, Any]:
    try:
        value = json.loads(result.content)
    except json.JSONDecodeError:
        value = result.content
    response = {"error": value} if result.is_error else value if isinstance(value, dict) else {"result": value}
    sent: dict[str, Any] = {"name": call.name if call else "unknown", "response": response}
    if call is not None and _ours(call).get("id_from_gemini"):
        sent["id"] = call.id
    return {"function_response": sent}


def _user_part(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Image | File) and part.url is not None:
        return {"file_data": {"mime_type": part.media_type, "file_uri": part.url}}
    if isinstance(part, Image) or (isinstance(part, File) and part.media_type == PDF):
        return {"inline_data": {"mime_type": part.media_type, "data": part.data}}
    if isinstance(part, File) and part.media_type.startswith("text/") and part.data is not None:
        return {"text": f"{part.name or 'attached file'}:\n{part.data.decode('utf-8', 'replace')}"}
    raise BadRequest(
        f"cannot send a {type(part).__name__} of type {getattr(part, 'media_type', '?')}", provider=PROVIDER
    )


def response(result: Any) -> Response:
    """A ``GenerateContentResponse`` as a threadline ``Response``."""
    candidate = result.candidates[0] if result.candidates else None
    raw = list(candidate.content.parts or ()) if candidate is not None and candidate.content else []
    parts = _parts(raw, result.response_id or new_id())
    return Response(parts, usage(result.usage_metadata), _finish(candidate, parts), result.model_version)


def _parts(raw: Iterable[Any], reply_id: str) -> tuple[Part, ...]:
    """The API's parts as threadline's: text runs joined, thoughts left out, calls without
    an id given ``call_<reply_id>_<n>``, thought signatures kept on the part they came with."""
    parts: list[Part] = []
    text: list[str] = []
    signature: str | None = None
    calls = 0

    def end_text() -> None:
        nonlocal signature
        if text or signature:
            parts.append(Text("".join(text), provider_data=_carrying(signature)))
        text.clear()
        signature = None

    for part in raw:
        signed = base64.b64encode(part.thought_signature).decode("ascii") if part.thought_signature else None
        if part.function_call is not None:
            end_text()
            call = part.function_call
            data = _carrying(signed, id_from_gemini=bool(call.id))
            call_id = call.id or f"call_{reply_id}_{calls}"
            parts.append(ToolCall(call_id, call.name or "", dict(call.args or {}), provider_data=data))
            calls += 1
        elif part.thought:
            continue
        elif part.text is not None:
            text.append(part.text)
            signature = signed or signature
    end_text()
    return tuple(parts)


def _carrying(signature: str | None, *, id_from_gemini: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if signature:
        data["thought_signature"] = signature
    if id_from_gemini:
        data["id_from_gemini"] = True
    return {KEY: data} if data else {}


@define
class ContentStream:
    """Reads stream chunks (a ``StreamReader``). A function call arrives whole in one chunk:
    it is one ``ToolCallDelta`` with all its arguments. ``Done`` carries the reply's parts
    with their thought signatures, which no delta carries."""

    raw: list[Any] = field(factory=list)
    last: Any = None
    reply_id: str = ""
    calls: int = 0

    def feed(self, chunk: Any) -> list[Event]:
        self.last = chunk
        self.reply_id = self.reply_id or chunk.response_id or new_id()
        candidate = chunk.candidates[0] if chunk.candidates else None
        if candidate is None or candidate.content is None or not candidate.content.parts:
            return []
        events: list[Event] = []
        for part in candidate.content.parts:
            self.raw.append(part)
            if part.function_call is not None:
                call = part.function_call
                call_id = call.id or f"call_{self.reply_id}_{self.calls}"
                events.append(ToolCallDelta(self.calls, call_id, call.name, json.dumps(call.args or {})))
                self.calls += 1
            elif part.text and not part.thought:
                events.append(_text_delta(text=part.text))
        return events

    def finish(self) -> Done:
        if self.last is None:
            raise ProviderUnavailable("the stream ended without a reply", provider=PROVIDER)
        parts = _parts(self.raw, self.reply_id)
        candidate = self.last.candidates[0] if self.last.candidates else None
        return Done(usage(self.last.usage_metadata), _finish(candidate, parts), self.last.model_version, parts=parts)


def usage(reported: Any) -> Usage:
    """Thinking counts as output, as Google bills it; cached input is part of the input."""
    if reported is None:
        return Usage()
    output = (reported.candidates_token_count or 0) + (reported.thoughts_token_count or 0)
    return Usage(reported.prompt_token_count or 0, output, reported.cached_content_token_count or 0)


def _finish(candidate: Any, parts: tuple[Part, ...]) -> str:
    if any(isinstance(p, ToolCall) for p in parts):
        return "tool_calls"
    reason = getattr(candidate, "finish_reason", None)
    name = getattr(reason, "value", reason) or "STOP"
    return FINISH_REASONS.get(str(name), str(name).lower())
