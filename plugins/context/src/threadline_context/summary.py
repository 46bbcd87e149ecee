"""A summary of older turns, made by a model: what the ``summarize`` strategy stores in
their place (``Turn.replace_history``; the turns themselves stay as a revision).

The summarizer is sent one user message, a transcript of the turns, newest kept first when
they are more than it takes, and a previous summary among them always; it is asked for
notes the conversation can go on from.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from threadline.plugin import (
    Call,
    CallOptions,
    File,
    Image,
    Message,
    PluginError,
    Request,
    Role,
    Text,
    ToolCall,
    ToolResult,
)
from threadline_context.tokens import estimate

if TYPE_CHECKING:
    from threadline_context import ContextConfig

SUMMARY_KEY: Final = "threadline_context.summary"
"""The metadata key that marks a stored summary: ``{"messages": n}``, how many it replaced."""
HEADING: Final = "Summary of the earlier conversation:"

Ask = Callable[[Call], Awaitable[str]]
"""Sends a call on down the chain and gives back the reply's text."""


def is_summary(message: Message) -> bool:
    return SUMMARY_KEY in message.metadata


async def summary_of(call: Call, messages: Sequence[Message], config: ContextConfig, ask: Ask, room: int) -> Message:
    """A summary of ``messages`` by the configured model (else ``call``'s own), as a system
    message to store in their place. ``room``: the tokens of transcript the summarizer is
    sent when its own window is not known."""
    asked = _summary_call(call, config)
    transcript = _fitted(messages, _transcript_room(asked, config, room))
    text = (await ask(attrs.evolve(asked, request=attrs.evolve(asked.request, messages=(transcript,))))).strip()
    if not text:
        raise PluginError(f"the summary from {asked.provider!r} came back empty")
    return Message(
        call.session.id,
        0,
        Role.SYSTEM,
        (Text(f"{HEADING}\n{text}"),),
        provider=asked.provider,
        model=asked.request.model,
        metadata={SUMMARY_KEY: {"messages": len(messages)}},
    )


def _summary_call(call: Call, config: ContextConfig) -> Call:
    provider = config.summary_provider or call.provider
    model = config.summary_model or (call.request.model if provider == call.provider else None)
    request = Request(model, (), config.summary_prompt, options=CallOptions(max_tokens=config.summary_max_tokens))
    return attrs.evolve(call, provider=provider, request=request)


def _transcript_room(asked: Call, config: ContextConfig, room: int) -> int:
    window = asked.capabilities().max_context
    if window is None:
        return room
    return int(window * config.window_fraction) - config.summary_max_tokens - estimate(config.summary_prompt)


def _fitted(messages: Sequence[Message], room: int) -> Message:
    """The transcript of ``messages`` as one user message: the newest lines that fit
    ``room``, after a previous summary's."""
    lines = [_line(message) for message in messages]
    head = [lines.pop(0)] if is_summary(messages[0]) else []
    room -= sum(estimate(line) + 1 for line in head)
    kept: list[str] = []
    for line in reversed(lines):
        room -= estimate(line) + 1
        if room < 0:
            break
        kept.append(line)
    text = "\n\n".join([*head, *reversed(kept)])
    return Message(messages[0].session_id, 1, Role.USER, (Text(text),))


def _line(message: Message) -> str:
    if is_summary(message):
        return message.text
    said = " ".join(filter(None, (_part(part) for part in message.parts)))
    return f"{message.role.value.capitalize()}: {said}"


def _part(part: object) -> str:
    if isinstance(part, Text):
        return part.text
    if isinstance(part, ToolCall):
        return f"[called {part.name}({json.dumps(dict(part.arguments), ensure_ascii=False)})]"
    if isinstance(part, ToolResult):
        return f"[{'error' if part.is_error else 'result'}: {part.content}]"
    if isinstance(part, Image | File):
        return f"[{part.media_type}]"
    return ""
