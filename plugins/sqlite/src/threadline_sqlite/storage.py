"""``SQLiteStorage``: threadline's storage contract on one SQLite file, in WAL mode, with one
group-committing writer and reader connections that never wait behind it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import aiosqlite
import attrs
from attrs import frozen

from threadline.plugin import (
    ELLIPSIS,
    MARK_END,
    MARK_START,
    SNIPPET_WORDS,
    WAITER_SECONDS,
    DataFormatError,
    DeletedCounts,
    FrozenDict,
    HistoryCache,
    Message,
    MessageStatus,
    Revision,
    SearchHit,
    SearchQuery,
    SessionNotFound,
    SessionPage,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    StorageConflict,
    StorageUnavailable,
    Text,
    ThreadlineError,
    Usage,
    check_replacement,
    check_revision_follows,
    dump,
    dump_parts,
    listed_sessions,
    load,
    load_parts,
    make_cursor,
    message_extra,
    next_version,
    read_cursor,
    unchecked_constructor,
    utcnow,
)
from threadline_sqlite import SQLiteConfig, compression
from threadline_sqlite.compression import Codec, UnknownDictionary
from threadline_sqlite.group_commit import GroupCommit
from threadline_sqlite.schema import (
    COLUMN_FIELDS,
    CREATED_US,
    INDEX_PENDING,
    LATEST,
    NOW_US,
    READABLE_FROM,
    REVISIONS_FROM,
    ROLE_CODES,
    SEARCH_FROM,
    SEQ_DOES_NOT_FOLLOW_ON,
    SEQ_SPAN,
    STATUS_BITS,
    STATUS_CODES,
    created_us,
    migrate,
    packed_id,
    readable_version,
    register_search_functions,
)

T = TypeVar("T")


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


MINIMUM_SQLITE: Final = (3, 38)
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
RECORDS_KEPT: Final = 10_000  # session records kept decoded, by tenant and id
SESSION_COLUMNS: Final = (
    "tenant, id, user_id, status, updated_us, version, message_count, "
    "input_tokens, output_tokens, cached_tokens, cost, record"
)
MESSAGE_COLUMNS: Final = f"key % {SEQ_SPAN}, messages.id, kind, created_at, body, extra"
# the key of a session's message (schema 5) from the tenant, session id and seq; a session
# that does not exist gives sid 0, which is no session's
_KEY: Final = f"coalesce((SELECT sid FROM sessions WHERE tenant = ? AND id = ?), 0) * {SEQ_SPAN} + ?"
# a session's messages after a seq, in order: the range of keys from (sid, seq + 1) to (sid + 1, 0)
_MESSAGES_OF: Final = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages, "
    f"(SELECT sid * {SEQ_SPAN} AS base FROM sessions WHERE tenant = ? AND id = ?) "
    f"WHERE key > base + ? AND key < base + {SEQ_SPAN}"
)
# messages_rev starts at random: see schema migration 2
_NEW_REVISION: Final = "abs(random() % 1000000000000)"
_INSERT_SESSION: Final = (
    f"INSERT INTO sessions ({SESSION_COLUMNS}, messages_rev) VALUES ({_marks(12)}, {_NEW_REVISION})"
)
_INSERT_MESSAGES: Final = "INSERT INTO messages (key, id, kind, created_at, body, extra) VALUES"
_ROW_MARKS: Final = f"({_KEY}, {_marks(5)})"
_REVISIONS_OF: Final = (
    "SELECT sid, number, after_seq, added, created_us, replaced FROM revisions WHERE sid = ? ORDER BY number"
)
_ROWS_PER_INSERT: Final = 4000  # 8 parameters a row, under SQLite's limit of 32,766


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@frozen
class _Append:
    tenant: str
    session_id: str
    messages: Sequence[Message]


@frozen
class _EndTurn:
    tenant: str
    session_id: str
    holder: str


# next_lease's rule in one statement (a turn costs one round trip to the writer fewer):
# the holder extends its lease; a lease nobody holds, or that ran out, goes to the asker
# unless another waits for it; a refused asker who finds nobody waiting becomes the waiter
_MINE: Final = "(holder IS :holder AND expires_us > :now)"
_OTHER_WAITING: Final = "(waiter IS NOT NULL AND waiter IS NOT :holder AND waiter_until_us > :now)"
_FREE: Final = f"((holder IS NULL OR expires_us <= :now) AND NOT {_OTHER_WAITING})"
_TAKE_TURN: Final = f"""INSERT INTO turn_leases (tenant, session_id, holder, expires_us, waiter, waiter_until_us)
    SELECT tenant, id, :holder, :until, NULL, 0 FROM sessions WHERE tenant = :tenant AND id = :id
    ON CONFLICT (tenant, session_id) DO UPDATE SET
        holder = CASE WHEN {_FREE} THEN :holder ELSE holder END,
        expires_us = CASE WHEN {_MINE} OR {_FREE} THEN :until ELSE expires_us END,
        waiter = CASE WHEN {_MINE} OR {_OTHER_WAITING} THEN waiter WHEN {_FREE} THEN NULL ELSE :holder END,
        waiter_until_us = CASE WHEN {_MINE} OR {_OTHER_WAITING} THEN waiter_until_us WHEN {_FREE} THEN 0
                               ELSE :waiter_until END
    RETURNING holder IS :holder AND expires_us = :until"""
# the best matches of a search, each with its session's columns; the index is read first (CROSS
# JOIN keeps that order), so that snippet() and rank are its own; a snippet as the kernel's
_SNIPPET: Final = ", ".join([*map(_literal, (MARK_START, MARK_END, ELLIPSIS)), str(SNIPPET_WORDS)])
_SEARCH: Final = f"""SELECT sessions.id, message_search.rowid % {SEQ_SPAN}, messages.id, messages.kind,
        messages.created_at, snippet(message_search, 0, {_SNIPPET}), sessions.user_id,
        sessions.record ->> '$.title', sessions.record ->> '$.provider', sessions.record ->> '$.model'
    FROM message_search
    CROSS JOIN sessions ON sessions.sid = message_search.rowid / {SEQ_SPAN}
    CROSS JOIN messages ON messages.key = message_search.rowid
    WHERE message_search MATCH :match AND sessions.tenant = :tenant
        AND (:user_id IS NULL OR sessions.user_id = :user_id)
        AND (:provider IS NULL OR sessions.record ->> '$.provider' = :provider)
        AND (:since IS NULL OR {CREATED_US}(messages.created_at) >= :since)
    ORDER BY message_search.rank LIMIT :limit"""
# whether any message waits to be indexed (schema 7): asked on a reader, before a search
_ANY_PENDING: Final = "SELECT EXISTS (SELECT 1 FROM search_pending)"
_END_TURNS: Final = (
    "UPDATE turn_leases SET holder = NULL, expires_us = 0 WHERE (tenant, session_id, holder) IN (VALUES "
)


class SQLiteStorage:
    """The ``sqlite`` storage backend. Passes the full ``StorageContract``."""

    def __init__(self, config: SQLiteConfig | None = None) -> None:
        self.config = config or SQLiteConfig()
        self.path = str(self.config.path)
        self._writer: GroupCommit | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(self.config.readers))
        self._cache = HistoryCache(self.config.history_cache) if self.config.history_cache else None
        self._records = _RecordCache()
        self._codec = Codec()  # made again at open, with the database's dictionaries
        # why the database is open read-only (None: it is not)
        self._read_only: str | None = None
        self._schema = LATEST  # a read-only database may be older
        # what read connections open: the path as a URI, quoted (a `#`, `?` or `%` in it is
        # part of the name), so that they open the writer's file and never make one
        self._reader_uri = f"{self.config.path.absolute().as_uri()}?mode=ro"

    # -- opening and closing ------------------------------------------------

    async def open(self) -> None:
        """Create the file if needed, migrate the schema, start the writer and the readers;
        or, on a read-only database, only the readers. If it fails, nothing is left open."""
        if self._readers:
            return
        if sqlite3.sqlite_version_info < MINIMUM_SQLITE:
            raise StorageUnavailable(
                f"threadline-sqlite needs SQLite {'.'.join(map(str, MINIMUM_SQLITE))} or newer (JSON functions, "
                f"DROP COLUMN); this Python has {sqlite3.sqlite_version}"
            )
        read_only, immutable = self._read_only_reason()
        if read_only is None:
            try:
                self.config.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageUnavailable(f"cannot create the folder for SQLite database {self.path}: {exc}") from None
        elif not self.config.path.is_file():
            raise StorageUnavailable(f"SQLite database {self.path} does not exist (it is read-only: {read_only})")
        self._reader_uri = f"{self.config.path.absolute().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"
        self._read_only = read_only
        try:
            if read_only is None:
                db = await self._connect(self.path)
                self._writer = GroupCommit(
                    db, self._batched_statements, self._explain_append, self._translate, self.config.max_batch
                )
                await db.execute_fetchall("PRAGMA journal_mode = WAL")
                await migrate(db, self.path)
                self._writer.start()
            for _ in range(self.config.readers):
                self._readers.append(await self._connect(self._reader_uri, uri=True))
            if read_only is not None:
                await self._check_read_only_schema(self._readers[0], read_only)
            await self._start_codec()
            if read_only is None:  # what the search index's triggers call, reading bodies as this codec does
                await register_search_functions(db, lambda body: self._codec.unpack(body))
        except BaseException as exc:
            await self._close(checkpoint=False)  # aiosqlite's threads would keep the process alive
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from None

    async def _start_codec(self) -> None:
        """The codec of the database's dictionaries; compressing, with a dictionary trained now
        if there is none yet and the database has enough messages to learn from."""
        compress = self.config.compression == "zstd" and self._read_only is None
        self._codec = Codec(await self._dictionaries(), compress=compress)
        if compress:
            await self._train()

    async def _dictionaries(self) -> list[bytes]:
        return [row[0] for row in await self._read("SELECT dictionary FROM zstd_dictionaries ORDER BY n")]

    async def _train(self) -> bool:
        """Train a dictionary on the newest messages, store it and compress with it from now
        on; ``False`` when the database has too few messages to teach one, or not yet twice
        as many as the newest dictionary learnt from (each one is kept: frames name it)."""
        ((messages, trained_at),) = await self._read(
            "SELECT (SELECT coalesce(sum(message_count), 0) FROM sessions), "  # not a walk of every message
            "(SELECT messages FROM zstd_dictionaries ORDER BY n DESC LIMIT 1)"
        )
        if messages < max(compression.TRAIN_FROM, 2 * (trained_at or 0)):
            return False
        rows = await self._read(f"SELECT body FROM messages ORDER BY rowid DESC LIMIT {compression.TRAINING_SAMPLES}")
        samples = await self._texts([body for (body,) in rows])
        dictionary = await asyncio.to_thread(compression.train, samples)

        async def store(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO zstd_dictionaries (dictionary, messages) VALUES (?, ?)", (dictionary, messages)
            )

        await self._write.write(store)
        self._codec.add(dictionary)
        return True

    async def _decoded(self, session_id: str, rows: Sequence[Sequence[Any]]) -> list[Message]:
        return await self._decoding(functools.partial(_messages_from_rows, session_id, rows, self._codec.unpack))

    async def _texts(self, bodies: list[str | bytes]) -> list[str]:
        """Stored bodies as text."""
        return await self._decoding(lambda: [self._codec.unpack(b) if isinstance(b, bytes) else b for b in bodies])

    async def _decoding(self, decode: Callable[[], T]) -> T:
        """``decode()``; if it meets a dictionary another process added since this one read
        them, read them again and decode again."""
        try:
            return decode()
        except UnknownDictionary:
            for dictionary in await self._dictionaries():
                self._codec.add(dictionary)
            return decode()

    def _read_only_reason(self) -> tuple[str | None, bool]:
        """Why the database is to be opened read-only (``None``: it is not), and whether to
        open it immutable: when nobody may write its file or folder and no -wal file shows a
        writer that has it open. SQLite then makes no -shm or -wal file beside it (one made by
        a read-only connection would stop a later writer, even once the file is writable)."""
        path = self.config.path
        locked = None
        if path.exists():
            if not _writable(path):
                locked = "the file is not writable"
            elif not _writable(path.parent):
                locked = "its folder is not writable"
        immutable = locked is not None and not Path(f"{self.path}-wal").exists()
        return ("[storage] read_only = true" if self.config.read_only else locked), immutable

    async def _check_read_only_schema(self, db: aiosqlite.Connection, read_only: str) -> None:
        found = self._schema = await readable_version(db, self.path)
        if found < READABLE_FROM:
            raise StorageUnavailable(
                f"SQLite database {self.path} is at schema version {found} and needs a migration to {LATEST}, "
                f"but it is read-only ({read_only}); open it once with write access to migrate it"
            )

    async def _connect(self, target: str, *, uri: bool = False) -> aiosqlite.Connection:
        """A connection in autocommit mode: transactions are begun explicitly."""
        connection = aiosqlite.connect(target, uri=uri, isolation_level=None)
        try:
            db = await connection
        except sqlite3.Error as exc:
            # aiosqlite stops its thread on a failed connect without waiting for it: wait here,
            # or the thread answers a loop that may be closed by then (and keeps the process up)
            await asyncio.to_thread(connection._thread.join, 10)
            raise StorageUnavailable(f"cannot open SQLite database {self.path}: {exc}") from None
        try:
            await db.execute_fetchall(f"PRAGMA busy_timeout = {int(self.config.busy_timeout * 1000)}")
            await db.execute_fetchall(f"PRAGMA synchronous = {self.config.synchronous}")
            await db.execute_fetchall("PRAGMA foreign_keys = ON")
            await db.execute_fetchall("SELECT count(*) FROM sqlite_master")  # fails now if it is not a database
            await db.create_function(CREATED_US, 1, created_us, deterministic=True)  # for a search since a time
        except BaseException as exc:
            await db.close()
            raise self._translate(exc) from None
        return db

    async def close(self) -> None:
        """Close every connection. The writer first moves every commit from the -wal file into
        the database file (a checkpoint): the .db file alone then holds everything."""
        await self._close(checkpoint=True)

    async def _close(self, *, checkpoint: bool) -> None:
        writer, readers = self._writer, self._readers
        self._writer, self._readers, self._read_only = None, [], None
        try:
            if writer is not None:
                await writer.stop()
                if checkpoint:
                    await self._checkpoint(writer.db)
        finally:
            for reader in readers:  # before the writer: the last connection closed removes the -wal file
                await reader.close()
            if writer is not None:
                await writer.db.close()

    async def _checkpoint(self, db: aiosqlite.Connection) -> None:
        # if another process held its write lock past busy_timeout, the -wal file keeps it all, as safely
        with contextlib.suppress(sqlite3.Error):
            await db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")

    def _translate(self, exc: BaseException) -> BaseException:
        """SQLite's errors as threadline's, saying what to do."""
        if isinstance(exc, ThreadlineError) or not isinstance(exc, sqlite3.Error):
            return exc
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_BUSY:
            return StorageUnavailable(
                f"SQLite database {self.path} is locked by another connection; waited "
                f"{self.config.busy_timeout:g}s (raise [storage] busy_timeout to wait longer)"
            )
        text = str(exc)
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return StorageUnavailable(f"{self.path} is not a SQLite database (or is damaged): {text}")
        return StorageUnavailable(f"SQLite database {self.path}: {text}")

    @property
    def _write(self) -> GroupCommit:
        if self._writer is None:
            if self._read_only is not None:
                raise StorageUnavailable(
                    f"SQLite database {self.path} is open read-only ({self._read_only}); nothing can be written"
                )
            raise RuntimeError("the SQLite storage is not open; call open() first")
        return self._writer

    def _reader(self) -> aiosqlite.Connection:
        if not self._readers:
            raise RuntimeError("the SQLite storage is not open; call open() first")
        return self._readers[next(self._next_reader)]

    async def _read(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(await self._reader().execute_fetchall(sql, parameters))
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    # -- sessions -------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> SessionRecord:
        stored = attrs.evolve(session, message_count=0, usage=Usage(), version=1)

        async def insert(db: aiosqlite.Connection) -> int:
            try:
                ((revision,),) = await db.execute_fetchall(
                    f"{_INSERT_SESSION} RETURNING messages_rev", _session_row(stored)
                )
            except sqlite3.IntegrityError:
                raise StorageConflict(f"session {session.id!r} exists already in tenant {session.tenant!r}") from None
            return int(revision)

        revision: int = await self._write.write(insert)
        if self._cache is not None:  # a new session's history is known: its first read reads nothing
            self._cache.put((session.tenant, session.id), revision, [])
        return stored

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        rows = await self._read(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = ? AND id = ?", (tenant, packed_id(session_id))
        )
        if not rows:
            raise SessionNotFound(session_id, tenant)
        return self._records.record(rows[0])

    async def update_session(self, session: SessionRecord) -> SessionRecord:
        async def update(db: aiosqlite.Connection) -> SessionRecord:
            # next_version's rule in the one statement, so a title costs one round trip
            key = (session.tenant, packed_id(session.id))
            rows = list(
                await db.execute_fetchall(
                    "UPDATE sessions SET user_id = ?, status = ?, updated_us = max(?, updated_us), "
                    "version = version + 1, record = json_set(?, '$.created_at', record ->> '$.created_at') "
                    f"WHERE tenant = ? AND id = ? AND version = ? RETURNING {SESSION_COLUMNS}",
                    (session.user_id, session.status.value, to_us(utcnow()), _record(session), *key, session.version),
                )
            )
            if rows:
                return _session_from_row(rows[0])
            current = await db.execute_fetchall(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = ? AND id = ?", key
            )
            for row in current:
                next_version(_session_from_row(row), session)  # raises the conflict
            raise SessionNotFound(session.id, session.tenant)

        result: SessionRecord = await self._write.write(update)
        return result

    async def delete_session(self, tenant: str, session_id: str) -> None:
        async def delete(db: aiosqlite.Connection) -> None:
            cursor = await db.execute(
                "DELETE FROM sessions WHERE tenant = ? AND id = ?", (tenant, packed_id(session_id))
            )
            if cursor.rowcount == 0:
                raise SessionNotFound(session_id, tenant)

        await self._write.write(delete)
        if self._cache is not None:
            self._cache.drop((tenant, session_id))

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        where: list[str] = ["tenant = ?"]
        parameters: list[Any] = [query.tenant]
        if query.user_id is not None:
            where.append("user_id = ?")
            parameters.append(query.user_id)
        if query.updated_after is not None:
            where.append("updated_us > ?")
            parameters.append(to_us(query.updated_after))
        if query.updated_before is not None:
            where.append("updated_us < ?")
            parameters.append(to_us(query.updated_before))
        if query.cursor:
            updated_at, last_id = read_cursor(query.cursor)
            where.append("(updated_us, id) < (?, ?)")  # a row value: an index range, where OR would scan
            parameters += [to_us(updated_at), packed_id(last_id)]
        select = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE {' AND '.join(where)}"
        if query.status is not None:
            select, parameters = f"{select} AND status = ?", [*parameters, query.status.value]
        elif query.user_id is None:
            # no index orders all of a tenant's sessions by activity (one more index to move on
            # every append): merge the in-order walks of sessions_by_status, one per status
            select = " UNION ALL ".join(f"{select} AND status = ?" for _ in SessionStatus)
            parameters = [value for status in SessionStatus for value in (*parameters, status.value)]
        rows = await self._read(f"{select} ORDER BY updated_us DESC, id DESC LIMIT ?", [*parameters, query.limit + 1])
        items = listed_sessions(rows[: query.limit], _session_from_row)
        return SessionPage(items, make_cursor(items[-1]) if len(rows) > query.limit else None)

    async def delete_user(self, tenant: str, user_id: str) -> DeletedCounts:
        async def delete(db: aiosqlite.Connection) -> DeletedCounts:
            ((sessions, messages),) = await db.execute_fetchall(
                "SELECT count(*), coalesce(sum(message_count), 0) FROM sessions WHERE tenant = ? AND user_id = ?",
                (tenant, user_id),
            )
            await db.execute("DELETE FROM sessions WHERE tenant = ? AND user_id = ?", (tenant, user_id))
            return DeletedCounts(sessions, messages)

        result: DeletedCounts = await self._write.write(delete)
        return result

    # -- messages -------------------------------------------------------------

    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        if not messages:  # nothing to write: only whether the session exists to say
            await _require_session(self._reader(), tenant, session_id)
            return
        await self._write.batch(_Append(tenant, session_id, messages))
        if self._cache is not None:
            self._cache.extend((tenant, session_id), messages)

    def _batched_statements(self, writes: Sequence[_Append | _EndTurn]) -> list[tuple[str, Sequence[Any]]]:
        """The statements of appends and turn ends queued together: one INSERT for every
        message of every append (a few, past SQLite's parameter limit; the database checks
        each seq against its session's count and keeps the session's counts itself), one
        UPDATE for every turn ended."""
        rows: list[tuple[Any, ...]] = []
        ends: list[tuple[str, str | bytes, str]] = []
        for write in writes:
            if isinstance(write, _EndTurn):
                ends.append((write.tenant, packed_id(write.session_id), write.holder))
                continue
            _check_numbering(write)
            session = packed_id(write.session_id)
            rows += [_message_row(write.tenant, session, m, self._codec.pack) for m in write.messages]
        chunks = (rows[start : start + _ROWS_PER_INSERT] for start in range(0, len(rows), _ROWS_PER_INSERT))
        statements: list[tuple[str, Sequence[Any]]] = [
            (_insert_messages(len(chunk)), list(itertools.chain.from_iterable(chunk))) for chunk in chunks
        ]
        if ends:  # at most max_batch of them: 3 parameters each, far under SQLite's limit
            marks = ", ".join(["(?, ?, ?)"] * len(ends))
            statements.append((f"{_END_TURNS}{marks})", list(itertools.chain.from_iterable(ends))))
        return statements

    async def _explain_append(
        self, db: aiosqlite.Connection, append: _Append | _EndTurn, exc: BaseException
    ) -> BaseException:
        if isinstance(append, _EndTurn) or not (
            isinstance(exc, sqlite3.IntegrityError) and SEQ_DOES_NOT_FOLLOW_ON in str(exc)
        ):
            return exc
        rows = list(
            await db.execute_fetchall(
                "SELECT message_count FROM sessions WHERE tenant = ? AND id = ?",
                (append.tenant, packed_id(append.session_id)),
            )
        )
        if not rows:
            return SessionNotFound(append.session_id, append.tenant)
        count = rows[0][0]
        expected = list(range(count + 1, count + 1 + len(append.messages)))
        return StorageConflict(
            f"session {append.session_id!r} has {count} messages; appended seqs must be {expected}, "
            f"got {[m.seq for m in append.messages]}"
        )

    async def take_turn(self, tenant: str, session_id: str, holder: str, seconds: float) -> bool:
        now = time.time_ns() // 1000  # the machine's clock, as every process on the file reads it
        parameters = {
            "tenant": tenant, "id": packed_id(session_id), "holder": holder, "now": now,
            "until": now + round(seconds * 1e6), "waiter_until": now + round(WAITER_SECONDS * 1e6),
        }  # fmt: skip

        async def take(db: aiosqlite.Connection) -> bool:
            rows = list(await db.execute_fetchall(_TAKE_TURN, parameters))
            if not rows:
                raise SessionNotFound(session_id, tenant)
            return bool(rows[0][0])

        taken: bool = await self._write.write(take)
        return taken

    async def end_turn(self, tenant: str, session_id: str, holder: str) -> None:
        await self._write.batch(_EndTurn(tenant, session_id, holder))

    async def set_message_status(
        self, tenant: str, session_id: str, seq: int, status: str, error: str | None = None
    ) -> None:
        code = STATUS_CODES.index(MessageStatus(status))

        async def mark(db: aiosqlite.Connection) -> None:
            await db.execute(
                "UPDATE sessions SET messages_rev = messages_rev + 1 WHERE tenant = ? AND id = ?",
                (tenant, packed_id(session_id)),
            )
            cursor = await db.execute(
                f"UPDATE messages SET kind = (kind & ~{STATUS_BITS}) | ?, "
                "extra = nullif(json_patch(coalesce(extra, '{}'), json_object('error', ?)), '{}') "
                f"WHERE key = {_KEY}",
                (code * 2, error, tenant, packed_id(session_id), seq),
            )
            if cursor.rowcount == 0:
                await _require_session(db, tenant, session_id)
                raise StorageConflict(f"session {session_id!r} has no message {seq}")

        await self._write.write(mark)

    async def replace_messages(
        self, tenant: str, session_id: str, after_seq: int, messages: Sequence[Message], *, count: int
    ) -> Revision:
        """In one transaction: the replaced rows become a revision and go, the new ones are
        inserted (the append trigger checks and counts them), the token totals are put back
        as they were, and ``messages_rev`` and ``version`` move, so that every process's
        cache reads again."""
        packed, pack = packed_id(session_id), self._codec.pack

        async def replace(db: aiosqlite.Connection) -> Revision:
            found = await db.execute_fetchall(
                "SELECT sid, message_count, input_tokens, output_tokens, cached_tokens, cost "
                "FROM sessions WHERE tenant = ? AND id = ?",
                (tenant, packed),
            )
            if not found:
                raise SessionNotFound(session_id, tenant)
            ((sid, message_count, *usage),) = found
            check_replacement(session_id, message_count, after_seq, messages, count)
            span = (sid * SEQ_SPAN + after_seq, (sid + 1) * SEQ_SPAN)
            rows = list(
                await db.execute_fetchall(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE key > ? AND key < ?", span)
            )
            ((number,),) = await db.execute_fetchall(
                "SELECT coalesce(max(number), 0) + 1 FROM revisions WHERE sid = ?", (sid,)
            )
            revision = Revision(
                session_id, number, after_seq, tuple(await self._decoded(session_id, rows)), len(messages)
            )
            await db.execute(
                "INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?)",
                (sid, number, after_seq, len(messages), to_us(revision.created_at), _replaced(revision)),
            )
            await db.execute("DELETE FROM messages WHERE key > ? AND key < ?", span)
            await db.execute(
                f"UPDATE sessions SET message_count = ?, messages_rev = messages_rev + 1, version = version + 1, "
                f"updated_us = max(updated_us + 1, {NOW_US}) WHERE sid = ?",
                (after_seq, sid),
            )
            rows_of = [_message_row(tenant, packed, message, pack) for message in messages]
            for start in range(0, len(rows_of), _ROWS_PER_INSERT):
                chunk = rows_of[start : start + _ROWS_PER_INSERT]
                await db.execute(_insert_messages(len(chunk)), [value for row in chunk for value in row])
            await db.execute(
                "UPDATE sessions SET input_tokens = ?, output_tokens = ?, cached_tokens = ?, cost = ? WHERE sid = ?",
                (*usage, sid),
            )
            return revision

        revision: Revision = await self._write.write(replace)
        if self._cache is not None:
            self._cache.drop((tenant, session_id))
        return revision

    async def search_messages(self, query: SearchQuery) -> list[SearchHit]:
        """The FTS5 index's best matches (bm25), each term a quoted phrase of its words: nothing
        a user types is FTS5 syntax."""
        terms = query.terms
        if not terms:
            return []
        if self._schema < SEARCH_FROM:
            raise StorageUnavailable(
                f"SQLite database {self.path} is at schema version {self._schema}, from before search "
                f"(schema {SEARCH_FROM}), and is open read-only ({self._read_only}); open it once with write "
                "access to add the search index"
            )
        if self._read_only is None and (await self._read(_ANY_PENDING))[0][0]:  # a write only when needed
            await self._write.write(_index_pending)
        parameters = {
            "match": " ".join(f'"{" ".join(term)}"' for term in terms), "tenant": query.tenant,
            "user_id": query.user_id, "provider": query.provider,
            "since": None if query.since is None else to_us(query.since), "limit": query.limit,
        }  # fmt: skip
        return [_hit(row) for row in await self._read(_SEARCH, parameters)]

    async def get_revisions(self, tenant: str, session_id: str) -> list[Revision]:
        if self._schema < REVISIONS_FROM:  # read-only, from before revisions: it has none
            await _require_session(self._reader(), tenant, session_id)
            return []
        rows = await self._read(
            "SELECT sessions.sid, number, after_seq, added, created_us, replaced FROM sessions "
            "LEFT JOIN revisions ON revisions.sid = sessions.sid WHERE tenant = ? AND id = ? ORDER BY number",
            (tenant, packed_id(session_id)),
        )
        if not rows:
            raise SessionNotFound(session_id, tenant)
        return [_revision_from_row(session_id, row) for row in rows if row[1] is not None]

    async def get_messages(
        self, tenant: str, session_id: str, *, after_seq: int = 0, last: int | None = None
    ) -> list[Message]:
        if last is not None and last <= 0:  # none: one answer, cached or not (SQL's LIMIT -1 is no limit)
            await _require_session(self._reader(), tenant, session_id)
            return []
        if after_seq < 0:  # seq > -2 is every message; history[-2:] would be two
            after_seq = 0
        key = (tenant, session_id)
        ranged = after_seq or last is not None
        if self._cache is None or (key not in self._cache and ranged):
            return await self._fetch_messages(tenant, session_id, after_seq, last)
        if key not in self._cache:
            return await self._fetch_and_cache(tenant, session_id)
        rows = await self._read(
            "SELECT message_count, messages_rev FROM sessions WHERE tenant = ? AND id = ?",
            (tenant, packed_id(session_id)),
        )
        if not rows:
            raise SessionNotFound(session_id, tenant)
        count, revision = rows[0]
        history = self._cache.get(key, revision, count)
        if history is None:  # stale: a status changed, or the session was made again
            if ranged:  # read only the range; the next whole read caches the history again
                self._cache.drop(key)
                return await self._fetch_messages(tenant, session_id, after_seq, last)
            return await self._fetch_and_cache(tenant, session_id)
        if len(history) < count:
            history = history + await self._fetch_messages(tenant, session_id, len(history), None)
            self._cache.put(key, revision, history)
        selected = history[after_seq:]  # a copy: callers may change their list
        return selected[-last:] if last is not None else selected

    async def _fetch_and_cache(self, tenant: str, session_id: str) -> list[Message]:
        """The whole history and, read by the same statement, the revision it is valid for."""
        assert self._cache is not None
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS}, messages_rev FROM messages JOIN sessions "
            f"ON key > sid * {SEQ_SPAN} AND key < (sid + 1) * {SEQ_SPAN} "
            "WHERE tenant = ? AND sessions.id = ? ORDER BY key",
            (tenant, packed_id(session_id)),
        )
        if not rows:
            await _require_session(self._reader(), tenant, session_id)
            return []
        history = await self._decoded(session_id, rows)
        self._cache.put((tenant, session_id), rows[0][-1], history)
        return list(history)

    async def _fetch_messages(self, tenant: str, session_id: str, after_seq: int, last: int | None) -> list[Message]:
        if last is None:
            rows = await self._read(f"{_MESSAGES_OF} ORDER BY key", (tenant, packed_id(session_id), after_seq))
        else:
            rows = await self._read(
                f"{_MESSAGES_OF} ORDER BY key DESC LIMIT ?", (tenant, packed_id(session_id), after_seq, last)
            )
            rows.reverse()
        if not rows:
            await _require_session(self._reader(), tenant, session_id)
        return await self._decoded(session_id, rows)

    # -- space ----------------------------------------------------------------

    async def vacuum(self) -> int:
        """Give the space of deleted sessions back to the system: rewrite the database
        compactly (SQLite's ``VACUUM``; writes wait meanwhile, reads go on) and move it all
        into the .db file. With ``compression = "zstd"``, first train a new dictionary on the
        newest messages if the database has twice the messages the last one learnt from, and
        compress every message with the newest. Returns the bytes given back.
        Needs free disk space about the size of the database while it runs."""
        if self.config.compression == "zstd":
            await self._train()
            await self._recompress()

        async def rewrite(db: aiosqlite.Connection) -> None:
            try:
                await db.execute_fetchall("VACUUM")
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            await self._checkpoint(db)

        before = self._size_on_disk()
        await self._write.alone(rewrite)
        return max(0, before - self._size_on_disk())

    async def _recompress(self) -> None:
        """Every message body compressed again with the newest dictionary, a page at a time.
        A body is replaced only if it is still the one read (sids are never reused, and the
        check keeps it so whatever else may change meanwhile)."""
        after = 0
        while rows := await self._read(
            "SELECT key, body FROM messages WHERE key > ? ORDER BY key LIMIT 2000", (after,)
        ):
            texts = await self._texts([body for _, body in rows])
            packed = ((self._codec.pack(text), key, body) for text, (key, body) in zip(texts, rows, strict=True))
            changes = [change for change in packed if change[0] != change[2]]

            async def store(db: aiosqlite.Connection, changes: list[tuple[Any, ...]] = changes) -> None:
                await db.executemany("UPDATE messages SET body = ? WHERE key = ? AND body = ?", changes)

            await self._write.write(store)
            after = rows[-1][0]

    def _size_on_disk(self) -> int:
        """The database's bytes: the file and its -wal file."""
        return sum(path.stat().st_size for path in (self.config.path, Path(f"{self.path}-wal")) if path.exists())

    # -- export and import ----------------------------------------------------

    async def export_records(self, tenant: str | None = None) -> AsyncIterator[SessionRecord | Message | Revision]:
        """Stream every session, its messages and its revisions from one consistent snapshot,
        a page at a time."""
        db = await self._connect(self._reader_uri, uri=True)
        try:
            await db.execute("BEGIN")
            where, parameters = ("WHERE tenant = ?", [tenant]) if tenant is not None else ("", [])
            async with db.execute(
                f"SELECT {SESSION_COLUMNS}, sid FROM sessions {where} ORDER BY tenant, id", parameters
            ) as sessions:
                async for row in sessions:
                    session = _session_from_row(row)
                    yield session
                    async with db.execute(
                        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE key > ? AND key < ? ORDER BY key",
                        (row[-1] * SEQ_SPAN, (row[-1] + 1) * SEQ_SPAN),
                    ) as messages:
                        async for message_row in messages:
                            (message,) = await self._decoded(session.id, [message_row])
                            yield message
                    if self._schema >= REVISIONS_FROM:
                        for revision_row in await db.execute_fetchall(_REVISIONS_OF, (row[-1],)):
                            yield _revision_from_row(session.id, revision_row)
        finally:
            await db.close()

    async def import_records(self, records: AsyncIterable[SessionRecord | Message | Revision]) -> int:
        async def insert(db: aiosqlite.Connection) -> int:
            return await _Importer(db, self._codec.pack).run(records)

        result: int = await self._write.write(insert, once=True)
        return result


@attrs.define
class _Importer:
    """Inserts exported records, checking that messages follow their session in seq order,
    and revisions its messages in number order."""

    db: aiosqlite.Connection
    pack: Callable[[str], str | bytes]
    current: SessionRecord | None = None
    current_id: str | bytes = ""  # current's id as stored
    current_sid: int = 0
    next_seq: int = 1
    revisions: int = 0
    pending: list[tuple[Any, ...]] = attrs.Factory(list)

    async def run(self, records: AsyncIterable[SessionRecord | Message | Revision]) -> int:
        count = 0
        async for record in records:
            count += 1
            if isinstance(record, SessionRecord):
                await self._session(record)
            elif isinstance(record, Revision):
                await self._revision(record)
            else:
                self._message(record)
                if len(self.pending) >= 500:
                    await self._flush()
        await self._flush()
        return count

    async def _session(self, session: SessionRecord) -> None:
        await self._flush()
        empty = attrs.evolve(session, message_count=0, usage=Usage())  # its messages count themselves in
        try:
            inserted = await self.db.execute(_INSERT_SESSION, _session_row(empty))
        except sqlite3.IntegrityError:
            raise StorageConflict(f"session {session.id!r} exists already; nothing was imported") from None
        self.current, self.current_id, self.next_seq, self.revisions = session, packed_id(session.id), 1, 0
        self.current_sid = inserted.lastrowid or 0

    async def _revision(self, revision: Revision) -> None:
        check_revision_follows(revision, self.current, self.revisions)
        assert self.current is not None  # else the check raised
        self.revisions += 1
        if self.revisions == 1:  # its usage as exported: edits dropped replies whose tokens were spent
            await self._flush()  # the append trigger sums the messages' first
            usage = self.current.usage
            await self.db.execute(
                "UPDATE sessions SET input_tokens = ?, output_tokens = ?, cached_tokens = ?, cost = ? WHERE sid = ?",
                (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cost, self.current_sid),
            )
        await self.db.execute(
            "INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?)",
            (self.current_sid, revision.number, revision.after_seq, revision.added, to_us(revision.created_at),
             _replaced(revision)),
        )  # fmt: skip

    def _message(self, message: Message) -> None:
        if self.current is None or message.session_id != self.current.id:
            raise DataFormatError(f"message {message.id!r} does not follow its session {message.session_id!r}")
        if message.seq != self.next_seq:
            raise DataFormatError(f"message {message.id!r} has seq {message.seq}; expected {self.next_seq}")
        self.next_seq += 1
        self.pending.append(_message_row(self.current.tenant, self.current_id, message, self.pack))

    async def _flush(self) -> None:
        if self.pending:
            await self.db.executemany(_insert_messages(1), self.pending)
            self.pending = []
        if self.current is not None:  # the activity time the export had, not the import's
            await self.db.execute(
                "UPDATE sessions SET updated_us = ? WHERE tenant = ? AND id = ?",
                (to_us(self.current.updated_at), self.current.tenant, packed_id(self.current.id)),
            )


def _writable(path: Path) -> bool:
    """Writable by this process, and by anyone at all: a file or folder with no write
    permission (``chmod a-w``) is read-only here even for root, who could write it anyway."""
    try:
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    except OSError:
        return True  # opening it says what is wrong


# -- rows -------------------------------------------------------------------------


async def _require_session(db: aiosqlite.Connection, tenant: str, session_id: str) -> None:
    rows = await db.execute_fetchall(
        "SELECT 1 FROM sessions WHERE tenant = ? AND id = ?", (tenant, packed_id(session_id))
    )
    if not list(rows):
        raise SessionNotFound(session_id, tenant)


def _check_numbering(append: _Append) -> None:
    """A batch (never empty) must number its messages consecutively, all for the session it names."""
    messages = append.messages
    first = messages[0].seq
    for offset, message in enumerate(messages):
        if message.session_id != append.session_id:
            raise StorageConflict(
                f"message {message.id!r} belongs to session {message.session_id!r}, not {append.session_id!r}"
            )
        if message.seq != first + offset:
            seqs = [m.seq for m in messages]
            raise StorageConflict(
                f"appended messages must be numbered consecutively for {append.session_id!r}, got {seqs}"
            )


@functools.lru_cache(maxsize=64)
def _insert_messages(rows: int) -> str:
    return f"{_INSERT_MESSAGES} {', '.join([_ROW_MARKS] * rows)}"


def _session_row(session: SessionRecord) -> tuple[Any, ...]:
    usage = session.usage
    return (
        session.tenant, packed_id(session.id), session.user_id, session.status.value, to_us(session.updated_at),
        session.version, session.message_count, usage.input_tokens, usage.output_tokens, usage.cached_tokens,
        usage.cost, _record(session),
    )  # fmt: skip


def _record(session: SessionRecord) -> str:
    """A session's ``record`` column: what its other columns do not hold, and no field at its
    default when that is empty (every field that can be null, ``[]`` or ``{}`` defaults to it)."""
    kept = {k: v for k, v in dump(session).items() if k not in COLUMN_FIELDS and v not in _EMPTY}
    kept["created_at"] = _iso(session.created_at)
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


_EMPTY: Final[tuple[Any, ...]] = (None, [], {})


def _given_id(stored: str | bytes) -> str:
    """An id as :func:`~threadline_sqlite.schema.packed_id` stored it, as it was given."""
    return stored.hex() if isinstance(stored, bytes) else stored


class _RecordCache:
    """Session records decoded from their rows, by tenant and id: a row read again that is
    the same, byte for byte, is the same record, and is not decoded again (a turn reads its
    session's row each time)."""

    def __init__(self, capacity: int = RECORDS_KEPT) -> None:
        self.capacity = capacity
        self.records: dict[tuple[Any, Any], tuple[tuple[Any, ...], SessionRecord]] = {}

    def record(self, row: Sequence[Any]) -> SessionRecord:
        values = tuple(row)
        key = values[:2]
        kept = self.records.get(key)
        if kept is not None and kept[0] == values:
            return kept[1]
        record = _session_from_row(values)
        if len(self.records) >= self.capacity:
            self.records.clear()
        self.records[key] = (values, record)
        return record


def _session_from_row(row: Sequence[Any]) -> SessionRecord:
    try:
        data = json.loads(row[11])
        data.update(
            tenant=row[0],
            id=_given_id(row[1]),
            user_id=row[2],
            status=row[3],
            updated_at=from_us(row[4]).isoformat(),
            version=row[5],
            message_count=row[6],
            usage={"input_tokens": row[7], "output_tokens": row[8], "cached_tokens": row[9], "cost": row[10]},
        )
        return load(data, SessionRecord)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, DataFormatError) as exc:
        raise DataFormatError(
            f"session {_given_id(row[1])!r} of tenant {row[0]!r} is damaged in the database: {exc}"
        ) from None


