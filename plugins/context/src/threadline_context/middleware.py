"""The ``context`` middleware: what a call sends, trimmed to fit the model's window.

A turn is a user message and what follows it up to the next one: the reply, tool calls and
their results. Whole turns go, the oldest first, so a tool call never goes without its
result. The stored history is never changed: only what this call sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

import attrs

from threadline.plugin import Call, CompleteNext, ContextTooLong, Event, Message, Middleware, Response, Role, StreamNext
from threadline_context import ContextConfig
from threadline_context.tokens import estimate, message_tokens
from threadline_context.windows import window_of

SIZES_KEPT: Final = 100_000  # messages whose token counts are kept, by id


class ContextMiddleware(Middleware):
    """Leaves the oldest turns out of a call that would not fit (``[middleware.context]``)."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = config or ContextConfig()
        self._sizes: dict[str, int] = {}

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        return await next(self.fitted(call))

    async def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        async for event in next(self.fitted(call)):
            yield event

    def budget(self, call: Call) -> int | None:
        """The tokens ``call`` may send, its system prompt's included; ``None``: no limit known."""
        config = self.config
        if config.max_tokens is not None:
            return config.max_tokens
        window = window_of(call.request.model, config.windows)
        if window is None:
            return None
        return int(window * config.window_fraction) - (call.request.options.max_tokens or 0)

    def fitted(self, call: Call) -> Call:
        """``call`` with as many of its oldest turns left out as it takes to fit its budget."""
        budget = self.budget(call)
        if budget is None:
            return call
        request = call.request
        room = budget - estimate(request.system_prompt or "")
        kept = trimmed(request.messages, room, self.config.keep_first, self.config.keep_last, self.size)
        if kept is None:
            raise ContextTooLong(
                f"the turn being answered alone is over the {budget:,} tokens a call may send here "
                "([middleware.context]): shorten the message, or raise max_tokens or window_fraction",
                provider=call.provider,
            )
        if len(kept) == len(request.messages):
            return call
        return attrs.evolve(call, request=attrs.evolve(request, messages=tuple(kept)))

    def size(self, message: Message) -> int:
        """``message``'s tokens, counted once for each stored message."""
        tokens = self._sizes.get(message.id)
        if tokens is None:
            if len(self._sizes) >= SIZES_KEPT:
                self._sizes.clear()
            tokens = self._sizes[message.id] = message_tokens(message)
        return tokens


def turns(messages: Sequence[Message]) -> list[list[Message]]:
    """``messages`` cut before each user message (what comes before the first is a turn too)."""
    cut: list[list[Message]] = []
    for message in messages:
        if message.role is Role.USER or not cut:
            cut.append([])
        cut[-1].append(message)
    return cut


def trimmed(
    messages: Sequence[Message], room: int, keep_first: int, keep_last: int, size: Callable[[Message], int]
) -> list[Message] | None:
    """``messages`` less whole turns until their tokens fit ``room``: first the turns between
    the first ``keep_first`` and the last ``keep_last``, oldest first; then, if still too
    many, the first ones and the earlier of the last ones. ``None`` when the last turn alone
    does not fit."""
    cut = turns(messages)
    sizes = [sum(map(size, turn)) for turn in cut]
    total, final = sum(sizes), len(cut) - 1
    first = set(range(min(keep_first, final)))
    last = set(range(max(len(cut) - keep_last, 0), len(cut)))
    order = [i for i in range(len(cut)) if i not in first | last] + sorted(first) + sorted(last - {final})
    dropped: set[int] = set()
    for index in order:
        if total <= room:
            break
        if index not in dropped:
            dropped.add(index)
            total -= sizes[index]
    if total > room:
        return None
    return [message for index, turn in enumerate(cut) if index not in dropped for message in turn]
