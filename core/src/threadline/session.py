"""The ``Session`` handle: one conversation's history, record and turns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

from threadline.editing import (
    CONFLICT_RETRIES,
    clear_plan,
    edit_history,
    edit_plan,
    last_user,
    made,
    remove_plan,
    undo_plan,
)
from threadline.errors import OutputError, PluginError, SessionArchived, StorageConflict
from threadline.model import (
    CallOptions,
    Done,
    Event,
    Message,
    Part,
    Revision,
    Role,
    SessionRecord,
    SessionStatus,
    Usage,
    as_parts,
    new_id,
)
from threadline.output import Mismatch, Shape, correction, shape_of
from threadline.turn import plan_turn, run_turn
from threadline.turn_lease import turn_lease

if TYPE_CHECKING:
    from threadline.contracts import Storage
    from threadline.manager import SessionManager
    from threadline.middleware import Turn

_UPDATABLE = frozenset(
    {"title", "system_prompt", "provider", "model", "tools", "user_id", "metadata", "provider_state"}
)
log = logging.getLogger("threadline.session")
T = TypeVar("T")


@attrs.define(eq=False)
class _Live:
    """What every ``Session`` handle on one session shares: the lock that serialises its turns,
    the record as last stored, what this process appended since, and the history as far as
    this process has seen it."""

    stored: SessionRecord
    lock: asyncio.Lock = attrs.Factory(asyncio.Lock)
    history: list[Message] | None = None
    appended: int = 0
    appended_usage: Usage = attrs.Factory(Usage)
    turn_id: str | None = None  # the turn running in this process, while it runs
    _record: SessionRecord | None = None

    @property
    def message_count(self) -> int:
        return self.stored.message_count + self.appended

    @property
    def record(self) -> SessionRecord:
        """The stored record with this process's appends counted in (made only when asked for)."""
        if self._record is None:
            self._record = (
                self.stored
                if not self.appended
                else attrs.evolve(
                    self.stored, message_count=self.message_count, usage=self.stored.usage + self.appended_usage
                )
            )
        return self._record

    def store(self, record: SessionRecord) -> None:
        """``record`` is what the storage now holds."""
        self.stored, self.appended, self.appended_usage, self._record = record, 0, Usage(), None

    def refresh(self, record: SessionRecord) -> None:
        """``record`` is what the storage holds now; the history is read again when another
        writer appended to it or edited it (an edit raises the version)."""
        if record.message_count != self.message_count or record.version != self.stored.version:
            self.history = None
        self.store(record)

    def count(self, messages: list[Message]) -> None:
        self.appended += len(messages)
        self.appended_usage = sum((m.usage for m in messages if m.usage), self.appended_usage)
        self._record = None
        if self.history is not None:
            self.history.extend(messages)


