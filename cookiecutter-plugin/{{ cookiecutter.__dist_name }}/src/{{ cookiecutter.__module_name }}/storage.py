{%- set cls = cookiecutter.__class_name -%}
"""``{{ cls }}Storage``: sessions and their messages in dictionaries, kept in a JSON-lines file.

It is every method of the ``threadline.plugin.Storage`` contract, each done the simplest honest
way, each with a docstring saying what it must keep. To put a real database behind the
plugin, replace the methods one at a time and keep ``tests/test_contract.py`` (the kernel's
``StorageContract``) passing. threadline's documentation has the whole contract on its
storage page (``docs/storage.md``), with what the suite checks and what it leaves to you.

The file is read when the storage opens and written, whole, when it closes (through a
temporary file, so a crash while writing leaves the old file whole). So a crash loses what
changed since it opened, and two processes on one file overwrite each other's changes. A real
backend writes each change durably as it happens, and makes each method atomic with its
transactions; here no method awaits between reading and writing the dictionaries, so each
one is atomic on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path

import attrs
from threadline.plugin import (
    DataFormatError,
    DeletedCounts,
    Message,
    Revision,
    SessionNotFound,
    SessionPage,
    SessionQuery,
    SessionRecord,
    StorageConflict,
    TurnLease,
    Usage,
    check_replacement,
    check_revision_follows,
    dump_record,
    load_record,
    make_cursor,
    next_lease,
    next_version,
    read_cursor,
    utcnow,
)

from {{ cookiecutter.__module_name }} import {{ cls }}Config

#: a session's key: its id is unique within its tenant only
Key = tuple[str, str]
Record = SessionRecord | Message | Revision


class {{ cls }}Storage:
    """The ``{{ cookiecutter.plugin_name }}`` storage backend."""

    def __init__(self, config: {{ cls }}Config | None = None) -> None:
        self.config = config or {{ cls }}Config()
        self._sessions: dict[Key, SessionRecord] = {}
        self._messages: dict[Key, list[Message]] = {}  # in seq order: seq n at index n - 1
        self._leases: dict[Key, TurnLease] = {}  # a session's turn lease
        self._revisions: dict[Key, list[Revision]] = {}  # the edits of its history, in order

    def _get(self, tenant: str, session_id: str) -> SessionRecord:
        try:
            return self._sessions[tenant, session_id]
        except KeyError:
            raise SessionNotFound(session_id, tenant) from None

    # -- opening and closing -------------------------------------------------

    async def open(self) -> None:
        """Connect, create or migrate the schema. Called once, before any other method.

        Here: read the file, if there is one.
        """
        path = self.config.path
        if path.exists():
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
            await self.import_records(_records(path, text))

    async def close(self) -> None:
        """Write what is pending and release connections. Called once, when the manager closes.

        Here: write every session, each followed by its messages and revisions, to the file.
        """
        lines = [dump_record(record) async for record in self.export_records()]
        await asyncio.to_thread(_write, self.config.path, lines)

    # -- sessions --------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> SessionRecord:
        """Store a new session; return it as stored.

        - Every field reads back equal from ``get_session``: any text, ``tools``, nested
          ``metadata`` and ``provider_state``, the timestamps to the microsecond.
        - ``message_count`` is 0 and ``usage`` is ``Usage()``, whatever ``session`` says.
        - An id that exists in the session's tenant: ``StorageConflict``, and the stored
          session is unchanged. The same id in another tenant is another session.
        """
        key = (session.tenant, session.id)
        if key in self._sessions:
            raise StorageConflict(f"session {session.id!r} exists already in tenant {session.tenant!r}")
        stored = attrs.evolve(session, message_count=0, usage=Usage(), version=1)
        self._sessions[key] = stored
        self._messages[key] = []
        return stored

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        """The session as last stored, or ``SessionNotFound`` (also for another tenant's)."""
        return self._get(tenant, session_id)

    async def update_session(self, session: SessionRecord) -> SessionRecord:
        """Replace the stored session with ``session`` if no one has changed it since it was read.

        - ``session.version`` must equal the stored ``version``, else ``StorageConflict`` and
          nothing changes (optimistic locking: the caller reads it again and retries).
        - Return it as stored, which ``get_session`` then returns: ``version`` one higher,
          ``updated_at`` now (never earlier than before), and ``created_at``,
          ``message_count`` and ``usage`` as stored: those are the storage's, whatever
          ``session`` says.
        - An unknown session (or another tenant's): ``SessionNotFound``.
        """
        stored = next_version(self._get(session.tenant, session.id), session)
        self._sessions[session.tenant, session.id] = stored
        return stored

    async def delete_session(self, tenant: str, session_id: str) -> None:
        """Remove the session and all its messages; other sessions are untouched.
        An unknown session (or another tenant's): ``SessionNotFound``."""
        self._get(tenant, session_id)
        del self._sessions[tenant, session_id]
        del self._messages[tenant, session_id]
        self._revisions.pop((tenant, session_id), None)

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        """One page of the sessions that match ``query``.

        - Only ``query.tenant``'s; where given, only ``user_id``'s, only those in ``status``
          (``None``: any), only those with ``updated_at`` after ``updated_after`` and before
          ``updated_before`` (both bounds exclusive, as in the kernel's storages).
        - Most recently updated first: ``updated_at`` descending, ties by ``id`` descending.
        - At most ``query.limit``; ``next_cursor`` is ``make_cursor(the page's last session)``
          when more match, else ``None``.
        - With ``query.cursor``, only the sessions after the one it was made from, in that
          order: ``(updated_at, id) < read_cursor(cursor)``. So a session updated between two
          pages (it moves to the top) is not listed twice.
        """
        after = read_cursor(query.cursor) if query.cursor else None
        matches = sorted(
            (
                s
                for s in self._sessions.values()
                if s.tenant == query.tenant
                and (query.user_id is None or s.user_id == query.user_id)
                and (query.status is None or s.status == query.status)
                and (query.updated_after is None or s.updated_at > query.updated_after)
                and (query.updated_before is None or s.updated_at < query.updated_before)
                and (after is None or (s.updated_at, s.id) < after)
            ),
            key=lambda s: (s.updated_at, s.id),
            reverse=True,
        )
        page = matches[: query.limit]
        return SessionPage(tuple(page), make_cursor(page[-1]) if len(matches) > query.limit else None)

    # -- messages --------------------------------------------------------------

    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        """Store ``messages`` after the session's last one: all of them or none.

        - Each message's ``session_id`` must be ``session_id``, else ``StorageConflict``
          saying whose it is.
        - Their ``seq`` must run on from the session's ``message_count`` without a gap
          (``message_count + 1``, ``+ 2``, ...), else ``StorageConflict`` saying "got [the
          seqs given]", and nothing is written: a gap, a repeat, a seq already stored. This is how the second of two
          writers to one session finds out.
        - Then the session's ``message_count`` grows by their number, its ``usage`` by the
          sum of theirs (a message without usage adds nothing) and ``updated_at`` is now.
        - Every field of every message reads back equal from ``get_messages``: each part type,
          bytes, ``provider_data``, ``usage`` with ``cost``, ``status``, ``error``, ``metadata``.
        - An unknown session (or another tenant's): ``SessionNotFound``.
        - Appends to many sessions at once all land.
        """
        session = self._get(tenant, session_id)
        if not messages:  # appending nothing changes nothing, updated_at included
            return
        if stray := next((m for m in messages if m.session_id != session_id), None):
            raise StorageConflict(f"message {stray.id!r} belongs to session {stray.session_id!r}, not {session_id!r}")
        expected = list(range(session.message_count + 1, session.message_count + 1 + len(messages)))
        if [m.seq for m in messages] != expected:
            raise StorageConflict(
                f"session {session_id!r} has {session.message_count} messages: the seqs appended must be "
                f"{expected}, got {[m.seq for m in messages]}"
            )
        self._messages[tenant, session_id].extend(messages)
        self._sessions[tenant, session_id] = attrs.evolve(
            session,
            message_count=session.message_count + len(messages),
            usage=sum((m.usage for m in messages if m.usage is not None), session.usage),
            updated_at=max(utcnow(), session.updated_at),
        )

    async def take_turn(self, tenant: str, session_id: str, holder: str, seconds: float) -> bool:
        """Take the session's turn lease for ``holder`` for ``seconds`` from now, or extend it
        when ``holder`` has it already; ``False`` while another holder's lease has not run out
        or another asker waits for it first. ``next_lease`` is the rule: keep its
        ``TurnLease`` per session and apply it atomically. Every process using the same stored
        sessions must see the same lease (here one process owns the file, so memory will do;
        a database keeps it in a row, its times by the database's clock). An unknown session:
        ``SessionNotFound``."""
        self._get(tenant, session_id)
        taken, self._leases[tenant, session_id] = next_lease(
            self._leases.get((tenant, session_id)), holder, time.monotonic(), seconds
        )
        return taken

    async def end_turn(self, tenant: str, session_id: str, holder: str) -> None:
        """Give the lease back if ``holder`` has it, keeping who waits; else do nothing."""
        lease = self._leases.get((tenant, session_id))
        if lease is not None and lease.holder == holder:
            self._leases[tenant, session_id] = attrs.evolve(lease, holder=None)  # free, whatever until says

    async def set_message_status(
        self, tenant: str, session_id: str, seq: int, status: str, error: str | None = None
    ) -> None:
        """Set the stored message ``seq``'s ``status`` (a ``MessageStatus`` value: ``"failed"``
        when the reply to a user's message failed) and ``error``; the rest of it stays.
        An unknown session: ``SessionNotFound``; no message ``seq`` in it: ``StorageConflict``."""
        self._get(tenant, session_id)
        messages = self._messages[tenant, session_id]
        if not 1 <= seq <= len(messages):
            raise StorageConflict(f"session {session_id!r} has no message {seq}")
        messages[seq - 1] = attrs.evolve(messages[seq - 1], status=status, error=error)

    async def get_messages(
        self, tenant: str, session_id: str, *, after_seq: int = 0, last: int | None = None
    ) -> list[Message]:
        """The session's messages with ``seq > after_seq``, oldest first; with ``last``, only
        the newest ``last`` of those. None: ``[]``. An unknown session: ``SessionNotFound``."""
        self._get(tenant, session_id)
        messages = self._messages[tenant, session_id][max(after_seq, 0) :]  # seq > -2 is every one
        return messages[max(len(messages) - last, 0) :] if last is not None else messages

    # -- editing the history (optional: without these, Session.undo, edit, ... refuse) --

    async def replace_messages(
        self, tenant: str, session_id: str, after_seq: int, messages: Sequence[Message], *, count: int
    ) -> Revision:
        """Replace the session's messages after ``after_seq`` with ``messages``, keeping the
        replaced ones: all or nothing.

        - ``check_replacement`` refuses (``StorageConflict``) seqs that do not run on from
          ``after_seq``, a message of another session, an ``after_seq`` out of range, and a
          session that no longer has ``count`` messages (another writer came first). Make it
          in the same transaction as the write, with the count as stored.
        - The replaced messages, exactly as stored, become a ``Revision`` numbered one more
          than the session's last; return it.
        - Then ``message_count`` is ``after_seq + len(messages)``, ``updated_at`` now and
          ``version`` one higher; ``usage`` stays. A cache of histories must not serve the
          old ones.
        - An unknown session: ``SessionNotFound``.
        """
        session = self._get(tenant, session_id)
        check_replacement(session_id, session.message_count, after_seq, messages, count)
        kept = self._revisions.setdefault((tenant, session_id), [])
        stored = self._messages[tenant, session_id]
        revision = Revision(session_id, len(kept) + 1, after_seq, tuple(stored[after_seq:]), len(messages))
        kept.append(revision)
        stored[after_seq:] = messages
        self._sessions[tenant, session_id] = attrs.evolve(
            session, message_count=len(stored), updated_at=max(utcnow(), session.updated_at), version=session.version + 1
        )
        return revision

    async def get_revisions(self, tenant: str, session_id: str) -> list[Revision]:
        """The session's revisions, oldest first; ``[]`` if it was never edited. An unknown
        session: ``SessionNotFound``."""
        self._get(tenant, session_id)
        return list(self._revisions.get((tenant, session_id), ()))

    # -- users, export and import ---------------------------------------------

    async def delete_user(self, tenant: str, user_id: str) -> DeletedCounts:
        """Remove every session of ``user_id`` in ``tenant``, with their messages, in one go;
        say how many of each. The same user id in another tenant is untouched."""
        keys = [key for key, s in self._sessions.items() if key[0] == tenant and s.user_id == user_id]
        messages = sum(len(self._messages[key]) for key in keys)
        for key in keys:
            del self._sessions[key]
            del self._messages[key]
            self._revisions.pop(key, None)
        return DeletedCounts(sessions=len(keys), messages=messages)

    async def export_records(self, tenant: str | None = None) -> AsyncIterator[Record]:
        """Every session of ``tenant`` (``None``: of all tenants), each followed by its
        messages in seq order and its revisions in number order, as a stream: what
        ``import_records`` reads."""
        snapshot = [  # as it is now: what changes while the export goes on is not in it
            (session, list(self._messages[key]), list(self._revisions.get(key, ())))
            for key, session in self._sessions.items()
            if tenant is None or key[0] == tenant
        ]
        for session, messages, revisions in snapshot:
            yield session
            for message in messages:
                yield message
            for revision in revisions:
                yield revision

    async def import_records(self, records: AsyncIterable[Record]) -> int:
        """Store what an ``export_records`` gave (this storage's or another's), all or nothing;
        return how many records there were.

        - Each session reads back from ``get_session`` as it was exported (``version`` and
          ``updated_at`` included), with its messages.
        - A session whose id exists in its tenant: ``StorageConflict``, and nothing is imported.
        - A message that does not follow its session, or whose seq does not run 1, 2, 3, ...,
          and a revision that does not follow its session's messages or is not numbered 1,
          2, 3, ... (``check_revision_follows``): ``DataFormatError``, and nothing is imported.
        - ``message_count`` and ``usage`` are counted from the messages imported; a session
          that brings revisions keeps its ``usage`` as exported.
        """
        sessions: dict[Key, SessionRecord] = {}
        messages: dict[Key, list[Message]] = {}
        revisions: dict[Key, list[Revision]] = {}
        current: Key | None = None
        count = 0
        async for record in records:
            count += 1
            if isinstance(record, SessionRecord):
                current = (record.tenant, record.id)
                if current in self._sessions or current in sessions:
                    raise StorageConflict(f"session {record.id!r} exists already; nothing was imported")
                sessions[current], messages[current], revisions[current] = record, [], []
            elif isinstance(record, Revision):
                kept = revisions[current] if current is not None else []
                check_revision_follows(record, sessions[current] if current is not None else None, len(kept))
                kept.append(record)
            elif current is None or record.session_id != current[1]:
                raise DataFormatError(f"message {record.id!r} does not follow its session {record.session_id!r}")
            elif record.seq != len(messages[current]) + 1:
                raise DataFormatError(f"message {record.id!r} has seq {record.seq}; seqs must run 1, 2, 3, ...")
            else:
                messages[current].append(record)
        clash = next(iter(sessions.keys() & self._sessions.keys()), None)
        if clash:  # created while the records were read
            raise StorageConflict(f"session {clash[1]!r} was created while importing; nothing was imported")
        for key, session in sessions.items():
            spent = sum((m.usage for m in messages[key] if m.usage is not None), Usage())
            usage = session.usage if revisions[key] else spent  # edits dropped replies whose tokens were spent
            self._sessions[key] = attrs.evolve(session, message_count=len(messages[key]), usage=usage)
            self._messages[key] = messages[key]
            self._revisions[key] = revisions[key]
        return count


# -- the file: one record a line, as ``threadline sessions export`` writes them -------


def _write(path: Path, lines: list[str]) -> None:
    """Write the file whole through a temporary file: a crash while writing leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.with_name(path.name + ".tmp")
    with written.open("w", encoding="utf-8") as file:
        file.writelines(line + "\n" for line in lines)
    written.replace(path)


async def _records(path: Path, text: str) -> AsyncIterator[Record]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield load_record(line)
        except DataFormatError as exc:
            raise DataFormatError(f"{path}, line {number}: {exc}") from None
