"""Edits of a session's history: ``Session.undo``, ``edit``, ``remove``, ``clear``, and the
first step of ``regenerate``.

Nothing is deleted. An edit replaces the messages after one ``seq`` with new ones
(``Storage.replace_messages``); what it replaced is kept as a :class:`~threadline.Revision`
(``Session.revisions``), and ``threadline_history_edited`` says what changed. The session's
``provider_state`` (a conversation the provider keeps, such as OpenAI's stored responses)
is forgotten first: it holds the history as it was, so the next call sends the history
whole. Forgotten before, not after, so that a process that dies in between has lost only
that shortcut. Edits wait for
a turn in progress, as turns do for each other, in this process and in others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from threadline.errors import HistoryError, StorageConflict
from threadline.model import Message, Part, Revision, Role, as_parts, new_id, utcnow
from threadline.turn_lease import turn_lease

if TYPE_CHECKING:
    from collections.abc import Sequence

    from threadline.session import Session

CONFLICT_RETRIES = 5  # tries at a write that another writer may get to first
log = logging.getLogger("threadline.session")

Plan = Callable[[list[Message]], Awaitable[tuple[int, list[Message]]]]
"""Given the history as stored now: keep the messages up to which ``seq``, and what follows
them. Keeping them all, with nothing after, changes nothing: no write, no revision."""


async def edit_history(session: Session, plan: Plan) -> Revision | None:
    """Apply ``plan`` to the history, in the session's turn (after any turn in progress)."""
    async with session._live.lock, turn_lease(session):
        await session.refresh()  # another process may have appended, edited or archived
        session._refuse_if_archived()
        return await replace_after(session, plan)


async def replace_after(session: Session, plan: Plan) -> Revision | None:
    """Store what ``plan`` makes of the history as it is now: planned again on the history as
    stored when another process changed it first. The caller holds the session's turn."""
    replace = session._manager._storage_method("replace_messages", "cannot edit a history: it has no replace_messages")
    for _ in range(CONFLICT_RETRIES):
        history = await session._current_history()
        after_seq, messages = await plan(history)
        if after_seq == len(history) and not messages:
            return None
        if session._live.stored.provider_state:
            await session._write({"provider_state": {}})
        try:
            revision: Revision = await replace(
                session.record.tenant, session.id, after_seq, messages, count=len(history)
            )
        except StorageConflict:
            await session.refresh()
            continue
        except asyncio.CancelledError:  # the storage has finished with it by now: stored or not?
            await asyncio.shield(_settle(session, history, after_seq, messages))
            raise
        await _edited(session, revision, history[:after_seq], messages)
        return revision
    raise StorageConflict(f"session {session.id!r} kept changing; gave up editing it after {CONFLICT_RETRIES} tries")


def made(revision: Revision | None) -> Revision:
    """The revision of an edit whose plan always changes the history (it raised otherwise)."""
    assert revision is not None
    return revision


async def _edited(session: Session, revision: Revision, kept: list[Message], added: list[Message]) -> None:
    """The session as the edit left it, and the hook told."""
    live, manager = session._live, session._manager
    live.store(await session._storage.get_session(session.record.tenant, session.id))
    live.history = [*kept, *added]
    await manager.plugin_manager.notify(
        "threadline_history_edited", session=live.record, revision=revision, added=tuple(added), manager=manager
    )


async def _settle(session: Session, history: list[Message], after_seq: int, added: list[Message]) -> None:
    """After an edit was cancelled: if it was stored (the session's last revision is it),
    as :func:`_edited`; if not, the session read again. What goes wrong here is logged: the
    caller raises the cancellation."""
    try:
        revisions = await session.revisions()
        last = revisions[-1] if revisions else None
        replaced = [m.id for m in history[after_seq:]]
        if last and (last.after_seq, last.added, [m.id for m in last.replaced]) == (after_seq, len(added), replaced):
            await _edited(session, last, history[:after_seq], added)
        else:
            await session.refresh()
    except Exception:
        session._live.history = None  # read again next time
        log.exception("session %s: could not learn what a cancelled edit stored", session.id)