def _messages_from_rows(
    session_id: str, rows: Sequence[Sequence[Any]], unpack: Callable[[bytes], str]
) -> list[Message]:
    try:
        return [_message_from_row(session_id, row, unpack) for row in rows]
    except UnknownDictionary:
        raise  # read the dictionaries again (SQLiteStorage._decoding)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, DataFormatError) as exc:
        raise DataFormatError(f"a message of session {session_id!r} is damaged in the database: {exc}") from None


_ROLE_KINDS: Final = {role: code * 8 for code, role in enumerate(ROLE_CODES)}
_STATUS_KINDS: Final = {status: code * 2 for code, status in enumerate(STATUS_CODES)}


def _message_row(
    tenant: str, session: str | bytes, message: Message, pack: Callable[[str], str | bytes]
) -> tuple[Any, ...]:
    """A message's row, given its session's id as stored; its body stored as ``pack`` gives it
    (see compression.Codec)."""
    parts = message.parts
    plain = len(parts) == 1 and type(parts[0]) is Text and not parts[0].provider_data
    return (
        tenant, session, message.seq, packed_id(message.id),
        _ROLE_KINDS[message.role] + _STATUS_KINDS[message.status] + (not plain), _iso(message.created_at),
        pack(parts[0].text if plain else dump_parts(parts)), _extra(message),  # type: ignore[union-attr]
    )  # fmt: skip


