"""An Anthropic Messages API on 127.0.0.1 for the tests: ``POST /v1/messages`` as JSON or
as an SSE stream (message_start, content_block_start/delta/stop, ping, message_delta,
message_stop), shaped like the API reference's own examples, and
``POST /v1/messages/count_tokens``. It plays scripted ``Reply``s, splits streamed text and
tool input into many small chunks, can think first (a thinking block with a signature),
and records every request."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from attrs import define, field

from threadline.testing import Reply
from threadline.testing.wire_server import HTTPReply, ReceivedRequest, ScriptedAPI, pieces, sse

DEFAULT_TEXT = "Hello from the fake Anthropic API."
COUNT_PATH = "/v1/messages/count_tokens"
MODELS_PATH = "/v1/models"
#: what ``GET /v1/models`` lists unless told otherwise, newest first: dated models the plugin does not know of
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805")
# the body keys that take input tokens, as count_tokens takes them
PROMPT_KEYS = ("system", "messages", "tools", "tool_choice", "thinking")
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
ERRORS: dict[str, tuple[int, str, str]] = {
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "rate_limited": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    "context_too_long": (400, "invalid_request_error", "prompt is too long: 215561 tokens > 200000 maximum"),
    "unavailable": (529, "overloaded_error", "Overloaded"),
    "bad_request": (400, "invalid_request_error", "temperature: range: 0..1"),
}


def input_tokens(body: dict[str, Any]) -> int:
    """The fake's count of a request's input tokens, for a message's usage and for
    count_tokens alike: a token for every 20 characters of the JSON of what takes tokens
    (``PROMPT_KEYS``), plus 1. A count and the usage of the same request agree."""
    return len(json.dumps({key: body[key] for key in PROMPT_KEYS if key in body})) // 20 + 1


def models_page(models: list[str], query: dict[str, list[str]]) -> dict[str, Any]:
    """A page of ``GET /v1/models``, as the API reference shows it: ``limit`` models (20
    unless asked) after the model ``after_id`` names, with the cursors of the next page."""
    limit = int(query.get("limit", ["20"])[0])
    after = query.get("after_id", [None])[0]
    start = models.index(after) + 1 if after in models else 0
    page = models[start : start + limit]
    return {
        "data": [
            {"type": "model", "id": name, "display_name": name, "created_at": "2025-08-05T00:00:00Z"} for name in page
        ],
        "has_more": start + limit < len(models),
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


@define
class FakeAnthropic(ScriptedAPI):
    """With ``thinking`` set, each reply starts with a thinking block of that text."""

    default_reply: Reply = field(factory=lambda: Reply(text=DEFAULT_TEXT))
    thinking: str | None = None
    _ids: Iterator[int] = field(factory=itertools.count)
    #: what ``GET /v1/models`` lists, newest first
    models: list[str] = field(factory=lambda: list(MODELS))

    def respond(self, request: ReceivedRequest) -> HTTPReply:
        """A count and the model list take no scripted reply (those are the model's); a raw
        one comes first."""
        if request.method == "GET" and request.path == MODELS_PATH and not self.raw:
            return HTTPReply.json(models_page(self.models, request.query))
        if request.path == COUNT_PATH and not self.raw:
            return HTTPReply.json({"input_tokens": input_tokens(request.json())})
        return super().respond(request)

    def refuse(self, request: ReceivedRequest) -> HTTPReply | None:
        if request.path == "/v1/messages":
            return None
        return HTTPReply.json(error_body("not_found_error", f"Not found: {request.path}"), 404)

    def answer(self, request: ReceivedRequest, reply: Reply) -> HTTPReply:
        if reply.error is not None:
            status, kind, message = ERRORS[reply.error]
            headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after is not None else {}
            return HTTPReply.json(error_body(kind, message), status, headers)
        body = request.json()
        message = MessageReply(self, body, reply)
        return HTTPReply.stream(message.events()) if body.get("stream") else HTTPReply.json(message.final())

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"


@define
class MessageReply:
    """One reply: its content blocks, whole or as a stream."""

    api: FakeAnthropic
    body: dict[str, Any]
    reply: Reply
    id: str = ""
    blocks: list[dict[str, Any]] = field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.id = self.api.new_id("msg")
        if self.api.thinking is not None:
            self.blocks.append({"type": "thinking", "thinking": self.api.thinking, "signature": SIGNATURE})
        if self.reply.text:
            self.blocks.append({"type": "text", "text": self.reply.text})
        for call in self.reply.tool_calls:
            self.blocks.append(
                {"type": "tool_use", "id": self.api.new_id("toolu"), "name": call.name, "input": dict(call.arguments)}
            )

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.reply.tool_calls else "end_turn"

    def usage(self, output_tokens: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens(self.body),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens if output_tokens is not None else len(self.blocks) * 5 + 1,
            "service_tier": "standard",
        }

    def final(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.body["model"],
            "content": self.blocks,
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": self.usage(),
        }

    def events(self) -> list[bytes]:
        def event(kind: str, **data: Any) -> bytes:
            return sse({"type": kind, **data}, event=kind)

        start = {**self.final(), "content": [], "stop_reason": None, "usage": self.usage(output_tokens=1)}
        out = [event("message_start", message=start), event("ping")]
        for index, block in enumerate(self.blocks):
            out += self.block_events(index, block, event)
        out.append(
            event(
                "message_delta",
                delta={"stop_reason": self.stop_reason, "stop_sequence": None},
                usage={"output_tokens": self.usage()["output_tokens"]},
            )
        )
        out.append(event("message_stop"))
        return out

    def block_events(self, index: int, block: dict[str, Any], event: Any) -> list[bytes]:
        size = self.api.chunk_size
        if block["type"] == "text":
            opening, deltas = (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": piece} for piece in self.api.text_pieces(block["text"])],
            )
        elif block["type"] == "thinking":
            opening = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in pieces(block["thinking"], size)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            opening = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": piece} for piece in pieces(json.dumps(block["input"]), 3)
            ]
        return [
            event("content_block_start", index=index, content_block=opening),
            *(event("content_block_delta", index=index, delta=delta) for delta in deltas),
            event("content_block_stop", index=index),
        ]
