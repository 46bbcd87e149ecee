"""The middleware chain: each middleware wraps the provider call, in the order config names them.

The first middleware named sees the call first and the reply last (an onion)::

    chain = ["retry", "metrics"]   # retry(metrics(provider))

Before any message is stored (the user's, the reply, tool results, a reply cut off), it
passes every middleware's :meth:`Middleware.message` in the order the chain names them: the
message stage, where redaction, tagging, field encryption and moderation live. Before a
session's record is stored (made, changed, forked), it passes every :meth:`Middleware.session`
the same way: the session stage, for what the record holds (system prompt, title, metadata).
Each record an export writes passes every :meth:`Middleware.export`: the export stage, where
what must stay on this storage (keys, pseudonym maps) is taken out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from attrs import define

from threadline.errors import PluginError
from threadline.model import Event, Message, Request, Response, SessionRecord

CompleteNext = Callable[["Call"], Awaitable[Response]]
"""What ``Middleware.complete`` is given as ``next``: the rest of the chain, then the provider."""
StreamNext = Callable[["Call"], AsyncIterator[Event]]
"""What ``Middleware.stream`` is given as ``next``: the rest of the chain, then the provider."""


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
        """A call for the whole reply (``Session.send``): pass ``call`` on with ``next``, or a
        changed copy, and return the response, or a changed one."""
        return await next(call)

    def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        """A streamed call (``Session.stream``): return the events of ``next(call)``, or an
        async generator that changes them on their way."""
        return next(call)

    async def message(self, message: Message, session: SessionRecord) -> Message:
        """The message stage: called with every message about to be stored, in chain order;
        return it, or a changed copy (``attrs.evolve(message, parts=...)``), to store instead.

        What is stored is also what providers are sent in later turns, what the session title
        is made from and what ``threadline_message_appended`` receives. Raise (a
        :class:`~threadline.ThreadlineError` with a clear message) to refuse a user message:
        nothing of it is stored. Streamed deltas are not messages: rewrite them in
        :meth:`stream`; the stored reply still comes through here whole.
        """
        return message

    async def session(self, session: SessionRecord) -> SessionRecord:
        """The session stage: called with every session record about to be stored (a session
        made, one whose title, system prompt, metadata or other fields changed, a fork), in
        chain order; return it, or a changed copy (``attrs.evolve(session, title=...)``), to
        store instead. What is stored is what later requests send as the system prompt.
        """
        return session

    async def export(self, record: SessionRecord | Message) -> SessionRecord | Message:
        """The export stage: called, in chain order, with every session record and message
        :meth:`~threadline.SessionManager.export_jsonl` writes (``threadline sessions
        export``), unless it is asked for the records as stored (``raw=True``, ``--raw``);
        return it, or a changed copy, to write instead. Take out here what must not leave
        the storage, such as a pseudonym map; what is stored stays as it is.
        """
        return record


class Chain:
    """Middleware composed around a terminal ``complete`` and ``stream`` (the provider call),
    plus the message stage of those that have one."""

    def __init__(self, middleware: Sequence[Middleware], complete: CompleteNext, stream: StreamNext) -> None:
        self.layers = tuple(middleware)
        self.complete = complete
        self.stream = stream
        for layer in reversed(middleware):
            self.complete = _wrap_complete(layer, self.complete)
            self.stream = _wrap_stream(layer, self.stream)
        self.stages = [layer.message for layer in middleware if _overrides(layer, "message")]
        self.session_stages = [layer.session for layer in middleware if _overrides(layer, "session")]
        self.export_stages = [layer.export for layer in middleware if _overrides(layer, "export")]

    async def stage(self, message: Message, session: SessionRecord) -> Message:
        """``message`` after every middleware's message stage, in chain order."""
        for stage in self.stages:
            changed = await stage(message, session)
            if not isinstance(changed, Message):
                raise PluginError(
                    f"{getattr(stage, '__qualname__', stage)} returned {type(changed).__name__}; "
                    "a message stage returns the Message to store"
                )
            message = changed
        return message

    async def session_stage(self, session: SessionRecord) -> SessionRecord:
        """``session`` after every middleware's session stage, in chain order."""
        for stage in self.session_stages:
            changed = await stage(session)
            if not isinstance(changed, SessionRecord):
                raise PluginError(
                    f"{getattr(stage, '__qualname__', stage)} returned {type(changed).__name__}; "
                    "a session stage returns the SessionRecord to store"
                )
            session = changed
        return session

    async def export_stage(self, record: SessionRecord | Message) -> SessionRecord | Message:
        """``record`` after every middleware's export stage, in chain order."""
        for stage in self.export_stages:
            changed = await stage(record)
            if type(changed) is not type(record):
                raise PluginError(
                    f"{getattr(stage, '__qualname__', stage)} returned {type(changed).__name__}; "
                    f"an export stage returns the {type(record).__name__} to write"
                )
            record = changed
        return record


def _overrides(layer: object, method: str) -> bool:
    return getattr(type(layer), method, getattr(Middleware, method)) is not getattr(Middleware, method)


def _wrap_complete(layer: Middleware, next: CompleteNext) -> CompleteNext:
    async def complete(call: Call) -> Response:
        return await layer.complete(call, next)

    return complete


def _wrap_stream(layer: Middleware, next: StreamNext) -> StreamNext:
    def stream(call: Call) -> AsyncIterator[Event]:
        return layer.stream(call, next)

    return stream
