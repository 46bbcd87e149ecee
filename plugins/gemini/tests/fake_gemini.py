"""A Gemini API on 127.0.0.1 for the tests: ``POST /v1beta/models/{model}:generateContent``
as JSON and ``:streamGenerateContent?alt=sse`` as an SSE stream, shaped like the API
reference's own examples, and ``:countTokens``. It plays scripted ``Reply``s, splits
streamed text into many chunks (a function call arrives whole, each in a chunk of its own,
as Gemini sends them), signs parts with thought signatures when asked, and records every
request."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

from attrs import define, field

from threadline.testing import Reply
from threadline.testing.wire_server import HTTPReply, ReceivedRequest, ScriptedAPI, sse

DEFAULT_TEXT = "Hello from the fake Gemini API."
ROUTE = re.compile(r"/v1(?:beta)?/models/([^:/]+):(generateContent|streamGenerateContent)")
COUNT_ROUTE = re.compile(r"/v1(?:beta)?/models/([^:/]+):countTokens")
MODELS_ROUTE = re.compile(r"/v1(?:beta)?/models")
#: what ``GET /v1beta/models`` lists unless told otherwise: a model the plugin does not know of, and one
#: that makes embeddings only
MODELS = {
    "models/gemini-2.5-flash": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
    "models/gemini-2.5-flash-preview-09-2025": ["generateContent", "countTokens"],
    "models/gemini-embedding-001": ["embedContent", "countTextTokens", "countTokens"],
}
SIGNATURE = base64.b64encode(b"opaque thought signature").decode()
ERRORS: dict[str, tuple[int, str, str, list[dict[str, Any]]]] = {
    "auth": (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
             [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
               "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]),
    "rate_limited": (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and "
                     "billing details.", [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]),
    "context_too_long": (400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of "
                         "tokens allowed (1048576).", []),
    "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", []),
    "bad_request": (400, "INVALID_ARGUMENT", "* GenerateContentRequest.generation_config.temperature: must be "
                    "between 0 and 2\n", []),
}  # fmt: skip


def prompt_tokens(turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """The fake's count of a prompt's tokens, for a reply's usage and for ``countTokens``
    alike: a token for every 20 characters of the JSON of its turns' parts and its tools,
    plus 1. A reply's prompt is its system instruction, its contents and its tools; a
    count's is its contents (where the plugin puts the system instruction first), so
    the two agree on a request without tools."""
    return len(json.dumps([turn["parts"] for turn in turns]) + json.dumps(tools or [])) // 20 + 1


def models_page(models: dict[str, list[str]], query: dict[str, list[str]]) -> dict[str, Any]:
    """A page of ``GET /v1beta/models``, as the API reference shows it: ``pageSize`` models
    (50 unless asked) from the one ``pageToken`` names, and the token of the next page."""
    size = int(query.get("pageSize", ["50"])[0])
    names = list(models)
    start = int(query.get("pageToken", ["0"])[0] or 0)
    page = names[start : start + size]
    body: dict[str, Any] = {
        "models": [
            {
                "name": name,
                "version": "001",
                "displayName": name.removeprefix("models/"),
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": models[name],
            }
            for name in page
        ]
    }
    if start + size < len(names):
        body["nextPageToken"] = str(start + size)
    return body


def error(status: int, kind: str, message: str, details: list[dict[str, Any]]) -> HTTPReply:
    return HTTPReply.json({"error": {"code": status, "message": message, "status": kind, "details": details}}, status)


@define
class FakeGemini(ScriptedAPI):
    """With ``signatures`` on, the first function call of a reply (else its text) carries a
    thought signature."""

    default_reply: Reply = field(factory=lambda: Reply(text=DEFAULT_TEXT))
    signatures: bool = False
    _ids: Iterator[int] = field(factory=itertools.count)
    #: what ``GET /v1beta/models`` lists: the name of each model and the methods it supports
    models: dict[str, list[str]] = field(factory=lambda: dict(MODELS))

    def respond(self, request: ReceivedRequest) -> HTTPReply:
        """A count and the model list take no scripted reply (those are the model's); a raw
        one comes first."""
        if request.method == "GET" and MODELS_ROUTE.fullmatch(request.path) and not self.raw:
            return HTTPReply.json(models_page(self.models, request.query))
        if COUNT_ROUTE.fullmatch(request.path) and not self.raw:
            return HTTPReply.json({"totalTokens": prompt_tokens(request.json()["contents"])})
        return super().respond(request)

    def refuse(self, request: ReceivedRequest) -> HTTPReply | None:
        if ROUTE.fullmatch(request.path):
            return None
        return error(404, "NOT_FOUND", f"Method not found: {request.path}", [])

    def answer(self, request: ReceivedRequest, reply: Reply) -> HTTPReply:
        if reply.error is not None:
            return error(*ERRORS[reply.error])
        route = ROUTE.fullmatch(request.path)
        assert route is not None
        model, method = route.groups()
        content = ContentReply(self, model, request.json(), reply)
        if method == "streamGenerateContent":
            return HTTPReply.stream(content.chunks())
        return HTTPReply.json(content.whole())


@define
class ContentReply:
    api: FakeGemini
    model: str
    body: dict[str, Any]
    reply: Reply
    id: str = ""

    def __attrs_post_init__(self) -> None:
        self.id = f"mAitaLmkHPPlz7IPvtfUqQ{next(self.api._ids)}"

    def calls(self) -> list[dict[str, Any]]:
        parts = [{"functionCall": {"name": c.name, "args": dict(c.arguments)}} for c in self.reply.tool_calls]
        if parts and self.api.signatures:
            parts[0]["thoughtSignature"] = SIGNATURE
        return parts

    def usage(self) -> dict[str, Any]:
        system = [self.body["systemInstruction"]] if "systemInstruction" in self.body else []
        prompt = prompt_tokens(system + self.body["contents"], self.body.get("tools"))
        output = len((self.reply.text or "").split()) + len(self.reply.tool_calls) + 1
        return {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}  # fmt: skip

    def chunk(self, parts: list[dict[str, Any]], *, last: bool = False) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        out: dict[str, Any] = {"candidates": [candidate], "modelVersion": self.model, "responseId": self.id}
        if last:
            candidate["finishReason"] = "STOP"
            out["usageMetadata"] = self.usage()
        return out

    def whole(self) -> dict[str, Any]:
        text = [{"text": self.reply.text}] if self.reply.text else []
        if text and self.api.signatures and not self.reply.tool_calls:
            text[0]["thoughtSignature"] = SIGNATURE
        return self.chunk(text + self.calls(), last=True)

    def chunks(self) -> list[bytes]:
        out = (
            [self.chunk([{"text": piece}]) for piece in self.api.text_pieces(self.reply.text)]
            if self.reply.text
            else []
        )
        out += [self.chunk([call]) for call in self.calls()]
        final = (
            [{"text": "", "thoughtSignature": SIGNATURE}] if self.api.signatures and not self.reply.tool_calls else []
        )
        out.append(self.chunk(final, last=True))
        return [sse(chunk).replace(b"\n\n", b"\r\n\r\n") for chunk in out]
