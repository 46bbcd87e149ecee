"""An OpenAI API on 127.0.0.1 for tests, this plugin's and yours: ``POST
/v1/chat/completions`` and ``POST /v1/responses``, as JSON or as SSE streams, shaped like the
API reference's own examples, ``POST /v1/responses/input_tokens`` and ``GET /v1/models``. It plays scripted
``Reply``s (text, tool calls, errors), splits streamed text and tool-call arguments into many
small chunks, keeps stored responses for ``previous_response_id``, and records every request::

    async with FakeOpenAI() as api:       # [providers.openai] base_url = api.url
        api.script([Reply(text="Hi")])
        ...
        assert "ann@example.com" not in api.requests[-1].body.decode()

It needs the kernel's test helpers: ``pip install "threadline[testing]"``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from attrs import define, field

from threadline.testing import Reply
from threadline.testing.wire_server import HTTPReply, ReceivedRequest, ScriptedAPI, pieces, sse

DEFAULT_TEXT = "Hello from the fake OpenAI API."
COUNT_PATH = "/v1/responses/input_tokens"
MODELS_PATH = "/v1/models"
#: what ``GET /v1/models`` lists unless told otherwise: dated snapshots the plugin does not know of among them
MODELS = ("gpt-4.1-2025-04-14", "gpt-4.1-mini", "gpt-4o-mini-2024-07-18", "o4-mini")
# the body keys that take input tokens, on either API
PROMPT_KEYS = ("instructions", "input", "messages", "tools", "tool_choice", "reasoning", "text")
ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "auth": (
        401,
        {
            "message": "Incorrect API key provided: sk-test. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
    ),
    "rate_limited": (
        429,
        {
            "message": "Rate limit reached for gpt-4.1-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    ),
    "context_too_long": (
        400,
        {
            "message": "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 130412 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
    ),
    "unavailable": (
        500,
        {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    ),
    "bad_request": (
        400,
        {
            "message": "Invalid value for 'temperature': must be between 0 and 2.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
        },
    ),
}


__all__ = ["FakeOpenAI", "input_tokens"]


def input_tokens(body: dict[str, Any]) -> int:
    """The fake's count of a request's input tokens, for a reply's usage and for
    ``/responses/input_tokens`` alike: a token for every 20 characters of the JSON of what
    takes tokens (``PROMPT_KEYS``), plus 1. A count and the usage of the same request agree;
    a stored conversation named by ``previous_response_id`` adds its own
    (:meth:`FakeOpenAI.prompt_tokens`)."""
    return len(json.dumps({key: body[key] for key in PROMPT_KEYS if key in body})) // 20 + 1


@define
class FakeOpenAI(ScriptedAPI):
    """Keeps the responses it stored, with the tokens of the conversation through each, and
    refuses a ``previous_response_id`` it does not have."""

    path: ClassVar[str] = "/v1"
    default_reply: Reply = field(factory=lambda: Reply(text=DEFAULT_TEXT))
    stored: dict[str, int] = field(factory=dict)
    _ids: Iterator[int] = field(factory=itertools.count)
    #: what ``GET /v1/models`` lists
    models: list[str] = field(factory=lambda: list(MODELS))

    def respond(self, request: ReceivedRequest) -> HTTPReply:
        """A count and the model list take no scripted reply (those are the model's); a raw
        one comes first."""
        if request.method == "GET" and request.path == MODELS_PATH and not self.raw:
            return HTTPReply.json(models_page(self.models))
        if request.path != COUNT_PATH or self.raw:
            return super().respond(request)
        if (refused := self.refuse(request)) is not None:
            return refused
        return HTTPReply.json({"object": "response.input_tokens", "input_tokens": self.prompt_tokens(request.json())})

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        """The input tokens of a request: its own, and those of the stored conversation it
        continues (``previous_response_id``), as OpenAI counts them."""
        return input_tokens(body) + self.stored.get(body.get("previous_response_id") or "", 0)

    def refuse(self, request: ReceivedRequest) -> HTTPReply | None:
        previous = request.json().get("previous_response_id")
        if previous is None or previous in self.stored:
            return None
        return error(
            400,
            {
                "message": f"Previous response with id '{previous}' not found.",
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            },
        )

    def answer(self, request: ReceivedRequest, reply: Reply) -> HTTPReply:
        if reply.error is not None:
            status, detail = ERRORS[reply.error]
            headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after is not None else {}
            return error(status, detail, headers)
        body = request.json()
        usage = (self.prompt_tokens(body), len((reply.text or "").split()) + len(reply.tool_calls) + 1)
        if request.path.endswith("/chat/completions"):
            chat = ChatReply(self, body["model"], reply, usage)
            return HTTPReply.stream(chat.chunks()) if body.get("stream") else HTTPReply.json(chat.completion())
        if request.path.endswith("/responses"):
            response = ResponsesReply(self, body, reply, usage)
            if body.get("store", True):
                self.stored[response.id] = sum(usage)
            return HTTPReply.stream(response.events()) if body.get("stream") else HTTPReply.json(response.final())
        return error(404, {"message": f"Invalid URL (POST {request.path})", "type": "invalid_request_error"})

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"


def models_page(models: list[str]) -> dict[str, Any]:
    """``GET /v1/models``'s body, as the API reference shows it: every model in one list."""
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 1686935002, "owned_by": "system"} for name in models],
    }


