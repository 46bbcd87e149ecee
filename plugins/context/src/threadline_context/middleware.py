"""The ``context`` middleware: what a call sends, kept inside the model's window.

Each call is counted before it goes: an estimate (:mod:`threadline_context.tokens`), scaled
by what the provider's usage said of the calls before, and, when the estimate is over the
budget, the provider's own count where it has one: for a model's first call, then only
for calls near the budget, where the count may let the whole history go. A call over its budget has its older
turns summarised (``strategy = "summarize"``: the summary is stored in their place) or left
out of what is sent (``"trim"``, and whenever a summary fails).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Final

import attrs

from threadline.plugin import (
    Call,
    CompleteNext,
    ContextTooLong,
    Done,
    Event,
    Message,
    Middleware,
    Response,
    StreamNext,
    TextDelta,
    ThreadlineError,
    Usage,
)
from threadline_context import ContextConfig
from threadline_context.summary import Ask, is_summary, summary_of
from threadline_context.tokens import estimate, message_tokens
from threadline_context.turns import middle, trimmed, turns

SIZES_KEPT: Final = 100_000  # messages whose estimates are kept, by id
RATIO_LIMITS: Final = (0.25, 4.0)  # how far a provider's count may scale the estimate
COUNT_WHEN_OVER: Final = 1.25  # once a model's scale is known, the provider counts calls at most this far over
log = logging.getLogger("threadline.context")


class ContextMiddleware(Middleware):
    """Keeps each call inside its budget (``[middleware.context]``)."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = config or ContextConfig()
        self._sizes: dict[str, int] = {}
        self._ratios: dict[tuple[str, str | None], float] = {}

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        async def ask(summary: Call) -> str:
            return "".join(getattr(part, "text", "") for part in (await next(summary)).parts)

        call, estimated = await self.fitted(call, ask)
        response = await next(call)
        self.calibrate(call, estimated, response.usage)
        return response

    async def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        async def ask(summary: Call) -> str:
            return "".join([event.text async for event in next(summary) if isinstance(event, TextDelta)])

        call, estimated = await self.fitted(call, ask)
        async for event in next(call):
            if isinstance(event, Done):
                self.calibrate(call, estimated, event.usage)
            yield event

    def budget(self, call: Call) -> int | None:
        """The tokens ``call`` may send, system prompt and tools included; ``None``: no limit known."""
        config = self.config
        if config.max_tokens is not None:
            return config.max_tokens
        try:
            window = call.capabilities().max_context
        except ThreadlineError:  # not a session's call: its provider is not known here
            return None
        if window is None:
            return None
        return int(window * config.window_fraction) - (call.request.options.max_tokens or 0)

    async def fitted(self, call: Call, ask: Ask) -> tuple[Call, int]:
        """``call`` shortened to fit its budget, and the estimate of what it sends."""
        request = call.request
        tools = sum(estimate(json.dumps(dict(tool.parameters))) for tool in request.tools)
        fixed = estimate(request.system_prompt or "") + tools
        estimated = fixed + sum(map(self.size, request.messages))
        budget = self.budget(call)
        learned = self._ratios.get(_model(call))
        ratio = learned or 1.0
        if budget is None or estimated * ratio <= budget:
            return call, estimated
        if (learned is None or estimated * ratio <= budget * COUNT_WHEN_OVER) and (
            counted := await self.counted(call)
        ) is not None:
            ratio = self._ratios[_model(call)] = _bounded(counted / estimated)
            if counted <= budget:
                return call, estimated
        room = int(budget / ratio) - fixed
        messages = await self.summarized(call, request.messages, room, ask)
        kept = trimmed(messages, room, self.config.keep_first, self.config.keep_last, self.size)
        if kept is None:
            raise ContextTooLong(
                f"the turn being answered alone is over the {budget:,} tokens a call may send here "
                "([middleware.context]): shorten the message, or raise max_tokens or window_fraction",
                provider=call.provider,
            )
        shortened = attrs.evolve(call, request=attrs.evolve(request, messages=tuple(kept)))
        return shortened, fixed + sum(map(self.size, kept))

    async def counted(self, call: Call) -> int | None:
        """The provider's own count of ``call``'s tokens; ``None`` when it has none, or
        ``count = "estimate"``, or the count failed (logged)."""
        if self.config.count != "provider":
            return None
        try:
            return await call.count_tokens()
        except ThreadlineError as exc:
            log.warning("could not count the tokens of a call to %s (%s); estimating them", call.provider, exc)
            return None

    async def summarized(self, call: Call, messages: Sequence[Message], room: int, ask: Ask) -> Sequence[Message]:
        """With ``strategy = "summarize"``, ``messages`` with the turns between the kept
        first and last ones replaced by a summary, stored in their place; as they were when
        there is nothing new to summarise or the summary fails (logged)."""
        cut = turns(messages)
        between = middle(len(cut), self.config.keep_first, self.config.keep_last)
        older = [message for turn in cut[between.start : between.stop] for message in turn]
        if self.config.strategy != "summarize" or call.turn is None or all(map(is_summary, older)):
            return messages
        try:
            summary = await summary_of(call, older, self.config, ask, room)
            stored = await call.turn.replace_history(older[0], older[-1], [summary])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning(
                "session %s: summarising %d messages failed; trimming", call.session.id, len(older), exc_info=True
            )
            return messages
        first = [message for turn in cut[: between.start] for message in turn]
        return [*first, *stored, *(message for turn in cut[between.stop :] for message in turn)]

    def calibrate(self, call: Call, estimated: int, usage: Usage) -> None:
        """What the provider said the call took, against the estimate: later estimates for
        its model are scaled by it."""
        if usage.input_tokens > 0 and estimated > 0:
            self._ratios[_model(call)] = _bounded(usage.input_tokens / estimated)

    def size(self, message: Message) -> int:
        """``message``'s estimated tokens, worked out once for each stored message."""
        tokens = self._sizes.get(message.id)
        if tokens is None:
            if len(self._sizes) >= SIZES_KEPT:
                self._sizes.clear()
            tokens = self._sizes[message.id] = message_tokens(message)
        return tokens


def _model(call: Call) -> tuple[str, str | None]:
    return call.provider, call.request.model


def _bounded(ratio: float) -> float:
    low, high = RATIO_LIMITS
    return min(max(ratio, low), high)
