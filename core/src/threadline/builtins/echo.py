"""The ``echo`` provider: offline and deterministic. It says back the last user message, or
plays a script of replies (text, tool calls, errors) for demos and tests."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Final

import attrs
from attrs import field, frozen

from threadline import errors
from threadline.config import finite
from threadline.model import (
    Capabilities,
    Done,
    Event,
    File,
    Image,
    Part,
    Request,
    Response,
    Role,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
)
from threadline.providers import context_window, windows_validator

ERRORS: Final[Mapping[str, type[errors.ProviderError]]] = {
    "auth": errors.AuthenticationError,
    "rate_limited": errors.RateLimited,
    "context_too_long": errors.ContextTooLong,
    "unavailable": errors.ProviderUnavailable,
    "bad_request": errors.BadRequest,
    "malformed": errors.ProviderUnavailable,  # a reply that is not the API's JSON
    "dropped": errors.ProviderUnavailable,  # the connection breaks off half way through the reply
}


@frozen
class ScriptedToolCall:
    name: str
    arguments: Mapping[str, Any] = field(factory=dict)


@frozen
class Reply:
    """One scripted reply: text, tool calls, or an error (``auth``, ``rate_limited``,
    ``context_too_long``, ``unavailable``, ``bad_request``, ``malformed``). With
    ``error="dropped"`` the text and tool calls start to arrive and then the connection
    breaks off (a stream yields about half of its events)."""

    text: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    error: str | None = field(default=None, validator=attrs.validators.optional(attrs.validators.in_(ERRORS)))
    retry_after: float | None = None


@frozen
class EchoConfig:
    """``[providers.echo]``: ``replies`` are played in order, then it echoes again.
    ``latency`` delays each reply and ``chunk_delay`` each streamed chunk (seconds).
    ``context_windows`` gives models a context window (``{"echo-*" = 4000}``); it counts
    a word a token. ``structured_output`` says it takes ``Request.output`` as a provider
    with structured output does (it echoes all the same)."""

    replies: tuple[Reply, ...] = ()
    chunk_size: int = field(default=8, validator=attrs.validators.ge(1))
    chunk_delay: float = field(default=0.0, validator=[attrs.validators.ge(0), finite])
    latency: float = field(default=0.0, validator=[attrs.validators.ge(0), finite])
    default_model: str = "echo-1"
    context_windows: Mapping[str, int] = field(factory=dict, validator=windows_validator)
    structured_output: bool = False


class EchoProvider:
    """Replies with the last user message's text (or the tool results it was given)."""

    def __init__(self, config: EchoConfig | None = None) -> None:
        self.config = config or EchoConfig()
        self._script: deque[Reply] = deque(self.config.replies)
        #: every request received, oldest first (tests read it)
        self.requests: list[Request] = []

    def script(self, replies: Iterable[Reply]) -> None:
        """Queue replies to play before echoing again."""
        self._script.extend(replies)

    def capabilities(self, model: str | None) -> Capabilities:
        window = context_window(model or self.config.default_model, self.config.context_windows, {})
        return Capabilities(
            streaming=True,
            tools=True,
            vision=True,
            pdf=True,
            native_state=False,
            max_context=window,
            structured_output=self.config.structured_output,
        )

    async def count_tokens(self, request: Request) -> int:
        """The tokens ``request`` takes as its usage counts them: a word a token."""
        return _count_tokens(request)

    async def close(self) -> None:
        pass

    async def complete(self, request: Request) -> Response:
        await asyncio.sleep(self.config.latency)
        response, broken = self._reply(request)
        if broken:
            raise _broken()
        return response

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        await asyncio.sleep(self.config.latency)
        response, broken = self._reply(request)
        events = self._events(response)
        for event in events[: len(events) // 2] if broken else events:
            if not isinstance(event, Done):
                await asyncio.sleep(self.config.chunk_delay)
            yield event
        if broken:
            raise _broken()

    def _events(self, response: Response) -> list[Event]:
        """The reply as the stream sends it: text pieces, tool-call pieces, then ``Done``."""
        size = self.config.chunk_size
        events: list[Event] = [
            TextDelta(part.text[start : start + size])
            for part in response.parts
            if isinstance(part, Text)
            for start in range(0, len(part.text), size)
        ]
        calls = [part for part in response.parts if isinstance(part, ToolCall)]
        for index, call in enumerate(calls):
            arguments = json.dumps(dict(call.arguments))
            events.append(ToolCallDelta(index, call.id, call.name, arguments[:size]))
            events += [
                ToolCallDelta(index, arguments=arguments[i : i + size]) for i in range(size, len(arguments), size)
            ]
        events.append(Done(response.usage, response.finish_reason, response.model))
        return events

    def _reply(self, request: Request) -> tuple[Response, bool]:
        """The reply to play, and whether it breaks off on the way."""
        self.requests.append(request)
        reply = self._script.popleft() if self._script else Reply(text=_echo(request))
        if reply.error and reply.error != "dropped":
            raise _error(reply)
        text = _limit(reply.text or "", request)
        parts: list[Part] = [Text(text)] if text or not reply.tool_calls else []
        parts += [
            ToolCall(f"echo_{len(request.messages)}_{index}", call.name, call.arguments)
            for index, call in enumerate(reply.tool_calls)
        ]
        usage = Usage(input_tokens=_count_tokens(request), output_tokens=len(text.split()) + len(reply.tool_calls))
        finish = "tool_calls" if reply.tool_calls else ("length" if text != (reply.text or "") else "stop")
        response = Response(tuple(parts), usage, finish, request.model or self.config.default_model)
        return response, reply.error == "dropped"


def _echo(request: Request) -> str:
    if not request.messages:
        return "(nothing to echo)"
    last = request.messages[-1]
    if last.role == Role.TOOL:
        return "tool results: " + "; ".join(p.content for p in last.parts if isinstance(p, ToolResult))
    attachments = [f"[{p.media_type}]" for p in last.parts if isinstance(p, (Image, File))]
    return " ".join([last.text, *attachments]).strip() or "(nothing to echo)"


def _limit(text: str, request: Request) -> str:
    for stop in request.options.stop:
        text = text.split(stop, 1)[0]
    limit = request.options.max_tokens
    return " ".join(text.split(" ")[:limit]) if limit is not None else text


def _count_tokens(request: Request) -> int:
    words = len((request.system_prompt or "").split())
    return words + sum(len(m.text.split()) for m in request.messages)


def _broken() -> errors.ProviderError:
    return errors.ProviderUnavailable("the connection broke off mid-reply", provider="echo")


def _error(reply: Reply) -> errors.ProviderError:
    assert reply.error is not None
    message = reply.text or f"scripted {reply.error} error"
    if reply.error == "rate_limited":
        return errors.RateLimited(message, provider="echo", retry_after=reply.retry_after)
    return ERRORS[reply.error](message, provider="echo")
