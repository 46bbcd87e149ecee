"""The middleware chain: each middleware wraps the provider call, in the order config names them.

The first middleware named sees the call first and the reply last (an onion)::

    chain = ["retry", "metrics"]   # retry(metrics(provider))

The same order wraps a whole turn (:meth:`Middleware.turn`: a ``send`` or ``stream``, model
calls and tool runs included), each tool run (:meth:`Middleware.tool`), and the storage
(:meth:`Middleware.wrap_storage`, once, when the manager opens).

Before any message is stored (the user's, the reply, tool results, a reply cut off), it
passes every middleware's :meth:`Middleware.message` in the order the chain names them: the
message stage, where redaction, tagging, field encryption and moderation live. Before a
session's record is stored (made, changed, forked), it passes every :meth:`Middleware.session`
the same way: the session stage, for what the record holds (system prompt, title, metadata).
Each record an export writes passes every :meth:`Middleware.export`: the export stage, where
what must stay on this storage (keys, pseudonym maps) is taken out.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from attrs import define, field, frozen

from threadline.errors import HistoryError, PluginError
from threadline.model import (
    CallOptions,
    Capabilities,
    Event,
    Message,
    OutputSchema,
    Part,
    Record,
    Request,
    Response,
    SessionRecord,
    ToolCall,
    ToolResult,
    new_id,
)

if TYPE_CHECKING:
    from threadline.contracts import Provider, Storage
    from threadline.session import Session

CompleteNext = Callable[["Call"], Awaitable[Response]]
"""What ``Middleware.complete`` is given as ``next``: the rest of the chain, then the provider."""
StreamNext = Callable[["Call"], AsyncIterator[Event]]
"""What ``Middleware.stream`` is given as ``next``: the rest of the chain, then the provider."""
TurnNext = Callable[["Turn"], AsyncGenerator[Event, None]]
"""What ``Middleware.turn`` is given as ``next``: the rest of the chain, then the turn itself."""
ToolNext = Callable[[ToolCall], Awaitable[ToolResult]]
"""What ``Middleware.tool`` is given as ``next``: the rest of the chain, then the tool."""


@frozen(eq=False)
class Turn:
    """One ``send`` or ``stream`` as middleware sees it: the user's message in, the stored
    reply out, model calls and tool runs in between. Every :class:`Call` of the turn names
    it; its ``id`` is its own and stays when a stage changes the turn
    (``attrs.evolve(turn, model=...)``), so middleware keeps what it needs of a turn keyed
    by ``turn.id``."""

    session: SessionRecord
    provider: str
    model: str | None
    options: CallOptions
    content: tuple[Part, ...]
    streaming: bool
    id: str = field(factory=new_id)
    again: bool = False
    """The turn answers the last user message again (``Session.regenerate``): ``content`` is
    that message's, and no new one is stored."""
    output: OutputSchema | None = None
    """The JSON schema the reply is asked to match (``send(output=T)``): each call's
    ``request.output`` when the provider has structured output, else told in its system
    prompt."""
    _handle: Session | None = field(default=None, alias="handle", repr=False)

    async def replace_history(self, first: Message, last: Message, messages: Sequence[Message]) -> list[Message]:
        """While the turn runs (from a middleware's :meth:`~Middleware.complete` or
        :meth:`~Middleware.stream`, or a tool), store ``messages`` in place of the stored
        messages from ``first`` to ``last`` (as the history holds them, by id; those between
        go too; all before the user message the turn answers), and the ones after renumbered
        to follow: one atomic ``Storage.replace_messages``. As with any edit, what is
        replaced is kept (``Session.revisions``), ``threadline_history_edited`` is told, and
        the session's ``provider_state`` is cleared (send the call on with
        ``provider_state={}``). ``messages`` pass the message stage; their ``session_id`` and
        ``seq`` are set here, and each needs an id of its own. Returns them as stored. The
        next call of the turn reads the history as it is now; a summary of older turns
        (``threadline-context``) is stored this way.
        """
        from threadline.editing import made, range_plan, replace_after

        session = self._running()
        start = made(await replace_after(session, range_plan(session, first, last, messages))).after_seq
        return list((session._live.history or [])[start : start + len(messages)])

    def _running(self) -> Session:
        session = self._handle
        if session is None or session._live.turn_id != self.id:
            raise HistoryError(
                "a turn changes its history only while it runs: from a middleware's complete or "
                "stream, or a tool, of this turn"
            )
        return session


@define
class Call:
    """One provider call as middleware sees it. Middleware may replace ``request`` or
    ``provider`` (``attrs.evolve(call, provider="backup")``) before passing it on. ``turn`` is
    the turn the call is part of."""

    session: SessionRecord
    provider: str
    request: Request
    turn: Turn | None = None

    def capabilities(self) -> Capabilities:
        """What the call's provider says the request's model can do; ``max_context`` is the
        model's context window in tokens, where the provider knows it."""
        return self._provider().capabilities(self.request.model)

    async def count_tokens(self) -> int | None:
        """The input tokens the request would take, counted by the call's provider through
        its own API (Anthropic's and Gemini's ``count_tokens``, OpenAI's Responses
        ``input_tokens``); ``None`` when the provider has no way to count
        (``count_tokens``, optional for providers, may also say ``None``)."""
        count = getattr(self._provider(), "count_tokens", None)
        if count is None:
            return None
        tokens: int | None = await count(self.request)
        return tokens

    def _provider(self) -> Provider:
        session = self.turn._handle if self.turn is not None else None
        if session is None:
            raise PluginError("this call is not part of a session's turn: its provider is not known here")
        return session._manager.provider(self.provider)


