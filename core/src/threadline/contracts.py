"""What a provider and a storage must provide. ``threadline.testing`` checks each promise."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

import attrs
from attrs import frozen

from threadline.errors import BadCursor, DataFormatError, StorageConflict
from threadline.model import (
    Capabilities,
    DeletedCounts,
    Event,
    Message,
    Record,
    Request,
    Response,
    Revision,
    SessionPage,
    SessionQuery,
    SessionRecord,
    utcnow,
)

Row = TypeVar("Row")
log = logging.getLogger("threadline.storage")


@runtime_checkable
class Provider(Protocol):
    """A model API. Map SDK exceptions onto ``threadline.errors.ProviderError`` subclasses.

    Optional: ``async count_tokens(request) -> int | None``, the input tokens ``request``
    would take, counted by the API itself (``None``: it cannot count this one); middleware
    reaches it as ``Call.count_tokens``.

    Optional: ``async list_models() -> Sequence[str] | None``, the models the API offers
    this key, as the API lists them (``None``: it cannot list them); ``threadline models``
    shows them, else the config class's ``known_models``.

    ``Session.provider_state`` (a response's ``provider_state``) is for a conversation the
    API keeps: every edit of the history clears it, and a middleware that shortens what a
    call sends sends ``provider_state={}``.
    """

    def capabilities(self, model: str | None) -> Capabilities:
        """What ``model`` (``None``: the default model) supports."""

    async def complete(self, request: Request) -> Response:
        """One whole reply."""

    def stream(self, request: Request) -> AsyncIterator[Event]:
        """The reply as it arrives: ``TextDelta`` and ``ToolCallDelta`` events, then one ``Done``."""

    async def close(self) -> None:
        """Release connections. Called once when the manager closes."""


@runtime_checkable
class Storage(Protocol):
    """Where sessions and their messages live. ``threadline.testing.StorageContract`` checks
    these promises; docs/storage.md has them on one page, with what the suite leaves open.

    Tenants: a session is known by ``(tenant, id)``. The same id in two tenants is two
    sessions, and a method given one tenant never sees another's: its sessions are
    ``SessionNotFound``, and listings, counts and exports leave them out.

    Errors: an unknown session is ``SessionNotFound``; a write that loses (a stale
    ``version``, a ``seq`` that is not the next, an id that exists) is ``StorageConflict``
    and writes nothing. Records read back exactly as stored: every field, timestamps to the
    microsecond, nested ``metadata``, every kind of message part.

    Optional, found by name: ``async search_messages(query: SearchQuery) -> list[SearchHit]``,
    full-text search of the stored messages (:mod:`threadline.search`; docs/storage.md says
    what it keeps; ``StorageContract`` tests it unless the test class says ``searches =
    False``); ``events``, ``vacuum``, and ``replace_messages`` with ``get_revisions`` below."""

    async def open(self) -> None:
        """Connect, create or migrate the schema. Called once, before any other method."""

    async def close(self) -> None:
        """Write what is pending and release connections. Called once, when the manager closes."""

    async def create_session(self, session: SessionRecord) -> SessionRecord:
        """Store a new session; return it as stored: ``session`` with ``message_count`` 0,
        ``usage`` ``Usage()`` and ``version`` 1, whatever it says. An id that exists in the
        tenant is a ``StorageConflict`` saying ``session <id> exists already``, and the stored
        session stays as it was."""

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        """The session as last stored, or ``SessionNotFound``."""

    async def update_session(self, session: SessionRecord) -> SessionRecord:
        """Replace the stored session if its ``version`` still equals ``session.version``, else
        ``StorageConflict`` and nothing changes (optimistic locking). Return it as stored, as
        ``get_session`` then returns it: ``version + 1``, ``updated_at`` now (never earlier
        than before), ``created_at`` as it was. ``message_count`` and ``usage`` are the
        storage's: the values passed are ignored. An unknown session is ``SessionNotFound``."""

    async def delete_session(self, tenant: str, session_id: str) -> None:
        """Remove the session and all its messages, or ``SessionNotFound``. Other sessions
        keep theirs."""

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        """One page of the sessions of ``query.tenant`` that match ``query``: of ``user_id``
        and in ``status`` when given (``None``: any), with ``updated_at`` strictly after
        ``updated_after`` and strictly before ``updated_before`` when given. Most recently
        updated first, ties by id descending; at most ``query.limit`` of them.

        ``next_cursor`` is :func:`make_cursor` of the page's last session when more match,
        else ``None``. Passed back as ``query.cursor``, it lists only the sessions whose
        ``(updated_at, id)`` is below :func:`read_cursor` of it, so a session updated between
        two pages is not listed twice."""

    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        """Store ``messages`` after the session's last one, atomically: all or none. Their
        ``seq`` must be ``message_count + 1``, ``+ 2``, ... in order, and their ``session_id``
        ``session_id``, else ``StorageConflict`` (for seqs, saying ``got [the seqs given]``)
        and nothing is written: a gap, a repeat, or a seq another writer took first. Then the
        session's ``message_count`` grows by their number, its ``usage`` by the sum of theirs
        (``None`` adds nothing) and its ``updated_at`` is now; appending nothing changes
        nothing. An unknown session is ``SessionNotFound``.

        Cancelled while in flight, it lets the ``CancelledError`` out only once the write has
        committed or been given up for good: a write still under way in a thread or a server
        after that would change the session under a caller who was told nothing. (The
        kernel then reads the range back to learn which it was.)"""

    async def take_turn(self, tenant: str, session_id: str, holder: str, seconds: float) -> bool:
        """Take the session's turn lease for ``holder`` for ``seconds`` from now, or extend it
        when ``holder`` has it already; ``False`` while another holder's lease has not run out,
        or when it is free but another asker was refused first (it goes to them: first come,
        first served). The kernel holds it from a user message's append to its reply's, so
        that turns from several processes stay whole; a lease whose holder died runs out. It
        must be shared by every process using the same stored sessions (an in-process storage
        may keep it in memory). An unknown session is ``SessionNotFound``."""

    async def end_turn(self, tenant: str, session_id: str, holder: str) -> None:
        """Give the lease back if ``holder`` has it, keeping who waits for it; otherwise (it ran
        out and another holder took it, or the session is gone) do nothing.

        ``threadline.plugin.next_lease`` is the rule both follow, on a ``TurnLease``: a storage
        keeps that record per session and applies the rule atomically."""

    async def set_message_status(
        self, tenant: str, session_id: str, seq: int, status: str, error: str | None = None
    ) -> None:
        """Set the stored message ``seq``'s ``status`` (a ``MessageStatus`` value: the kernel
        marks a user message ``"failed"`` when its reply failed) and ``error``; the rest of it
        stays. An unknown session is ``SessionNotFound``; a ``seq`` it does not have, a
        ``StorageConflict``."""

    async def get_messages(
        self, tenant: str, session_id: str, *, after_seq: int = 0, last: int | None = None
    ) -> list[Message]:
        """The messages with ``seq > after_seq``, oldest first; only the newest ``last`` of them
        if given; ``[]`` if none. An unknown session is ``SessionNotFound``."""

    async def replace_messages(
        self, tenant: str, session_id: str, after_seq: int, messages: Sequence[Message], *, count: int
    ) -> Revision:
        """Edit the history: replace the session's messages after ``after_seq`` with
        ``messages``, all or nothing, keeping the replaced ones. Their ``seq`` must be
        ``after_seq + 1``, ``+ 2``, ... in order and their ``session_id`` ``session_id``; the
        session must still have ``count`` messages (no append came between the caller's read
        and this write) and ``0 <= after_seq <= count``: else ``StorageConflict`` and nothing
        changes. An unknown session is ``SessionNotFound``.

        The replaced messages, as stored, become a :class:`~threadline.Revision` numbered one
        more than the session's last (1 for its first), which ``get_revisions`` returns; this
        returns it. Then the session's ``message_count`` is ``after_seq + len(messages)``,
        ``updated_at`` now and ``version`` one higher (so that a process holding the session
        as it was learns of the edit, and an ``update_session`` from before it conflicts);
        ``usage`` stays as it was (it counts calls that were made). Deleting the session
        deletes its revisions. ``get_messages`` after it returns the new history, whatever a
        cache held.

        Optional: a storage without it cannot edit histories (``Session.undo``, ``edit``,
        ``remove``, ``clear``, ``regenerate`` then raise ``ConfigError``)."""

    async def get_revisions(self, tenant: str, session_id: str) -> list[Revision]:
        """The session's revisions (see ``replace_messages``), oldest first; ``[]`` if its
        history was never edited. An unknown session is ``SessionNotFound``. Optional, with
        ``replace_messages``."""

    async def delete_user(self, tenant: str, user_id: str) -> DeletedCounts:
        """Remove every session of ``user_id`` in ``tenant`` and their messages in one go; say
        how many of each (none: ``DeletedCounts(0, 0)``)."""

    def export_records(self, tenant: str | None = None) -> AsyncIterator[Record]:
        """Every session of ``tenant`` (``None``: of all tenants), each followed by its messages
        in ``seq`` order and then its revisions in ``number`` order (a storage that keeps
        none has none), streamed: what ``import_records`` reads. Each session comes whole, as
        it was when the export began, though it be changed or deleted while the export goes on."""

    async def import_records(self, records: AsyncIterable[Record]) -> int:
        """Store what ``export_records`` gave, all or nothing; return how many records it read.
        Each session reads back as it was exported (``version`` and ``updated_at`` included)
        with its messages and revisions; its ``usage`` is its messages' summed, or, when it
        brings revisions (edits dropped replies whose tokens were spent), as exported. A
        session whose id exists in its tenant is a ``StorageConflict``; a message or
        revision that does not follow its session, a message whose ``seq`` does not run 1,
        2, 3, ..., or a revision whose ``number`` does not, a ``DataFormatError``: either way
        nothing is imported.
        :func:`~threadline.plugin.check_revision_follows` checks a revision's place."""


WAITER_SECONDS = 1.0
"""Seconds a refused asker of ``take_turn`` stays first in line: it keeps its place by asking
again within them (``next_lease`` applies it; a storage that applies the rule itself uses it)."""


@frozen
class TurnLease:
    """A session's turn lease as a storage keeps it: who holds it and until when (``holder``
    ``None``: nobody), and who asked for it while it was held, so that it goes to them next
    (a process with many turns queued would otherwise take it back at once, every time).
    Times are seconds, by one clock every process shares (the database's)."""

    holder: str | None = None
    until: float = 0.0
    waiter: str | None = None
    waiter_until: float = 0.0


def next_lease(lease: TurnLease | None, holder: str, now: float, seconds: float) -> tuple[bool, TurnLease]:
    """The rule of ``Storage.take_turn``, for a storage to apply: whether ``holder`` gets the
    lease, and the lease to store either way. Its holder extends it; it is free when nobody
    holds it or it ran out; a free lease goes to the one waiting for it first, and a refused
    asker who finds nobody waiting becomes the waiter."""
    lease = lease or TurnLease()
    if lease.holder == holder and lease.until > now:
        return True, attrs.evolve(lease, until=now + seconds)
    other_waiting = lease.waiter not in (None, holder) and lease.waiter_until > now
    if (lease.holder is None or lease.until <= now) and not other_waiting:
        return True, TurnLease(holder, now + seconds)
    if other_waiting:
        return False, lease
    return False, attrs.evolve(lease, waiter=holder, waiter_until=now + WAITER_SECONDS)


def next_version(current: SessionRecord, session: SessionRecord) -> SessionRecord:
    """The rule of ``Storage.update_session``, for a storage to apply: ``session`` as it is
    to be stored over ``current``, the stored record. Refused (:class:`StorageConflict`)
    unless ``session`` is at ``current``'s version; one version higher, ``updated_at`` now
    (never earlier than before), and ``created_at``, ``message_count`` and ``usage`` as
    stored, whatever ``session`` says."""
    if current.version != session.version:
        raise StorageConflict(f"session {session.id!r} is at version {current.version}, not {session.version}")
    return attrs.evolve(
        session,
        version=current.version + 1,
        updated_at=max(utcnow(), current.updated_at),
        created_at=current.created_at,
        message_count=current.message_count,
        usage=current.usage,
    )


def check_replacement(
    session_id: str, message_count: int, after_seq: int, messages: Sequence[Message], count: int
) -> None:
    """The checks of ``Storage.replace_messages``, for a storage to make inside the
    transaction that replaces (``message_count``: the session's, as stored): a
    ``StorageConflict`` that says what was wrong, else nothing."""
    if message_count != count:
        raise StorageConflict(
            f"session {session_id!r} has {message_count} messages, not {count}: it changed since it was read"
        )
    if not 0 <= after_seq <= count:
        raise StorageConflict(f"session {session_id!r} has no message {after_seq} to replace after (it has {count})")
    if stray := next((m for m in messages if m.session_id != session_id), None):
        raise StorageConflict(f"message {stray.id!r} belongs to session {stray.session_id!r}, not {session_id!r}")
    expected = list(range(after_seq + 1, after_seq + 1 + len(messages)))
    if [m.seq for m in messages] != expected:
        raise StorageConflict(f"replacing after {after_seq}, seqs must be {expected}, got {[m.seq for m in messages]}")


def check_revision_follows(revision: Revision, session: SessionRecord | None, revisions: int) -> None:
    """A ``DataFormatError`` unless ``revision``, read by ``Storage.import_records``, follows
    ``session`` (the last session record read, ``None`` for none) and the ``revisions`` of its
    revisions read before it."""
    if session is None or revision.session_id != session.id:
        raise DataFormatError(
            f"revision {revision.number} of session {revision.session_id!r} does not follow its session"
        )
    if revision.number != revisions + 1:
        raise DataFormatError(
            f"revision {revision.number} of session {revision.session_id!r} is not numbered {revisions + 1}: "
            "revisions must run 1, 2, 3, ..."
        )


def listed_sessions(rows: Iterable[Row], read: Callable[[Row], SessionRecord]) -> tuple[SessionRecord, ...]:
    """The sessions of a listing's ``rows``, each read with ``read``: one that cannot be read
    (:class:`DataFormatError`) is left out, and logged, rather than failing the listing."""
    sessions = []
    for row in rows:
        try:
            sessions.append(read(row))
        except DataFormatError as exc:
            log.warning("%s; left out of the listing", exc)
    return tuple(sessions)


def make_cursor(session: SessionRecord) -> str:
    """The cursor that continues a listing after ``session`` (every storage uses this form)."""
    raw = json.dumps([session.updated_at.isoformat(), session.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def read_cursor(cursor: str) -> tuple[datetime, str]:
    """``(updated_at, id)`` of the last session of the previous page; ``BadCursor`` when
    ``cursor`` is not one :func:`make_cursor` made."""
    try:
        updated_at, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        moment = datetime.fromisoformat(updated_at)
    except (ValueError, TypeError) as exc:
        raise BadCursor(cursor) from exc
    if moment.tzinfo is None or not isinstance(session_id, str):
        raise BadCursor(cursor)
    return moment, session_id
