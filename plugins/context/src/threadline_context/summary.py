"""A summary of older turns, made by a model: what the ``summarize`` strategy stores in
their place (``Turn.replace_history``; the turns themselves stay as a revision).

The summariser is sent one user message, a transcript of the turns (a summary made before
among them, first); it is asked for notes the conversation can go on from. A transcript
longer than the summariser's window is summarised a part at a time, each part sent with
the summary of the parts before it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
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
from threadline_context.tokens import CHARACTERS_PER_TOKEN, estimate

if TYPE_CHECKING:
    from threadline_context import ContextConfig

SUMMARY_KEY: Final = "threadline_context.summary"
"""The metadata key that marks a stored summary: ``{"messages": n}``, how many it replaced."""
HEADING: Final = "Summary of the earlier conversation:"
MIN_PART: Final = 100  # the fewest tokens of transcript worth a summary call
CONTINUED: Final = "(continued) "

Ask = Callable[[Call], Awaitable[str]]
"""Sends a call on down the chain and gives back the reply's text."""


def is_summary(message: Message) -> bool:
    return SUMMARY_KEY in message.metadata


async def summary_of(call: Call, messages: Sequence[Message], config: ContextConfig, ask: Ask, room: int) -> Message:
    """A summary of ``messages`` by the configured model (else ``call``'s own), as a system
    message to store in their place. A transcript longer than the summariser takes is
    summarised a part at a time, oldest first, each part with the summary so far.
    ``room``: the tokens of transcript the summariser takes when its window is not known."""
    asked = _summary_call(call, config)
    summary = ""
    for part in _parts([_line(m) for m in messages], _transcript_room(asked, config, room)):
        transcript = "\n\n".join([f"{HEADING}\n{summary}", *part] if summary else part)
        message = Message(call.session.id, 1, Role.USER, (Text(transcript),))
        summary = (await ask(attrs.evolve(asked, request=attrs.evolve(asked.request, messages=(message,))))).strip()
        if not summary:
            raise PluginError(f"the summary from {asked.provider!r} came back empty")
    return Message(
        call.session.id,
        0,
        Role.SYSTEM,
        (Text(f"{HEADING}\n{summary}"),),
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
    """The tokens of transcript one summary call takes, with the summary so far."""
    window = asked.capabilities().max_context
    if window is not None:
        room = int(window * config.window_fraction) - config.summary_max_tokens - estimate(config.summary_prompt)
    room -= config.summary_max_tokens  # the summary so far, sent along with the next part
    if room < MIN_PART:
        raise PluginError(
            f"summary_provider {asked.provider!r} leaves {max(room, 0):,} tokens of transcript a call, fewer than "
            f"the {MIN_PART} a summary needs: give its model a larger window (context_windows) or the summary "
            "fewer tokens (summary_max_tokens)"
        )
    return room


def _parts(lines: list[str], room: int) -> Iterator[list[str]]:
    """``lines`` in parts of at most ``room`` tokens, in order; a line longer than that is
    split across parts."""
    part: list[str] = []
    used = 0
    for line in (piece for whole in lines for piece in _pieces(whole, room * CHARACTERS_PER_TOKEN)):
        size = estimate(line) + 1
        if part and used + size > room:
            yield part
            part, used = [], 0
        part.append(line)
        used += size
    if part:
        yield part


def _pieces(line: str, length: int) -> list[str]:
    """``line`` in pieces of at most ``length`` characters, each after the first marked as
    going on from the one before."""
    pieces = [line[:length]]
    rest, length = line[length:], length - len(CONTINUED)
    while rest:
        pieces.append(CONTINUED + rest[:length])
        rest = rest[length:]
    return pieces


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