async def undo_plan(history: list[Message]) -> tuple[int, list[Message]]:
    """The last turn gone: the last user message and everything after it."""
    return last_user(history).seq - 1, []


def last_user(history: list[Message]) -> Message:
    """The last user message, or a ``HistoryError`` when there is none."""
    for message in reversed(history):
        if message.role is Role.USER:
            return message
    raise HistoryError("the session has no user message: there is no turn to undo or answer again")


def edit_plan(session: Session, seq: int, content: str | Part | Sequence[Part]) -> Plan:
    """Message ``seq`` with new parts (a new id, the same role), the rest as it was."""
    _check_seq(seq)
    parts = as_parts(content)
    if not parts:
        raise HistoryError("an edit needs the new content: a string, or one or more parts")

    async def plan(history: list[Message]) -> tuple[int, list[Message]]:
        old = _editable(history, seq, "edit")
        new = Message(session.id, seq, old.role, parts, id=new_id(), created_at=utcnow(), metadata=old.metadata)
        return seq - 1, [await session._staged(new), *history[seq:]]

    return plan


def remove_plan(seq: int) -> Plan:
    """Message ``seq`` gone, the ones after it one place earlier."""
    _check_seq(seq)

    async def plan(history: list[Message]) -> tuple[int, list[Message]]:
        _editable(history, seq, "remove")
        return seq - 1, [attrs.evolve(m, seq=m.seq - 1) for m in history[seq:]]

    return plan


def range_plan(session: Session, first: Message, last: Message, messages: Sequence[Message]) -> Plan:
    """The stored messages ``first`` to ``last`` replaced by ``messages`` (staged), the ones
    after renumbered to follow them."""
    new = list(messages)

    async def plan(history: list[Message]) -> tuple[int, list[Message]]:
        start, end = _stored_seq(history, first), _stored_seq(history, last)
        if end < start:
            raise HistoryError(f"message {first.seq} comes after message {last.seq}: give the range first to last")
        answered = last_user(history).seq
        if end >= answered:
            raise HistoryError(
                f"messages {start} to {end} reach message {answered}, the one the turn answers: "
                "replace only messages before it"
            )
        _check_new_ids(new, history[: start - 1] + history[end:])
        staged = [
            await session._staged(attrs.evolve(m, session_id=session.id, seq=start + i)) for i, m in enumerate(new)
        ]
        after = start + len(staged)
        return start - 1, [*staged, *(attrs.evolve(m, seq=after + i) for i, m in enumerate(history[end:]))]

    return plan


def _check_new_ids(new: list[Message], kept: list[Message]) -> None:
    """New messages each have an id of their own, which no message kept has."""
    ids = [m.id for m in new]
    shared = {i for i in ids if ids.count(i) > 1} | (set(ids) & {m.id for m in kept})
    if shared:
        raise HistoryError(
            f"the messages to store share an id with each other or with the history ({', '.join(sorted(shared))}): "
            "give each new message an id of its own (Message's default)"
        )


def _stored_seq(history: list[Message], message: Message) -> int:
    """The ``seq`` ``message`` (by id) has in ``history`` now."""
    if 1 <= message.seq <= len(history) and history[message.seq - 1].id == message.id:
        return message.seq
    for stored in history:
        if stored.id == message.id:
            return stored.seq
    raise HistoryError(f"message {message.id!r} (seq {message.seq}) is not in the session's history any more")


async def clear_plan(history: list[Message]) -> tuple[int, list[Message]]:
    return 0, []


def _check_seq(seq: object) -> None:
    if type(seq) is not int:
        raise TypeError(f"seq must be a message's number, a whole number (int); got {seq!r}")


def _editable(history: list[Message], seq: int, verb: str) -> Message:
    """Message ``seq``, which may be edited or removed alone: not part of a tool call."""
    if not 1 <= seq <= len(history):
        raise HistoryError(f"the session has no message {seq} to {verb}; its messages are 1 to {len(history)}")
    message = history[seq - 1]
    if message.role is Role.TOOL or message.tool_calls:
        raise HistoryError(
            f"message {seq} is part of a tool call and its result, which go together: "
            "undo the turn instead (Session.undo)"
        )
    return message