class Session:
    """One conversation. Get one from :meth:`SessionManager.create_session` or ``get_session``.

    Turns on one session run one at a time, in the order they were asked for.
    """

    def __init__(self, manager: SessionManager, live: _Live) -> None:
        self._manager = manager
        self._live = live

    def __repr__(self) -> str:
        return f"<Session {self.id} provider={self.record.provider!r} messages={self.record.message_count}>"

    @property
    def record(self) -> SessionRecord:
        """The session as last stored or read."""
        return self._live.record

    @property
    def id(self) -> str:
        """The session's id: what ``SessionManager.get_session`` and ``threadline chat --session`` take."""
        return self.record.id

    @property
    def title(self) -> str | None:
        """The title: given at creation or by :meth:`update`, else the start of the first message."""
        return self.record.title

    @property
    def _storage(self) -> Storage:
        return self._manager.storage

    # -- reading --------------------------------------------------------------

    async def history(self, limit: int | None = None) -> list[Message]:
        """The stored messages, oldest first; only the newest ``limit`` when given (``0``: none).

        :raises ValueError: ``limit`` is not a whole number of at least 0.
        """
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"limit must be a whole number of at least 0, or None for all; got {limit!r}")
        return await self._storage.get_messages(self.record.tenant, self.id, last=limit)

    async def refresh(self) -> SessionRecord:
        """Read the record again from the storage (another process may have changed it) and return it."""
        self._live.refresh(await self._storage.get_session(self.record.tenant, self.id))
        return self.record

    # -- changing the session -------------------------------------------------

    async def update(self, **changes: Any) -> SessionRecord:
        """Change and store fields of the record (``title``, ``system_prompt``, ``provider``,
        ``model``, ``tools``, ``user_id``, ``metadata``, ``provider_state``)."""
        if set(changes) - _UPDATABLE:
            wrong = ", ".join(sorted(set(changes) - _UPDATABLE))
            raise TypeError(f"cannot update {wrong}; updatable: {', '.join(sorted(_UPDATABLE))}")
        if "provider" in changes:
            self._manager._check_provider(changes["provider"])
        if "tools" in changes:
            changes["tools"] = self._manager.resolve_tools(changes["tools"])
        return await self._write(changes)

    async def _write(self, changes: Mapping[str, Any]) -> SessionRecord:
        """Store ``changes`` on the newest record, re-reading it when another writer got there first."""
        for _ in range(CONFLICT_RETRIES):
            try:
                staged = await self._manager._chain.session_stage(attrs.evolve(self.record, **changes))
                self._live.store(await self._storage.update_session(staged))
                return self.record
            except StorageConflict:
                await self.refresh()
        raise StorageConflict(f"session {self.id!r} kept changing; gave up after {CONFLICT_RETRIES} tries")

    async def archive(self) -> None:
        """Mark the session archived (it stays readable and listable by status)."""
        async with self._live.lock:
            await self._write({"status": SessionStatus.ARCHIVED})
        await self._manager.plugin_manager.notify(
            "threadline_session_archived", session=self.record, manager=self._manager
        )

    async def delete(self) -> None:
        """Delete the session and all its messages."""
        async with self._live.lock:
            await self._storage.delete_session(self.record.tenant, self.id)
        await self._manager.plugin_manager.notify(
            "threadline_session_deleted", session_id=self.id, user_id=self.record.user_id, manager=self._manager
        )

    async def fork(self, at_message: int | None = None) -> Session:
        """A new session with a copy of this one's history up to and including message
        ``at_message`` (a ``seq``; ``None``: all of it)."""
        history = await self._storage.get_messages(self.record.tenant, self.id)
        if at_message is not None:
            history = [m for m in history if m.seq <= at_message]
        source = self.record
        record = attrs.evolve(
            source,
            id=new_id(),
            status=SessionStatus.ACTIVE,
            metadata={**source.metadata, "forked_from": source.id},
            provider_state={},
        )
        stored = await self._storage.create_session(await self._manager._chain.session_stage(record))
        fork = await self._manager._adopt(stored)
        copies = [attrs.evolve(m, id=new_id(), session_id=stored.id) for m in history]
        if copies:
            await fork._append(copies)
        return fork

    # -- editing the history ----------------------------------------------------
    # Nothing is deleted: what an edit replaces is kept (revisions()), and every edit
    # fires threadline_history_edited. Edits wait for a turn in progress.

    async def add(self, messages: Iterable[Message | tuple[Role | str, str | Part | Sequence[Part]]]) -> list[Message]:
        """Store messages after the last one without calling a model: a conversation brought
        from elsewhere, a note, a few-shot example. Each is a ``(role, content)`` pair, such
        as ``("system", "Answer in French.")``, or a :class:`~threadline.Message` (its id,
        time, usage and metadata are kept; its ``session_id`` and ``seq`` are this
        session's). Each passes the middleware's message stage and fires
        ``threadline_message_appended``, as a turn's do. Returns them as stored.

        :raises SessionArchived: the session is archived.
        """
        given = [self._as_message(item) for item in messages]
        async with self._live.lock, turn_lease(self):
            self._refuse_if_archived()
            first = self._next_seq
            staged = [await self._staged(attrs.evolve(m, seq=first + i)) for i, m in enumerate(given)]
            return await self._append(staged) if staged else []

    def _as_message(self, item: Message | tuple[Role | str, str | Part | Sequence[Part]]) -> Message:
        if isinstance(item, Message):
            return attrs.evolve(item, session_id=self.id)
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"add() takes Messages or (role, content) pairs, not {item!r}")
        role, content = item
        return Message(self.id, 0, Role(role), as_parts(content))

    async def undo(self) -> list[Message]:
        """Take back the last turn: the last user message and everything after it (the
        reply, tool calls and results). Returns what was taken back; it stays in
        :meth:`revisions`. The next message follows what is left.

        :raises HistoryError: the session has no user message.
        """
        return list(made(await edit_history(self, undo_plan)).replaced)

    async def edit(self, seq: int, content: str | Part | Sequence[Part]) -> Message:
        """Replace the content of message ``seq`` (of any role but a tool call's or result's);
        the next turn's model sees the new one. The old message stays in :meth:`revisions`.
        The new one passes the message stage and gets an id of its own. Returns it.

        :raises HistoryError: there is no message ``seq``, or it is part of a tool call.
        """
        await edit_history(self, edit_plan(self, seq, content))
        return (await self._current_history())[seq - 1]

    async def remove(self, seq: int) -> Message:
        """Remove message ``seq`` (not part of a tool call); the ones after it move one place
        earlier. Returns the removed message; it stays in :meth:`revisions`.

        :raises HistoryError: there is no message ``seq``, or it is part of a tool call.
        """
        return made(await edit_history(self, remove_plan(seq))).replaced[0]

    async def clear(self) -> list[Message]:
        """Remove every message; they stay in :meth:`revisions`. Returns them (an empty
        history stays as it is: ``[]``, and no revision)."""
        revision = await edit_history(self, clear_plan)
        return list(revision.replaced) if revision is not None else []

    async def revisions(self) -> list[Revision]:
        """Every edit of the history, oldest first, each with the messages it replaced."""
        get_revisions = self._manager._storage_method("get_revisions", "keeps no revisions: it has no get_revisions")
        revisions: list[Revision] = await get_revisions(self.record.tenant, self.id)
        return revisions

    async def _current_history(self) -> list[Message]:
        """The history as stored now, for a caller that holds the session's turn and has read
        its record since it took it (a turn, an edit): another process's append or edit moved
        the count or the version, which made this process forget what it knew, and the
        history is read again; else what this process knows is it."""
        live = self._live
        if live.history is None:
            live.history = await self._storage.get_messages(live.stored.tenant, self.id)
        return live.history

    def _refuse_if_archived(self) -> None:
        """An archived session takes no new turn or edit: :class:`~threadline.SessionArchived`."""
        stored = self._live.stored
        if stored.status is SessionStatus.ARCHIVED:
            raise SessionArchived(stored.id, stored.tenant)

    # -- conversation ---------------------------------------------------------

    @overload
    async def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: None = None,
    ) -> Message: ...
    @overload
    async def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: type[T],
    ) -> T: ...
    @overload
    async def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: Mapping[str, Any] | Any,
    ) -> Any: ...

    async def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: Any = None,
    ) -> Any:
        """Send a user message and return the assistant's reply, stored.

        When the model calls tools, they run and the model is called again (up to
        ``[defaults] max_tool_steps`` times). A failure or a cancellation is recorded exactly
        as for :meth:`stream`.

        :param content: the message: a string, or parts; attachments are parts, such as
            ``[Text("What is in it?"), Image("image/png", data=png_bytes)]`` or a ``File``
            (a PDF by bytes or URL). A model that cannot take one is refused with
            ``BadRequest`` before any call.
        :param provider: a provider for this call only (``update(provider=...)`` changes the
            session's); the session's history goes along.
        :param model: a model for this call only.
        :param max_tokens: the longest reply, in tokens.
        :param temperature: sampling temperature, as the provider reads it.
        :param stop: sequences that end the reply.
        :param options: more request parameters, merged into the provider's request body as
            they are (``{"top_p": 0.9}``).
        :param output: ask for structured output, and return it instead of the message: an
            attrs class, a dataclass, a ``TypedDict``, a pydantic model, a type such as
            ``list[str]``, or a JSON schema as a dict (returned as the parsed JSON). The
            provider's own structured output is used where it has one, else the schema goes
            in the system prompt. A reply that does not match goes back to the model with
            what was wrong, up to ``[defaults] output_retries`` times. Every reply is stored
            as text, as any reply is. See :doc:`/structured-output`.
        :raises SessionArchived: the session is archived.
        :raises ProviderError: the provider failed (a subclass says how); the user message
            stays stored, marked ``failed``.
        :raises ToolError: the model was still calling tools after ``max_tool_steps``.
        :raises OutputError: no reply matched ``output``.
        :raises TypeError: ``output`` is not a type a JSON schema can describe.
        :raises ValueError: ``output`` is a dict that is not a JSON schema (checked when
            ``jsonschema`` is installed).
        """
        call_options = CallOptions(temperature, max_tokens, tuple(stop), options or {})
        if output is None:
            return await self._reply(plan_turn(self, content, provider, model, call_options, streaming=False))
        shape = shape_of(output)
        turn = plan_turn(self, content, provider, model, call_options, streaming=False, output=shape.schema)
        return await self._reply_as(turn, shape)

    async def _reply_as(self, turn: Turn, shape: Shape) -> Any:
        """Run ``turn``, and turns that tell the model what was wrong, until a reply reads as
        ``shape``."""
        retries = self._manager.config.defaults.output_retries
        for attempt in range(retries + 1):
            reply = await self._reply(turn)
            try:
                return shape.read(reply.text)
            except Mismatch as mismatch:
                problems = mismatch.problems
            if attempt < retries:
                turn = plan_turn(
                    self,
                    correction(problems),
                    turn.provider,
                    turn.model,
                    turn.options,
                    streaming=False,
                    output=turn.output,
                )
        tries = "1 try" if retries == 0 else f"{retries + 1} tries"
        raise OutputError(
            f"the reply did not match {shape.label} after {tries}: {'; '.join(problems)}",
            reply=reply,
            problems=problems,
        )

    async def _reply(self, turn: Turn) -> Message:
        """Run ``turn`` to its end; its stored reply."""
        reply = None
        async with aclosing(self._manager._chain.run_turn(turn, self._run_turn)) as events:
            async for event in events:  # to the end, so that every turn stage sees the turn end
                if isinstance(event, Done) and event.message is not None:
                    reply = event.message
        if reply is None:
            raise PluginError("a turn ended without a Done event that carries the stored reply; a turn stage lost it")
        return reply

    def stream(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Send a user message and yield the reply as it arrives: ``TextDelta`` and
        ``ToolCallDelta`` events, then one ``Done`` whose ``message`` is the stored reply.

        The arguments, and the errors, are those of :meth:`send`. Breaking off (or being
        cancelled) stores the reply as far as it got, marked incomplete.
        """
        call_options = CallOptions(temperature, max_tokens, tuple(stop), options or {})
        turn = plan_turn(self, content, provider, model, call_options, streaming=True)
        return self._manager._chain.run_turn(turn, self._run_turn)

    async def regenerate(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Message:
        """Answer the last user message again and return the new reply, stored. What followed
        that message (the old reply, tool calls and results) is replaced and kept in
        :meth:`revisions`; a message whose turn failed is answered, and no longer ``failed``.
        Another provider or model may answer (``regenerate(model="...")``).

        The arguments, and the errors, are those of :meth:`send`, and:

        :raises HistoryError: the session has no user message.
        """
        call_options = CallOptions(temperature, max_tokens, tuple(stop), options or {})
        return await self._reply(await self._plan_again(provider, model, call_options, streaming=False))

    async def regenerate_stream(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """:meth:`regenerate`, with the reply yielded as it arrives, as :meth:`stream` does."""
        call_options = CallOptions(temperature, max_tokens, tuple(stop), options or {})
        turn = await self._plan_again(provider, model, call_options, streaming=True)
        async with aclosing(self._manager._chain.run_turn(turn, self._run_turn)) as events:
            async for event in events:  # closed at once when the caller breaks off, as stream()'s
                yield event

    async def _plan_again(
        self, provider: str | None, model: str | None, options: CallOptions, *, streaming: bool
    ) -> Turn:
        self._refuse_if_archived()
        user = last_user(await self.history())  # read again once the turn is the session's
        return plan_turn(self, user.parts, provider, model, options, streaming=streaming, again=True)

    def _run_turn(self, turn: Turn) -> AsyncGenerator[Event, None]:
        return run_turn(self, turn)

    @property
    def _next_seq(self) -> int:
        return self._live.message_count + 1

    async def _append(self, messages: list[Message]) -> list[Message]:
        """Store ``messages`` and fire ``threadline_message_appended`` for each."""
        numbered = await self._store(messages)
        await self._announce(numbered)
        return numbered

    async def _store(self, messages: list[Message]) -> list[Message]:
        """Store ``messages`` after the session's last, renumbering and retrying when another
        writer got there first."""
        live = self._live
        for _ in range(CONFLICT_RETRIES):
            start = live.message_count + 1
            numbered = [m if m.seq == start + i else attrs.evolve(m, seq=start + i) for i, m in enumerate(messages)]
            try:
                await self._storage.append_messages(live.stored.tenant, self.id, numbered)
            except StorageConflict:
                await self.refresh()
            except asyncio.CancelledError:
                await asyncio.shield(self._settle(numbered))
                raise
            else:
                live.count(numbered)
                return numbered
        raise StorageConflict(f"session {self.id!r} kept moving on; gave up after {CONFLICT_RETRIES} tries")

    async def _settle(self, numbered: list[Message]) -> None:
        """After an append was cancelled (the storage has finished with it by then, committed
        or not): count it if it is stored, so the session never disagrees with the storage.
        What goes wrong here is logged: the caller raises the cancellation."""
        live = self._live
        try:
            first = numbered[0].seq
            stored = await self._storage.get_messages(live.stored.tenant, self.id, after_seq=first - 1, last=None)
            if [m.id for m in stored[: len(numbered)]] == [m.id for m in numbered]:
                live.count(numbered)
            else:
                await self.refresh()
        except Exception:
            live.history = None  # read again next turn
            log.exception("session %s: could not learn what a cancelled append stored", self.id)

    async def _staged(self, message: Message) -> Message:
        """``message`` as the middleware's message stage leaves it, ready to store."""
        chain = self._manager._chain
        return await chain.stage(message, self.record) if chain.stages else message

    async def _announce(self, stored: list[Message]) -> None:
        """Fire ``threadline_message_appended`` for each of ``stored``, in order."""
        manager = self._manager
        if manager.plugin_manager.implemented("threadline_message_appended"):
            for message in stored:
                await manager.plugin_manager.notify(
                    "threadline_message_appended", session=self._live.record, message=message, manager=manager
                )
