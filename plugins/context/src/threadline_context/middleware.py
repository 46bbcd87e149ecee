"""The ``context`` middleware: what a call sends, kept inside the model's window.

Each call is counted before it goes: an estimate (:mod:`threadline_context.tokens`), scaled
by what the provider's usage said of the calls before, and, when the estimate is over the
budget, the provider's own count where it has one: for a model's first call, then only for
calls near the budget, where the count may let the whole history go. A call over its budget
has its older turns summarised (``strategy = "summarize"``: the summary is stored in their
place) or left out of what is sent (``"trim"``, and whenever a summary fails).
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
    File,
    Image,
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
RAISE_AFTER_REFUSAL: Final = 1.5  # after a refusal, the call counts as over its budget by at least this much
log = logging.getLogger("threadline.context")


class ContextMiddleware(Middleware):
    """Keeps each call inside its budget (``[middleware.context]``)."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = config or ContextConfig()
        self._sizes: dict[str, int] = {}
        self._ratios: dict[tuple[str, str | None], float] = {}
        self._guessed: set[str] = set()  # messages with an image or a file: their estimate is a guess

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        spent: list[Usage] = []  # by the summary calls, counted in the reply's usage

        async def ask(summary: Call) -> str:
            response = await next(summary)
            spent.append(response.usage)
            return "".join(getattr(part, "text", "") for part in response.parts)

        fitted, estimated = await self.fitted(call, ask)
        try:
            response = await next(fitted)
        except ContextTooLong:
            retry = await self.refitted(fitted, estimated)
            if retry is None:
                raise
            fitted, estimated = retry
            response = await next(fitted)
        self.calibrate(fitted, estimated, response.usage)
        return attrs.evolve(response, usage=sum(spent, response.usage)) if spent else response

    async def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        spent: list[Usage] = []

        async def ask(summary: Call) -> str:
            text = []
            async for event in next(summary):
                if isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, Done):
                    spent.append(event.usage)
            return "".join(text)

        fitted, estimated = await self.fitted(call, ask)
        started = False
        try:
            async for event in self.calibrated(fitted, estimated, next(fitted), spent):
                started = True
                yield event
        except ContextTooLong:
            retry = None if started else await self.refitted(fitted, estimated)
            if retry is None:
                raise
            fitted, estimated = retry
            async for event in self.calibrated(fitted, estimated, next(fitted), spent):
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

    async def fitted(self, call: Call, ask: Ask | None) -> tuple[Call, int]:
        """``call`` shortened to fit its budget, and the estimate of what it sends; with no
        way to ``ask`` for a summary, trimmed only."""
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
            ratio = self.learn(call, counted, estimated)
            if counted <= budget:
                return call, estimated
        room = int(budget / ratio) - fixed
        messages = request.messages if ask is None else await self.summarized(call, request.messages, room, ask)
        kept = trimmed(messages, room, self.config.keep_first, self.config.keep_last, self.size)
        if kept is None:
            raise ContextTooLong(
                f"the turn being answered alone is over the {budget:,} tokens a call may send here "
                "([middleware.context]): shorten the message, or raise max_tokens or window_fraction "
                "(or the model's context_windows)",
                provider=call.provider,
            )
        # the provider's own copy of the conversation (OpenAI's) holds what is left out: send it whole
        shortened = attrs.evolve(call, request=attrs.evolve(request, messages=tuple(kept), provider_state={}))
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
        between = middle(cut, self.config.keep_first, self.config.keep_last)
        older = [message for turn in cut[between.start : between.stop] for message in turn]
        if self.config.strategy != "summarize" or call.turn is None or all(map(is_summary, older)):
            return messages
        try:
            summary = await summary_of(call, older, self.config, ask, room)
            stored = await call.turn.replace_history(older[0], older[-1], [summary])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "session %s: summarising %d messages with %r failed, so the call is trimmed: %s",
                call.session.id,
                len(older),
                self.config.summary_provider or call.provider,
                exc,
                exc_info=not isinstance(exc, ThreadlineError),
            )
            return messages
        first = [message for turn in cut[: between.start] for message in turn]
        moved = stored[-1].seq - older[-1].seq  # the later messages are numbered on from the summary now
        later = [attrs.evolve(message, seq=message.seq + moved) for turn in cut[between.stop :] for message in turn]
        return [*first, *stored, *later]

    def calibrate(self, call: Call, estimated: int, usage: Usage) -> None:
        """What the provider's usage said the call took, against the estimate."""
        if usage.input_tokens > 0 and estimated > 0:
            self.learn(call, usage.input_tokens, estimated)

    def learn(self, call: Call, tokens: int, estimated: int) -> float:
        """The scale of ``call``'s estimate, ``tokens`` as the provider counted them; kept
        for the model's later estimates, unless the call has images or files, whose
        estimate is a guess."""
        ratio = _bounded(tokens / estimated)
        if not (self._guessed and any(message.id in self._guessed for message in call.request.messages)):
            self._ratios[_model(call)] = ratio
        return ratio

    async def calibrated(
        self, call: Call, estimated: int, events: AsyncIterator[Event], spent: list[Usage]
    ) -> AsyncIterator[Event]:
        """``events``; the ``Done`` calibrates the estimate, and counts what the summary
        calls ``spent`` in its usage."""
        async for event in events:
            if isinstance(event, Done):
                self.calibrate(call, estimated, event.usage)
                if spent:
                    event = attrs.evolve(event, usage=sum(spent, event.usage))
            yield event

    async def refitted(self, call: Call, estimated: int) -> tuple[Call, int] | None:
        """After the provider refused ``call`` as too long: its model's scale set from the
        provider's count of the call, where it can count, and at least so high that the call
        counts as over its budget; the call trimmed by it. ``None`` when that leaves it as it
        was (no budget known, or nothing left to trim)."""
        budget = self.budget(call)
        if budget is None or estimated <= 0:
            return None
        counted = await self.counted(call)
        over = budget / estimated * RAISE_AFTER_REFUSAL
        self._ratios[_model(call)] = _bounded(max(over, counted / estimated if counted else 0))
        refit, smaller = await self.fitted(call, None)
        if len(refit.request.messages) == len(call.request.messages):
            return None
        return refit, smaller

    def size(self, message: Message) -> int:
        """``message``'s estimated tokens, worked out once for each stored message."""
        tokens = self._sizes.get(message.id)
        if tokens is None:
            if len(self._sizes) >= SIZES_KEPT:
                self._sizes.clear()
                self._guessed.clear()
            tokens = self._sizes[message.id] = message_tokens(message)
            if any(isinstance(part, Image | File) for part in message.parts):
                self._guessed.add(message.id)
        return tokens


def _model(call: Call) -> tuple[str, str | None]:
    return call.provider, call.request.model


def _bounded(ratio: float) -> float:
    low, high = RATIO_LIMITS
    return min(max(ratio, low), high)