async def _index_pending(db: aiosqlite.Connection) -> None:
    """Index the messages appended since the last search (schema 7)."""
    for statement in INDEX_PENDING:
        await db.execute(statement)


def _iso(moment: datetime) -> str:
    """A time as stored: ISO 8601, in the basic format for UTC (20261205T210925.25Z), which
    ``datetime.fromisoformat`` reads as fast and is 9 characters shorter."""
    text = moment.isoformat()
    if not text.endswith("+00:00"):
        return text
    return f"{text[:4]}{text[5:7]}{text[8:13]}{text[14:16]}{text[17:-6]}Z"


def _extra(message: Message) -> str | None:
    """What a message rarely has, as JSON; ``None`` when it has none of it."""
    extra = message_extra(message)
    return None if extra is None else json.dumps(extra, ensure_ascii=False, separators=(",", ":"))


# kind -> (role, status, whether the body is parts JSON): see schema.ROLE_CODES
_KINDS: Final = {
    role_kind + status_kind + has_parts: (role, status, has_parts)
    for role, role_kind in _ROLE_KINDS.items()
    for status, status_kind in _STATUS_KINDS.items()
    for has_parts in (0, 1)
}
_new_message = unchecked_constructor(Message)
_new_text = unchecked_constructor(Text)
_new_usage = unchecked_constructor(Usage)
_from_iso = datetime.fromisoformat
_NO_DATA: Final = FrozenDict()  # the empty metadata and provider_data of most rows, shared