class Middleware:
    """Subclass and override what you need; the defaults pass everything on unchanged."""

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

    async def export(self, record: Record) -> Record:
        """The export stage: called, in chain order, with every session record and message
        :meth:`~threadline.SessionManager.export_jsonl` writes (``threadline sessions
        export``), unless it is asked for the records as stored (``raw=True``, ``--raw``);
        return it, or a changed copy, to write instead. Take out here what must not leave
        the storage, such as a pseudonym map; what is stored stays as it is.
        """
        return record

    def turn(self, turn: Turn, next: TurnNext) -> AsyncGenerator[Event, None]:
        """The turn stage: a whole ``send`` or ``stream``, from before its user message is
        checked to after its reply is stored, tool runs and every model call included (each
        of which also passes :meth:`complete` or :meth:`stream`). Return the events of
        ``next(turn)`` (or of a changed copy, ``attrs.evolve(turn, model=...)``), or an
        async generator of your own that watches or changes them. A ``send`` has one event,
        the final ``Done`` (its ``message`` the stored reply, its ``usage`` the whole
        turn's); a ``stream`` has the deltas first. A turn that fails raises from ``next``'s
        events; one the caller leaves closes them (``GeneratorExit``). When the turn ends,
        the kernel closes each stage's events, innermost first (the turn's own cleanup, then
        the stages'), so a stage that reads them to the end or gives up need not; one that
        leaves them to call ``next`` again must close them first (``await events.aclose()``),
        since the turn holds its session until it is closed.
        """
        return next(turn)

    async def tool(self, call: ToolCall, turn: Turn, next: ToolNext) -> ToolResult:
        """The tool stage: one tool run of ``turn``, for the model's ``call``. Return
        ``await next(call)`` (or of a changed copy), or a result of your own instead of
        running it (``ToolResult(call.id, "not allowed", is_error=True)``). A tool that raises,
        or a call of a tool the session does not have, raises here (a
        :class:`~threadline.ToolError` for the latter); the kernel gives the model the
        error as the result once it has passed every layer.
        """
        return await next(call)

    def wrap_storage(self, storage: Storage, backend: str) -> Storage:
        """The storage stage: called once, as the manager opens, with its storage (what
        earlier stages returned) and the backend's name (``[storage] backend``; the class
        name of a storage given to the manager); return it, or an object with the
        :class:`~threadline.plugin.Storage` methods that calls it, to time or watch every
        storage operation. The first middleware named wraps outermost.
        """
        return storage


class Chain:
    """Middleware composed around a terminal ``complete`` and ``stream`` (the provider call),
    plus the message stage of those that have one."""

    def __init__(self, middleware: Sequence[Middleware], complete: CompleteNext, stream: StreamNext) -> None:
        self.layers = tuple(middleware)
        self.complete = complete
        self.stream = stream
        for layer in reversed(middleware):
            self.complete = _wrap(layer.complete, self.complete)
            self.stream = _wrap(layer.stream, self.stream)
        self.turn_layers = [layer for layer in middleware if _overrides(layer, "turn")]
        self.tool_layers = [layer for layer in middleware if _overrides(layer, "tool")]
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

    async def export_stage(self, record: Record) -> Record:
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

    def run_turn(self, turn: Turn, terminal: TurnNext) -> AsyncGenerator[Event, None]:
        """The events of ``terminal(turn)`` through every turn stage."""
        return _closing_turn(self.turn_layers, turn, terminal) if self.turn_layers else terminal(turn)

    async def run_tool(self, call: ToolCall, turn: Turn, terminal: ToolNext) -> ToolResult:
        """``terminal(call)`` through every tool stage."""
        next = terminal
        for layer in reversed(self.tool_layers):
            next = _wrap(layer.tool, next, turn)
        return await next(call)

    def wrap_storage(self, storage: Storage, backend: str) -> Storage:
        """``storage`` through every storage stage, the first named outermost."""
        for layer in reversed(self.layers):
            if not _overrides(layer, "wrap_storage"):
                continue
            storage = layer.wrap_storage(storage, backend)
            if storage is None:
                raise PluginError(
                    f"{type(layer).__qualname__}.wrap_storage returned None; a storage stage returns the storage to use"
                )
        return storage


async def _closing_turn(layers: Sequence[Middleware], turn: Turn, terminal: TurnNext) -> AsyncGenerator[Event, None]:
    """The events of ``terminal(turn)`` through ``layers``' turn stages; at the end, each
    stage's events are closed, the turn's own first and the outermost stage's last: a stage
    that stops at an error or a caller leaving (``async for`` closes nothing) leaves no turn
    open, and sees the turn's cleanup done before its own."""
    opened: list[AsyncGenerator[Event, None]] = []

    def tracked(next: TurnNext) -> TurnNext:
        def started(turn: Turn) -> AsyncGenerator[Event, None]:
            events = next(turn)
            opened.append(events)
            return events

        return started

    next = tracked(terminal)
    for layer in reversed(layers):
        next = tracked(_wrap(layer.turn, next))
    try:
        async for event in next(turn):
            yield event
    finally:
        await _close_each(opened[::-1])


async def _close_each(opened: Sequence[AsyncGenerator[Event, None]]) -> None:
    """Close each of ``opened`` in order, even when one before it raised; then raise the
    first error."""
    error: BaseException | None = None
    for events in opened:
        try:
            await events.aclose()
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error


def _overrides(layer: object, method: str) -> bool:
    return getattr(type(layer), method, getattr(Middleware, method)) is not getattr(Middleware, method)


def _wrap(method: Callable[..., Any], next: Callable[..., Any], *context: Any) -> Callable[..., Any]:
    """``next`` wrapped in a layer's ``method``: ``method(argument, *context, next)``."""

    def wrapped(argument: Any) -> Any:
        return method(argument, *context, next)

    return wrapped
