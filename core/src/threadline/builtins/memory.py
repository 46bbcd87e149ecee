"""The ``memory`` storage: everything in a dict, gone when the process ends. For tests and demos."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime

import attrs

from threadline.contracts import (
    TurnLease,
    check_replacement,
    check_revision_follows,
    make_cursor,
    next_lease,
    next_version,
    read_cursor,
)
from threadline.errors import DataFormatError, SessionNotFound, StorageConflict
from threadline.model import (
    DeletedCounts,
    Message,
    MessageStatus,
    Record,
    Revision,
    SessionPage,
    SessionQuery,
    SessionRecord,
    Usage,
    utcnow,
)
from threadline.registry import NoConfig
from threadline.search import SearchHit, SearchQuery, search_messages

Key = tuple[str, str]


class MemoryStorage:
    """Sessions and messages in dictionaries. Passes the full ``StorageContract``."""

    def __init__(self, config: NoConfig | None = None) -> None:
        self._sessions: dict[Key, SessionRecord] = {}
        self._messages: dict[Key, list[Message]] = {}
        self._leases: dict[Key, TurnLease] = {}
        self._revisions: dict[Key, list[Revision]] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _get(self, tenant: str, session_id: str) -> SessionRecord:
        try:
            return self._sessions[tenant, session_id]
        except KeyError:
            raise SessionNotFound(session_id, tenant) from None

    async def create_session(self, session: SessionRecord) -> SessionRecord:
        key = (session.tenant, session.id)
        if key in self._sessions:
            raise StorageConflict(f"session {session.id!r} exists already")
        stored = attrs.evolve(session, message_count=0, usage=Usage(), version=1)
        self._sessions[key] = stored
        self._messages[key] = []
        return stored

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        return self._get(tenant, session_id)

    async def update_session(self, session: SessionRecord) -> SessionRecord:
        stored = next_version(self._get(session.tenant, session.id), session)
        self._sessions[session.tenant, session.id] = stored
        return stored

    async def delete_session(self, tenant: str, session_id: str) -> None:
        self._get(tenant, session_id)
        del self._sessions[tenant, session_id]
        del self._messages[tenant, session_id]
        self._revisions.pop((tenant, session_id), None)

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        after = read_cursor(query.cursor) if query.cursor else None
        matches = sorted(
            (s for s in self._sessions.values() if _matches(s, query, after)),
            key=lambda s: (s.updated_at, s.id),
            reverse=True,
        )
        page = matches[: query.limit]
        more = len(matches) > query.limit
        return SessionPage(tuple(page), make_cursor(page[-1]) if more else None)

    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        session = self._get(tenant, session_id)
        if not messages:
            return
        if stray := next((m for m in messages if m.session_id != session_id), None):
            raise StorageConflict(f"message {stray.id!r} belongs to session {stray.session_id!r}, not {session_id!r}")
        expected = range(session.message_count + 1, session.message_count + 1 + len(messages))
        if [m.seq for m in messages] != list(expected):
            raise StorageConflict(
                f"session {session_id!r} has {session.message_count} messages; "
                f"appended seqs must be {list(expected)}, got {[m.seq for m in messages]}"
            )
        usage = sum((m.usage for m in messages if m.usage), session.usage)
        self._messages[tenant, session_id].extend(messages)
        self._sessions[tenant, session_id] = attrs.evolve(
            session, message_count=session.message_count + len(messages), usage=usage, updated_at=utcnow()
        )

    async def take_turn(self, tenant: str, session_id: str, holder: str, seconds: float) -> bool:
        self._get(tenant, session_id)
        taken, self._leases[tenant, session_id] = next_lease(
            self._leases.get((tenant, session_id)), holder, time.monotonic(), seconds
        )
        return taken

    async def end_turn(self, tenant: str, session_id: str, holder: str) -> None:
        lease = self._leases.get((tenant, session_id))
        if lease is not None and lease.holder == holder:
            self._leases[tenant, session_id] = attrs.evolve(lease, holder=None)  # free, whatever until says

    async def set_message_status(
        self, tenant: str, session_id: str, seq: int, status: str, error: str | None = None
    ) -> None:
        self._get(tenant, session_id)
        messages = self._messages[tenant, session_id]
        if not 1 <= seq <= len(messages):
            raise StorageConflict(f"session {session_id!r} has no message {seq}")
        messages[seq - 1] = attrs.evolve(messages[seq - 1], status=MessageStatus(status), error=error)

    async def get_messages(
        self, tenant: str, session_id: str, *, after_seq: int = 0, last: int | None = None
    ) -> list[Message]:
        self._get(tenant, session_id)
        messages = self._messages[tenant, session_id][max(after_seq, 0) :]  # seq > -2 is every one
        return list(messages) if last is None else messages[max(len(messages) - last, 0) :]

    async def replace_messages(
        self, tenant: str, session_id: str, after_seq: int, messages: Sequence[Message], *, count: int
    ) -> Revision:
        session = self._get(tenant, session_id)
        check_replacement(session_id, session.message_count, after_seq, messages, count)
        key = (tenant, session_id)
        kept = self._revisions.setdefault(key, [])
        stored = self._messages[key]
        revision = Revision(session_id, len(kept) + 1, after_seq, tuple(stored[after_seq:]), len(messages))
        kept.append(revision)
        stored[after_seq:] = messages
        self._sessions[key] = attrs.evolve(
            session, message_count=len(stored), updated_at=utcnow(), version=session.version + 1
        )
        return revision

    async def get_revisions(self, tenant: str, session_id: str) -> list[Revision]:
        self._get(tenant, session_id)
        return list(self._revisions.get((tenant, session_id), ()))

    async def search_messages(self, query: SearchQuery) -> list[SearchHit]:
        """Reads every message of the tenant's sessions that match the filters: no index."""
        sessions = {
            key: session
            for key, session in self._sessions.items()
            if key[0] == query.tenant
            and (query.user_id is None or session.user_id == query.user_id)
            and (query.provider is None or session.provider == query.provider)
        }
        by_id = {session.id: session for session in sessions.values()}
        return search_messages((m for key in sessions for m in self._messages[key]), query, by_id)

    async def delete_user(self, tenant: str, user_id: str) -> DeletedCounts:
        keys = [key for key, s in self._sessions.items() if key[0] == tenant and s.user_id == user_id]
        messages = sum(len(self._messages[key]) for key in keys)
        for key in keys:
            del self._sessions[key]
            del self._messages[key]
            self._revisions.pop(key, None)
        return DeletedCounts(len(keys), messages)

    async def export_records(self, tenant: str | None = None) -> AsyncIterator[Record]:
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
        """Read every record first, then add them in one step: writes made while a slow source
        is read are kept, and a session's counts are those of the messages imported with it."""
        sessions: dict[tuple[str, str], SessionRecord] = {}
        messages: dict[tuple[str, str], list[Message]] = {}
        revisions: dict[tuple[str, str], list[Revision]] = {}
        count = 0
        current: SessionRecord | None = None
        async for record in records:
            count += 1
            if isinstance(record, SessionRecord):
                current = record
                key = (record.tenant, record.id)
                if key in sessions or key in self._sessions:
                    raise StorageConflict(f"session {record.id!r} exists already; nothing was imported")
                sessions[key], messages[key], revisions[key] = record, [], []
            elif isinstance(record, Revision):
                kept = revisions[current.tenant, current.id] if current is not None else []
                check_revision_follows(record, current, len(kept))
                kept.append(record)
            elif current is None or record.session_id != current.id:
                raise DataFormatError(f"message {record.id!r} does not follow its session {record.session_id!r}")
            elif record.seq != len(messages[current.tenant, current.id]) + 1:
                raise DataFormatError(f"message {record.id!r} has seq {record.seq}; seqs must run 1, 2, 3, ...")
            else:
                messages[current.tenant, current.id].append(record)
        if clash := next((key for key in sessions if key in self._sessions), None):
            raise StorageConflict(f"session {clash[1]!r} was created while importing; nothing was imported")
        for key, record in sessions.items():
            usage = record.usage if revisions[key] else sum((m.usage for m in messages[key] if m.usage), Usage())
            self._sessions[key] = attrs.evolve(record, message_count=len(messages[key]), usage=usage)
            self._messages[key] = messages[key]
            self._revisions[key] = revisions[key]
        return count


def _matches(session: SessionRecord, query: SessionQuery, after: tuple[datetime, str] | None) -> bool:
    return (
        session.tenant == query.tenant
        and (query.user_id is None or session.user_id == query.user_id)
        and (query.status is None or session.status == query.status)
        and (query.updated_after is None or session.updated_at > query.updated_after)
        and (query.updated_before is None or session.updated_at < query.updated_before)
        and (after is None or (session.updated_at, session.id) < after)
    )