def _message_from_row(session_id: str, row: Sequence[Any], unpack: Callable[[bytes], str]) -> Message:
    """A stored row as a Message, built without re-running the checks it passed when stored."""
    seq, message_id, kind, created_at, body, extra_json = row[:6]
    if type(message_id) is bytes:  # see schema.packed_id
        message_id = message_id.hex()
    if type(body) is bytes:  # a zstd frame: see compression.Codec
        body = unpack(body)
    role, status, has_parts = _KINDS[kind]
    parts = load_parts(body) if has_parts else (_new_text(text=body, provider_data=_NO_DATA),)
    if extra_json is None:
        return _new_message(
            session_id=session_id, seq=seq, role=role, parts=parts, id=message_id, created_at=_from_iso(created_at),
            usage=None, status=status, error=None, provider=None, model=None, metadata=_NO_DATA,
        )  # fmt: skip
    extra = json.loads(extra_json)
    usage = extra.get("usage")
    return _new_message(
        session_id=session_id,
        seq=seq,
        role=role,
        parts=parts,
        id=message_id,
        created_at=_from_iso(created_at),
        usage=None if usage is None else _usage(usage),
        status=status,
        error=extra.get("error"),
        provider=extra.get("provider"),
        model=extra.get("model"),
        metadata=extra.get("metadata") or _NO_DATA,
    )