def error(status: int, detail: dict[str, Any], headers: dict[str, str] | None = None) -> HTTPReply:
    return HTTPReply.json({"error": detail}, status, headers)


@define
class ChatReply:
    """One reply of Chat Completions."""

    api: FakeOpenAI
    model: str
    reply: Reply
    usage: tuple[int, int]
    id: str = ""
    calls: list[tuple[str, str, str]] = field(factory=list)  # (id, name, arguments)

    def __attrs_post_init__(self) -> None:
        self.id = self.api.new_id("chatcmpl")
        self.calls = [(self.api.new_id("call"), c.name, json.dumps(dict(c.arguments))) for c in self.reply.tool_calls]

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.calls else "stop"

    def usage_json(self) -> dict[str, Any]:
        prompt, completion = self.usage
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.reply.text, "refusal": None, "annotations": []}
        if self.calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": 1741569952,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}],
            "usage": self.usage_json(),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": 1741569952,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
        )

    def chunks(self) -> list[bytes]:
        out = [self.chunk({"role": "assistant", "content": "", "refusal": None})]
        if self.reply.text:
            out += [self.chunk({"content": piece}) for piece in self.api.text_pieces(self.reply.text)]
        for index, (call_id, name, arguments) in enumerate(self.calls):
            head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            out.append(self.chunk({"tool_calls": [head]}))
            out += [
                self.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in pieces(arguments, 3)
            ]
        out.append(self.chunk({}, self.finish_reason))
        out.append(
            sse(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": 1741569952,
                    "model": self.model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": self.usage_json(),
                }
            )
        )
        out.append(sse("[DONE]"))
        return out


@define
class ResponsesReply:
    """One reply of the Responses API. A reply with tool calls starts with a reasoning item,
    as reasoning models' do, so that tool calls' output indexes are not their positions."""

    api: FakeOpenAI
    body: dict[str, Any]
    reply: Reply
    usage: tuple[int, int]
    id: str = ""
    output: list[dict[str, Any]] = field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.id = self.api.new_id("resp")
        if self.reply.tool_calls:
            self.output.append({"type": "reasoning", "id": self.api.new_id("rs"), "summary": []})
        if self.reply.text:
            self.output.append(
                {
                    "type": "message",
                    "id": self.api.new_id("msg"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": self.reply.text, "annotations": [], "logprobs": []}],
                }
            )
        for call in self.reply.tool_calls:
            self.output.append(
                {
                    "type": "function_call",
                    "id": self.api.new_id("fc"),
                    "call_id": self.api.new_id("call"),
                    "name": call.name,
                    "arguments": json.dumps(dict(call.arguments)),
                    "status": "completed",
                }
            )

    def final(self, status: str = "completed", output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        prompt, completion = self.usage
        return {
            "id": self.id,
            "object": "response",
            "created_at": 1741476542,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": self.body.get("instructions"),
            "max_output_tokens": self.body.get("max_output_tokens"),
            "model": self.body["model"],
            "output": self.output if output is None else output,
            "parallel_tool_calls": True,
            "previous_response_id": self.body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": self.body.get("store", True),
            "temperature": self.body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": self.body.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + completion,
            },
            "user": None,
            "metadata": {},
        }

    def events(self) -> list[bytes]:
        numbers = itertools.count()

        def event(kind: str, **data: Any) -> bytes:
            return sse({"type": kind, "sequence_number": next(numbers), **data}, event=kind)

        out = [
            event("response.created", response=self.final("in_progress", [])),
            event("response.in_progress", response=self.final("in_progress", [])),
        ]
        for index, item in enumerate(self.output):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                opening = {**item, "status": "in_progress", "content": []}
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                out.append(event("response.output_item.added", output_index=index, item=opening))
                out.append(
                    event(
                        "response.content_part.added",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        part=part,
                    )
                )
                out += [
                    event(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        delta=piece,
                        logprobs=[],
                    )
                    for piece in self.api.text_pieces(text)
                ]
                out.append(
                    event(
                        "response.output_text.done",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        text=text,
                        logprobs=[],
                    )
                )
                out.append(
                    event(
                        "response.content_part.done",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        part={**part, "text": text},
                    )
                )
            elif item["type"] == "function_call":
                opening = {**item, "status": "in_progress", "arguments": ""}
                out.append(event("response.output_item.added", output_index=index, item=opening))
                out += [
                    event("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece)
                    for piece in pieces(item["arguments"], 3)
                ]
                out.append(
                    event(
                        "response.function_call_arguments.done",
                        item_id=item["id"],
                        output_index=index,
                        arguments=item["arguments"],
                    )
                )
            else:
                out.append(event("response.output_item.added", output_index=index, item=item))
            out.append(event("response.output_item.done", output_index=index, item=item))
        out.append(event("response.completed", response=self.final()))
        return out
