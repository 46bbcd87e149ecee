"""The middleware chain: each middleware wraps the provider call, in the order config names them.

The first middleware named sees the call first and the reply last (an onion)::

    chain = ["retry", "metrics"]   # retry(metrics(provider))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from attrs import define

from threadline.model import Event, Request, Response, SessionRecord

CompleteNext = Callable[["Call"], Awaitable[Response]]
StreamNext = Callable[["Call"], AsyncIterator[Event]]


@define
class Call:
    """One provider call as middleware sees it. Middleware may replace ``request`` or
    ``provider`` (``attrs.evolve(call, provider="backup")``) before passing it on."""

    session: SessionRecord
    provider: str
    request: Request


class Middleware:
    """Subclass and override ``complete``, ``stream`` or both; the defaults pass the call on."""

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        return await next(call)

    def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        return next(call)


class Chain:
    """Middleware composed around a terminal ``complete`` and ``stream`` (the provider call)."""

    def __init__(self, middleware: Sequence[Middleware], complete: CompleteNext, stream: StreamNext) -> None:
        self.complete = complete
        self.stream = stream
        for layer in reversed(middleware):
            self.complete = _wrap_complete(layer, self.complete)
            self.stream = _wrap_stream(layer, self.stream)


def _wrap_complete(layer: Middleware, next: CompleteNext) -> CompleteNext:
    async def complete(call: Call) -> Response:
        return await layer.complete(call, next)

    return complete


def _wrap_stream(layer: Middleware, next: StreamNext) -> StreamNext:
    def stream(call: Call) -> AsyncIterator[Event]:
        return layer.stream(call, next)

    return stream