def _hit(row: Sequence[Any]) -> SearchHit:
    session_id, seq, message_id, kind, created_at, snippet, user_id, title, provider, model = row
    return SearchHit(
        session_id=_given_id(session_id), seq=seq, role=_KINDS[kind][0], created_at=_from_iso(created_at),
        snippet=snippet, message_id=_given_id(message_id), title=title, user_id=user_id, provider=provider,
        model=model,
    )  # fmt: skip


def _replaced(revision: Revision) -> str:
    """A revision's ``replaced`` column: its messages as a JSON array."""
    return json.dumps([dump(message) for message in revision.replaced], ensure_ascii=False, separators=(",", ":"))


def _revision_from_row(session_id: str, row: Sequence[Any]) -> Revision:
    _, number, after_seq, added, created_us, replaced = row
    try:
        messages = tuple(load(data, Message) for data in json.loads(replaced))
    except (ValueError, KeyError, TypeError, DataFormatError) as exc:
        raise DataFormatError(
            f"revision {number} of session {session_id!r} is damaged in the database: {exc}"
        ) from None
    return Revision(session_id, number, after_seq, messages, added, created_at=from_us(created_us))


def _usage(stored: list[Any]) -> Usage:
    """A message's usage as :func:`_extra` stored it: ``[input, output, cached, cost]``."""
    cost = stored[3] if len(stored) > 3 else None
    return _new_usage(input_tokens=stored[0], output_tokens=stored[1], cached_tokens=stored[2], cost=cost)
