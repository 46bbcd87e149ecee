{%- set cls = cookiecutter.__class_name -%}
"""``{{ cls }}Provider``: answers with the last user message reversed.

A real provider calls its API here: import its SDK at the top of this module (it is loaded
the first time the provider is used, not when threadline starts), turn the ``Request`` into
the API's request, the API's reply into a ``Response`` or stream events, and the SDK's
errors into threadline's (``threadline.plugin.error_for_status`` maps HTTP statuses).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from attrs import frozen
from threadline.plugin import (
    AuthenticationError,
    BadRequest,
    Capabilities,
    ContextTooLong,
    Done,
    Event,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Request,
    Response,
    Role,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

from {{ cookiecutter.__module_name }} import {{ cls }}Config

NAME: Final = "{{ cookiecutter.plugin_name }}"

#: the error each scripted error kind stands for ("malformed": a reply that is not the API's
#: JSON; "dropped": the connection breaks off half way through the reply)
ERRORS: Final[Mapping[str, type[ProviderError]]] = {
    "auth": AuthenticationError,
    "rate_limited": RateLimited,
    "context_too_long": ContextTooLong,
    "unavailable": ProviderUnavailable,
    "bad_request": BadRequest,
    "malformed": ProviderUnavailable,
    "dropped": ProviderUnavailable,
}


class ScriptedCall(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def arguments(self) -> Mapping[str, Any]: ...


class Reply(Protocol):
    """A scripted reply, as the kernel's ``ProviderContract`` gives them
    (``threadline.testing.Reply``): text, tool calls, or an error kind."""

    @property
    def text(self) -> str | None: ...
    @property
    def tool_calls(self) -> Sequence[ScriptedCall]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def retry_after(self) -> float | None: ...


@frozen
class _Reversed:
    """The reply when nothing is scripted: the last user message, reversed."""

    text: str
    tool_calls: tuple[ScriptedCall, ...] = ()
    error: str | None = None
    retry_after: float | None = None


class {{ cls }}Provider:
    """The ``{{ cookiecutter.plugin_name }}`` provider. ``script(replies)`` makes it play given replies
    (text, tool calls, errors) before reversing again: the kernel's ``ProviderContract`` uses it."""

    def __init__(self, config: {{ cls }}Config | None = None) -> None:
        self.config = config or {{ cls }}Config()
        self._script: deque[Reply] = deque()
        #: every request received, oldest first (a real provider's tests read its server's log)
        self.requests: list[Request] = []

    def script(self, replies: Iterable[Reply]) -> None:
        self._script.extend(replies)

    def capabilities(self, model: str | None) -> Capabilities:
        return Capabilities(streaming=True, tools=True, vision=False, pdf=False)

    async def complete(self, request: Request) -> Response:
        reply = self._next(request)
        if reply.error is not None:
            raise _error(reply)
        return self._response(request, reply)

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        reply = self._next(request)
        if reply.error is not None and reply.error != "dropped":
            raise _error(reply)
        events = self._events(self._response(request, reply))
        if reply.error == "dropped":  # the connection breaks off half way
            events = events[: len(events) // 2]
        for event in events:
            yield event
        if reply.error == "dropped":
            raise ProviderUnavailable("the connection broke off mid-reply", provider=NAME)

    async def close(self) -> None:
        pass

    def _next(self, request: Request) -> Reply:
        self.requests.append(request)
        if self._script:
            return self._script.popleft()
        last = next((m for m in reversed(request.messages) if m.role is Role.USER), None)
        return _Reversed(last.text[::-1] if last is not None else "")

    def _response(self, request: Request, reply: Reply) -> Response:
        parts: list[Text | ToolCall] = [Text(reply.text)] if reply.text else []
        parts += [ToolCall(f"call_{i}", c.name, c.arguments) for i, c in enumerate(reply.tool_calls)]
        words_in = sum(len(m.text.split()) for m in request.messages) + 1
        usage = Usage(words_in, len((reply.text or "").split()) + len(reply.tool_calls) + 1)
        finish = "tool_calls" if reply.tool_calls else "stop"
        return Response(tuple(parts), usage, finish, request.model or self.config.default_model)

    def _events(self, response: Response) -> list[Event]:
        size = self.config.chunk_size
        events: list[Event] = []
        for part in response.parts:
            if isinstance(part, Text):
                events += [TextDelta(part.text[i : i + size]) for i in range(0, len(part.text), size)]
        for index, call in enumerate(c for c in response.parts if isinstance(c, ToolCall)):
            arguments = json.dumps(dict(call.arguments))
            events.append(ToolCallDelta(index, call.id, call.name))
            events += [ToolCallDelta(index, arguments=arguments[i : i + size]) for i in range(0, len(arguments), size)]
        events.append(Done(response.usage, response.finish_reason, response.model))
        return events


def _error(reply: Reply) -> ProviderError:
    assert reply.error is not None
    if reply.error == "rate_limited":
        return RateLimited("slow down", provider=NAME, retry_after=reply.retry_after)
    return ERRORS[reply.error](f"scripted {reply.error} error", provider=NAME)
