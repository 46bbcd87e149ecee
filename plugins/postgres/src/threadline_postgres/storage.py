"""Sessions and messages in PostgreSQL, through an ``asyncpg`` pool. An append is one
statement: the session's count moves on only when it is the count the messages follow, and
the messages are inserted in the same statement, so that two writers never interleave and
no lock is held between round trips."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Final, ParamSpec, TypeVar

import asyncpg
import attrs

from threadline.plugin import (
    DataFormatError,
    DeletedCounts,
    FrozenDict,
    HistoryCache,
    Message,
    MessageStatus,
    Revision,
    Role,
    SessionNotFound,
    SessionPage,
    SessionQuery,
    SessionRecord,
    StorageConflict,
    StorageEvent,
    StorageUnavailable,
    Text,
    TurnLease,
    Usage,
    check_replacement,
    check_revision_follows,
    dump,
    dump_parts,
    dumps,
    listed_sessions,
    load,
    load_parts,
    make_cursor,
    message_extra,
    next_lease,
    next_version,
    read_cursor,
    read_event,
    settled,
    unchecked_constructor,
    utcnow,
)
from threadline_postgres import PostgresConfig, password_of, redacted
from threadline_postgres.schema import events_channel, migrate

SESSION_COLUMNS: Final = (
    "tenant, id, user_id, status, updated_at, version, message_count, "
    "input_tokens, output_tokens, cached_tokens, cost, record"
)
MESSAGE_COLUMNS: Final = "seq, id, role, status, created_at, text, parts, extra"
_COPY_ROWS: Final = 5_000  # messages an import copies in at a time
log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
#: the errors that mean the server or the connection is gone, not the statement wrong
_GONE = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection whose server went away between two uses
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)
#: said again in threadline's words: the connection gone, a statement too long, a value unstorable
_TRANSLATED = (*_GONE, asyncpg.QueryCanceledError, asyncpg.DataError)


def _settled(write: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """A write that a cancellation does not leave under way on the server: it runs as a task
    of its own, and the caller, cancelled (however often), waits for it to commit or give
    up before the cancellation goes on."""

    @functools.wraps(write)
    async def whole(*args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        task: asyncio.Task[T] = loop.create_task(write(*args, **kwargs))
        done = loop.create_future()  # what the caller awaits: its cancellation stops here
        task.add_done_callback(functools.partial(_wake, done))
        try:
            await done
        except asyncio.CancelledError:
            await settled(task)  # the caller's cancellation is what it raises, not the write's error
            raise
        return task.result()

    return whole


def _wake(done: asyncio.Future[None], _task: object) -> None:
    if not done.done():
        done.set_result(None)


class PostgresStorage:
    """The ``postgres`` backend."""

    def __init__(self, config: PostgresConfig | None = None) -> None:
        self.config = config or PostgresConfig()
        self._pool: asyncpg.Pool | None = None
        history = self.config.history_cache
        self._cache = HistoryCache(history) if history else None
        #: the schema's name as statements write it: quoted (a keyword is a name too)
        self.schema = f'"{self.config.schema}"'
        self._sql = _Statements(self.schema)
        #: the channel this schema's changes are NOTIFYed on
        self.channel = events_channel(self.config.schema)

    def __repr__(self) -> str:
        return f"PostgresStorage({redacted(self.config.dsn)!r}, schema={self.config.schema!r})"

    # -- opening ----------------------------------------------------------------------

    async def open(self) -> None:
        config = self.config
        settings = {
            "statement_timeout": str(max(1, round(config.statement_timeout * 1000)) if config.statement_timeout else 0),
            "application_name": f"threadline {config.schema}",  # in pg_stat_activity
            "threadline.notify": "on" if config.notify else "off",  # read by the triggers of migration 4
        }
        try:
            self._pool = await asyncpg.create_pool(
                config.dsn, min_size=config.min_size, max_size=config.max_size, server_settings=settings
            )
            async with self._pool.acquire() as connection:
                await migrate(connection, config.schema)
        except BaseException as exc:
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
            raise self._translate(exc, f"could not open schema {config.schema!r}") from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _translate(self, exc: BaseException, opening: str | None = None) -> BaseException:
        """A driver's error as threadline's, never with the password in it. ``opening``: what
        was being opened, whose any other server error (a dsn setting refused, too many
        connections) is ``StorageUnavailable`` too."""
        where = redacted(self.config.dsn)
        if isinstance(exc, _GONE):
            return StorageUnavailable(f"PostgreSQL at {where} is not reachable: {_without_password(exc, self)}")
        if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
            return StorageUnavailable(f"PostgreSQL at {where} refused the login: {exc}")
        if isinstance(exc, asyncpg.InvalidCatalogNameError):
            return StorageUnavailable(f"PostgreSQL at {where}: {exc}; create the database first")
        if isinstance(exc, asyncpg.QueryCanceledError):
            return StorageUnavailable(
                f"PostgreSQL at {where} stopped a statement that ran past statement_timeout "
                f"({self.config.statement_timeout:g} s): {exc}"
            )
        if isinstance(exc, asyncpg.DataError):
            return DataFormatError(
                f"PostgreSQL cannot store this: {exc}; an id, a tenant or a user with a NUL character in it "
                "cannot be stored"
            )
        if isinstance(exc, ValueError | TypeError | OverflowError):  # an unreadable DSN (its words: a password?)
            return StorageUnavailable(
                f"cannot read the dsn {where}: is the port a number up to 65535? percent-encode a password "
                f"with / # ? @ : or a space in it (as %2F %23 %3F %40 %3A %20)"
            )
        if opening is not None and isinstance(exc, asyncpg.PostgresError):
            return StorageUnavailable(f"PostgreSQL at {where} {opening}: {exc}")
        return exc

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL storage is not open")
        return self._pool

    async def _run(self, method: str, *arguments: Any) -> Any:
        """``method`` (``fetch``, ``fetchrow``, ``fetchval``, ``execute``) of a pooled connection."""
        try:
            async with self.pool.acquire() as connection:
                try:
                    return await getattr(connection, method)(*arguments)
                except _GONE:
                    _drop(connection)
                    raise
        except _TRANSLATED as exc:
            raise self._translate(exc) from None

    # -- sessions -----------------------------------------------------------------------

    @_settled
    async def create_session(self, session: SessionRecord) -> SessionRecord:
        stored = attrs.evolve(session, message_count=0, usage=Usage(), version=1)
        try:
            await self._run("execute", self._sql.insert_session, *_session_row(stored))
        except asyncpg.UniqueViolationError:
            raise StorageConflict(f"session {session.id!r} exists already in tenant {session.tenant!r}") from None
        return stored

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        row = await self._run("fetchrow", self._sql.get_session, tenant, session_id)
        if row is None:
            raise SessionNotFound(session_id, tenant)
        return _session_from_row(row)

    @_settled
    async def update_session(self, session: SessionRecord) -> SessionRecord:
        async with self._transaction() as connection:
            row = await connection.fetchrow(self._sql.get_session_for_update, session.tenant, session.id)
            if row is None:
                raise SessionNotFound(session.id, session.tenant)
            updated = next_version(_session_from_row(row), session)
            await connection.execute(
                self._sql.update_session, updated.tenant, updated.id, updated.user_id, updated.status.value,
                updated.updated_at, updated.version, _storable(dumps(updated)),
            )  # fmt: skip
        return updated

    @_settled
    async def delete_session(self, tenant: str, session_id: str) -> None:
        if await self._run("execute", self._sql.delete_session, tenant, session_id) == "DELETE 0":
            raise SessionNotFound(session_id, tenant)

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        sql, parameters = self.listing(query)
        rows = await self._run("fetch", sql, *parameters)
        page = rows[: query.limit]
        items = listed_sessions(page, _session_from_row)
        return SessionPage(items, make_cursor(_listed(page[-1])) if len(rows) > query.limit else None)

    def listing(self, query: SessionQuery) -> tuple[str, list[Any]]:
        """The statement of a listing and its parameters: one more row than a page, to know
        whether another follows. Each filter is a seek on one of the sessions' indexes."""
        where: list[str] = ["tenant = $1"]
        parameters: list[Any] = [query.tenant]

        def condition(sql: str, *values: Any) -> None:
            for value in values:
                parameters.append(value)
                sql = sql.replace("?", f"${len(parameters)}", 1)
            where.append(sql)

        if query.user_id is not None:
            condition("user_id = ?", query.user_id)
        if query.status is not None:
            condition("status = ?", query.status.value)
        if query.updated_after is not None:
            condition("updated_at > ?", query.updated_after)
        if query.updated_before is not None:
            condition("updated_at < ?", query.updated_before)
        if query.cursor:
            updated_at, last_id = read_cursor(query.cursor)
            condition("(updated_at, id) < (?, ?)", updated_at, last_id)
        parameters.append(query.limit + 1)
        sql = (
            f"SELECT {SESSION_COLUMNS} FROM {self.schema}.sessions WHERE {' AND '.join(where)} "
            f"ORDER BY updated_at DESC, id DESC LIMIT ${len(parameters)}"
        )
        return sql, parameters

    @_settled
    async def delete_user(self, tenant: str, user_id: str) -> DeletedCounts:
        sessions, messages = await self._run("fetchrow", self._sql.delete_user, tenant, user_id)
        return DeletedCounts(sessions, messages)

    # -- messages -----------------------------------------------------------------------

    @_settled
    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        if not messages:  # nothing to write: only whether the session exists to say
            await self._require_session(tenant, session_id)
            return
        _check_numbering(session_id, messages)
        columns = [list(column) for column in zip(*map(_message_row, messages), strict=True)]
        usage = _usage_sum(messages)
        status = await self._run(
            "execute",
            self._sql.append,
            tenant, session_id, len(messages), messages[0].seq - 1, utcnow(),
            usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cost, *columns,
        )  # fmt: skip
        if status == "INSERT 0 0":
            await self._refuse_append(tenant, session_id, messages)

    async def _refuse_append(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        count = await self._run("fetchval", self._sql.message_count, tenant, session_id)
        if count is None:
            raise SessionNotFound(session_id, tenant)
        expected = list(range(count + 1, count + 1 + len(messages)))
        raise StorageConflict(
            f"session {session_id!r} has {count} messages; appended seqs must be {expected}, "
            f"got {[m.seq for m in messages]}"
        )

    async def _require_session(self, tenant: str, session_id: str) -> None:
        if await self._run("fetchval", self._sql.message_count, tenant, session_id) is None:
            raise SessionNotFound(session_id, tenant)

    async def get_messages(
        self, tenant: str, session_id: str, *, after_seq: int = 0, last: int | None = None
    ) -> list[Message]:
        if last is not None and last <= 0:
            await self._require_session(tenant, session_id)
            return []
        after_seq = max(after_seq, 0)
        key = (tenant, session_id)
        ranged = after_seq or last is not None
        if self._cache is None or (key not in self._cache and ranged):
            return await self._fetch_messages(tenant, session_id, after_seq, last)
        if key not in self._cache:
            return await self._fetch_and_cache(tenant, session_id)
        row = await self._run("fetchrow", self._sql.revision, tenant, session_id)
        if row is None:
            self._cache.drop(key)
            raise SessionNotFound(session_id, tenant)
        count, revision = row
        history = self._cache.get(key, revision, count)
        if history is None:  # stale: a status changed, or the session was made again
            if ranged:
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
        rows = await self._run("fetch", self._sql.history_and_revision, tenant, session_id)
        if not rows:
            self._cache.drop((tenant, session_id))
            raise SessionNotFound(session_id, tenant)
        revision = rows[0]["messages_rev"]
        history = _messages_from_rows(session_id, [row for row in rows if row["seq"] is not None])
        self._cache.put((tenant, session_id), revision, history)
        return list(history)

    async def _fetch_messages(self, tenant: str, session_id: str, after_seq: int, last: int | None) -> list[Message]:
        if last is None:
            rows = await self._run("fetch", self._sql.messages_after, tenant, session_id, after_seq)
        else:
            rows = await self._run("fetch", self._sql.messages_last, tenant, session_id, after_seq, last)
            rows.reverse()
        if not rows:
            await self._require_session(tenant, session_id)
        return _messages_from_rows(session_id, rows)

    @_settled
    async def set_message_status(
        self, tenant: str, session_id: str, seq: int, status: str, error: str | None = None
    ) -> None:
        """The status and error of message ``seq``, and the session's revision moved, in one
        transaction, so that no reader caches a history between the two."""
        status = MessageStatus(status).value
        async with self._transaction() as connection:
            row = await connection.fetchrow(self._sql.extra_for_update, tenant, session_id, seq)
            if row is None:
                if await connection.fetchval(self._sql.message_count, tenant, session_id) is None:
                    raise SessionNotFound(session_id, tenant)
                raise StorageConflict(f"session {session_id!r} has no message {seq}")
            extra = json.loads(row["extra"]) if row["extra"] is not None else {}
            extra.pop("error", None)
            if error is not None:
                extra["error"] = error
            stored = _storable(json.dumps(extra, ensure_ascii=False, separators=(",", ":"))) if extra else None
            await connection.execute(self._sql.set_status, tenant, session_id, seq, status, stored)
            await connection.execute(self._sql.move_revision, tenant, session_id)

    @_settled
    async def replace_messages(
        self, tenant: str, session_id: str, after_seq: int, messages: Sequence[Message], *, count: int
    ) -> Revision:
        """In one transaction, the session's row locked first: the replaced rows become a
        revision and go, the new ones come, and the revision of the cache moves."""
        async with self._transaction() as connection:
            stored = await connection.fetchval(self._sql.counts_for_update, tenant, session_id)
            if stored is None:
                raise SessionNotFound(session_id, tenant)
            check_replacement(session_id, stored, after_seq, messages, count)
            rows = await connection.fetch(self._sql.messages_after, tenant, session_id, after_seq)
            replaced = tuple(_messages_from_rows(session_id, rows))
            created_at = utcnow()
            number = await connection.fetchval(
                self._sql.insert_revision, tenant, session_id, after_seq, len(messages), created_at,
                _replaced(replaced),
            )  # fmt: skip
            await connection.execute(self._sql.delete_messages_after, tenant, session_id, after_seq)
            await connection.execute(self._sql.replaced, tenant, session_id, after_seq + len(messages), created_at)
            if messages:
                columns = [list(column) for column in zip(*map(_message_row, messages), strict=True)]
                await connection.execute(self._sql.insert_messages, tenant, session_id, *columns)
        if self._cache is not None:
            self._cache.drop((tenant, session_id))
        return Revision(session_id, number, after_seq, replaced, len(messages), created_at=created_at)

    async def get_revisions(self, tenant: str, session_id: str) -> list[Revision]:
        rows = await self._run("fetch", self._sql.revisions, tenant, session_id)
        if not rows:
            raise SessionNotFound(session_id, tenant)
        try:
            return [_revision(session_id, row) for row in rows if row["number"] is not None]
        except (ValueError, KeyError, TypeError, DataFormatError) as exc:
            raise DataFormatError(f"a revision of session {session_id!r} is damaged in the database: {exc}") from None

    # -- turn leases ----------------------------------------------------------------------

    @_settled
    async def take_turn(self, tenant: str, session_id: str, holder: str, seconds: float) -> bool:
        async with self._transaction() as connection:
            try:
                await connection.execute(self._sql.make_lease, tenant, session_id)
            except asyncpg.ForeignKeyViolationError:
                raise SessionNotFound(session_id, tenant) from None
            row = await connection.fetchrow(self._sql.lease_for_update, tenant, session_id)
            lease = TurnLease(row["holder"], row["until"], row["waiter"], row["waiter_until"])
            taken, after = next_lease(lease, holder, row["now"], seconds)
            if after != lease:
                await connection.execute(
                    self._sql.store_lease, tenant, session_id, after.holder, after.until, after.waiter,
                    after.waiter_until,
                )  # fmt: skip
        return taken

    @_settled
    async def end_turn(self, tenant: str, session_id: str, holder: str) -> None:
        await self._run("execute", self._sql.end_turn, tenant, session_id, holder)

    # -- events ---------------------------------------------------------------------------

    async def events(self, tenant: str | None = None) -> AsyncIterator[StorageEvent]:
        """Every change to the sessions of ``tenant`` (``None``: of every tenant) in this
        schema, made by any process whose writes notify (``notify = true``), as it happens,
        from the first iteration (which starts listening) until the caller stops. It listens
        on a connection of its own, outside the pool; that connection lost, or not to be
        had, is ``StorageUnavailable``. See :class:`threadline.StorageEvent` for what a
        listener may miss."""
        heard: asyncio.Queue[str | None] = asyncio.Queue()
        connection = await self._listening_connection(lambda payload: heard.put_nowait(payload))
        try:
            connection.add_termination_listener(lambda _: heard.put_nowait(None))
            while (payload := await heard.get()) is not None:
                try:
                    event = read_event(payload)
                except DataFormatError as exc:
                    log.warning("left out a notification on %s that is not an event: %s", self.channel, exc)
                    continue
                if tenant is None or event.tenant == tenant:
                    yield event
            raise StorageUnavailable(f"PostgreSQL at {redacted(self.config.dsn)} closed the events connection")
        finally:
            connection.terminate()

    async def _listening_connection(self, hear: Callable[[str], None]) -> asyncpg.Connection:
        """A connection of its own that LISTENs on the schema's channel, each payload to ``hear``."""
        connection = None
        try:
            connection = await asyncpg.connect(
                self.config.dsn, server_settings={"application_name": f"threadline events {self.config.schema}"}
            )
            await connection.add_listener(self.channel, lambda *delivered: hear(delivered[-1]))
        except BaseException as exc:
            if connection is not None:
                connection.terminate()
            raise self._translate(exc, "could not listen for events") from None
        return connection

    # -- export and import ----------------------------------------------------------------

    async def export_records(self, tenant: str | None = None) -> AsyncIterator[SessionRecord | Message | Revision]:
        """Every session, its messages and its revisions, from one snapshot of the database."""
        schema = self.schema
        where, parameters = ("WHERE tenant = $1", [tenant]) if tenant is not None else ("", [])
        try:
            async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
                sessions = connection.cursor(
                    f"SELECT {SESSION_COLUMNS} FROM {schema}.sessions {where} ORDER BY tenant, id", *parameters
                )
                async for row in sessions:
                    session = _session_from_row(row)
                    yield session
                    messages = await connection.fetch(self._sql.messages_after, session.tenant, session.id, 0)
                    for message in _messages_from_rows(session.id, messages):
                        yield message
                    for revision in await connection.fetch(self._sql.revisions, session.tenant, session.id):
                        if revision["number"] is not None:
                            yield _revision(session.id, revision)
        except _GONE as exc:
            raise self._translate(exc) from None

    @_settled
    async def import_records(self, records: AsyncIterable[SessionRecord | Message | Revision]) -> int:
        """All of ``records`` in one transaction, or, when one is wrong, none."""
        async with self._transaction() as connection:
            return await _Importer(connection, self.config.schema, self.schema).run(records)

    # -- transactions ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection in a transaction, the driver's connection errors as threadline's."""
        try:
            async with self.pool.acquire() as connection:
                try:
                    async with connection.transaction():
                        yield connection
                except _GONE:
                    _drop(connection)
                    raise
        except _TRANSLATED as exc:
            raise self._translate(exc) from None


@attrs.define
class _Importer:
    """Copies exported records in (``COPY``), in the caller's transaction, checking that
    messages follow their session in seq order, and revisions in number order; a session's
    counts are those of the messages it brings."""

    connection: asyncpg.Connection
    schema: str
    quoted: str
    current: SessionRecord | None = None
    messages: list[Message] = attrs.Factory(list)
    session_rows: list[tuple[Any, ...]] = attrs.Factory(list)
    message_rows: list[tuple[Any, ...]] = attrs.Factory(list)
    revisions: int = 0  # of the current session
    revision_rows: list[tuple[Any, ...]] = attrs.Factory(list)

    async def run(self, records: AsyncIterable[SessionRecord | Message | Revision]) -> int:
        count = 0
        async for record in records:
            count += 1
            if isinstance(record, SessionRecord):
                self._close_session()
                self.current = record
                if len(self.message_rows) + len(self.revision_rows) >= _COPY_ROWS:
                    await self._copy()
            elif isinstance(record, Revision):
                session = self.current
                check_revision_follows(record, session, self.revisions)
                assert session is not None  # else the check raised
                self.revisions += 1
                self.revision_rows.append((session.tenant, *_revision_row(record)))
            else:
                self._message(record)
        self._close_session()
        await self._copy()
        return count

    def _message(self, message: Message) -> None:
        if self.current is None or message.session_id != self.current.id:
            raise DataFormatError(f"message {message.id!r} does not follow its session {message.session_id!r}")
        expected = len(self.messages) + 1
        if message.seq != expected:
            raise DataFormatError(f"message {message.id!r} has seq {message.seq}; expected {expected}")
        self.messages.append(message)
        self.message_rows.append((self.current.tenant, self.current.id, *_message_row(message)))

    def _close_session(self) -> None:
        session, messages = self.current, self.messages
        if session is not None:
            usage = session.usage if self.revisions else _usage_sum(messages)  # edits dropped spent replies
            counted = attrs.evolve(session, message_count=len(messages), usage=usage)
            self.session_rows.append(_session_row(counted))
        self.current, self.messages, self.revisions = None, [], 0

    async def _copy(self) -> None:
        """The sessions so far, then their messages (which refer to them)."""
        tenants, ids = [row[0] for row in self.session_rows], [row[1] for row in self.session_rows]
        existing = await self.connection.fetchval(
            f"SELECT s.id FROM {self.quoted}.sessions s JOIN unnest($1::text[], $2::text[]) AS n(tenant, id) "
            "ON s.tenant = n.tenant AND s.id = n.id LIMIT 1",
            tenants,
            ids,
        )
        if existing is not None:
            raise StorageConflict(f"session {existing!r} exists already; nothing was imported")
        try:
            await self.connection.copy_records_to_table(
                "sessions", schema_name=self.schema, columns=SESSION_COLUMNS.split(", "), records=self.session_rows
            )
        except asyncpg.UniqueViolationError as exc:
            raise StorageConflict(f"a session exists already ({exc.detail}); nothing was imported") from None
        await self.connection.copy_records_to_table(
            "messages", schema_name=self.schema, columns=["tenant", "session_id", *MESSAGE_COLUMNS.split(", ")],
            records=self.message_rows,
        )  # fmt: skip
        await self.connection.copy_records_to_table(
            "revisions", schema_name=self.schema, columns=list(_REVISION_COLUMNS), records=self.revision_rows
        )
        self.session_rows, self.message_rows, self.revision_rows = [], [], []


def _inserted(s: str, first: int) -> str:
    """An INSERT of the messages of session ($1, $2), given as one array a column from
    parameter ``first`` on."""
    arrays = ", ".join(
        f"${first + i}::{kind}[]" for i, kind in enumerate(("int", *["text"] * 3, "timestamptz", *["text"] * 3))
    )
    columns = f"tenant, session_id, {MESSAGE_COLUMNS}"
    return f"INSERT INTO {s}.messages ({columns}) SELECT $1, $2, m.* FROM unnest({arrays}) AS m"


class _Statements:
    """Every statement but the listing's, with the schema's name written in."""

    def __init__(self, s: str) -> None:
        self.insert_session = (
            f"INSERT INTO {s}.sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )
        self.get_session = f"SELECT {SESSION_COLUMNS} FROM {s}.sessions WHERE tenant = $1 AND id = $2"
        self.get_session_for_update = f"{self.get_session} FOR UPDATE"
        self.update_session = (
            f"UPDATE {s}.sessions SET user_id = $3, status = $4, updated_at = $5, version = $6, record = $7 "
            "WHERE tenant = $1 AND id = $2"
        )
        self.delete_session = f"DELETE FROM {s}.sessions WHERE tenant = $1 AND id = $2"
        self.delete_user = (
            f"WITH gone AS (DELETE FROM {s}.sessions WHERE tenant = $1 AND user_id = $2 RETURNING message_count) "
            "SELECT count(*)::int, coalesce(sum(message_count), 0)::int FROM gone"
        )
        self.message_count = f"SELECT message_count FROM {s}.sessions WHERE tenant = $1 AND id = $2"
        # the session's count moves on only from the count the messages follow; the INSERT
        # takes its rows only when it did: one statement, one round trip, no lock between
        self.append = f"""WITH counted AS (
                UPDATE {s}.sessions SET
                    message_count = message_count + $3,
                    updated_at = greatest($5, updated_at),
                    input_tokens = input_tokens + $6,
                    output_tokens = output_tokens + $7,
                    cached_tokens = cached_tokens + $8,
                    cost = CASE WHEN $9::float8 IS NULL THEN cost ELSE coalesce(cost, 0) + $9 END
                WHERE tenant = $1 AND id = $2 AND message_count = $4
                RETURNING 1
            )
            {_inserted(s, 10)} WHERE EXISTS (SELECT 1 FROM counted)"""
        self.counts_for_update = f"SELECT message_count FROM {s}.sessions WHERE tenant = $1 AND id = $2 FOR UPDATE"
        self.insert_messages = _inserted(s, 3)
        self.delete_messages_after = f"DELETE FROM {s}.messages WHERE tenant = $1 AND session_id = $2 AND seq > $3"
        self.replaced = (
            f"UPDATE {s}.sessions SET message_count = $3, updated_at = greatest($4, updated_at), "
            "messages_rev = messages_rev + 1, version = version + 1 WHERE tenant = $1 AND id = $2"
        )
        self.insert_revision = (
            f"INSERT INTO {s}.revisions SELECT $1, $2, coalesce(max(number), 0) + 1, $3, $4, $5, $6 "
            f"FROM {s}.revisions WHERE tenant = $1 AND session_id = $2 RETURNING number"
        )
        self.revisions = (
            f"SELECT number, after_seq, added, r.created_at, replaced FROM {s}.sessions s "
            f"LEFT JOIN {s}.revisions r ON r.tenant = s.tenant AND r.session_id = s.id "
            "WHERE s.tenant = $1 AND s.id = $2 ORDER BY number"
        )
        self.messages_after = (
            f"SELECT {MESSAGE_COLUMNS} FROM {s}.messages WHERE tenant = $1 AND session_id = $2 AND seq > $3 "
            "ORDER BY seq"
        )
        self.messages_last = (
            f"SELECT {MESSAGE_COLUMNS} FROM {s}.messages WHERE tenant = $1 AND session_id = $2 AND seq > $3 "
            "ORDER BY seq DESC LIMIT $4"
        )
        self.extra_for_update = (
            f"SELECT extra FROM {s}.messages WHERE tenant = $1 AND session_id = $2 AND seq = $3 FOR UPDATE"
        )
        self.set_status = (
            f"UPDATE {s}.messages SET status = $4, extra = $5 WHERE tenant = $1 AND session_id = $2 AND seq = $3"
        )
        self.move_revision = f"UPDATE {s}.sessions SET messages_rev = messages_rev + 1 WHERE tenant = $1 AND id = $2"
        self.revision = f"SELECT message_count, messages_rev FROM {s}.sessions WHERE tenant = $1 AND id = $2"
        self.history_and_revision = (
            f"SELECT m.seq, m.id, m.role, m.status, m.created_at, m.text, m.parts, m.extra, s.messages_rev "
            f"FROM {s}.sessions s LEFT JOIN {s}.messages m ON m.tenant = s.tenant AND m.session_id = s.id "
            "WHERE s.tenant = $1 AND s.id = $2 ORDER BY m.seq"
        )
        self.make_lease = f"INSERT INTO {s}.turn_leases (tenant, session_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        self.lease_for_update = (
            f"SELECT holder, until, waiter, waiter_until, extract(epoch FROM clock_timestamp())::float8 AS now "
            f"FROM {s}.turn_leases WHERE tenant = $1 AND session_id = $2 FOR UPDATE"
        )
        self.store_lease = (
            f"UPDATE {s}.turn_leases SET holder = $3, until = $4, waiter = $5, waiter_until = $6 "
            "WHERE tenant = $1 AND session_id = $2"
        )
        self.end_turn = (
            f"UPDATE {s}.turn_leases SET holder = NULL, until = 0 WHERE tenant = $1 AND session_id = $2 AND holder = $3"
        )


# -- rows ---------------------------------------------------------------------------------


def _drop(connection: Any) -> None:
    """Close a connection whose server went away, so that the pool opens a new one in its
    place (the pool may have let it go already)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        connection.terminate()


def _without_password(exc: BaseException, storage: PostgresStorage) -> str:
    text = str(exc) or type(exc).__name__
    password = password_of(storage.config.dsn)
    return text.replace(password, "***") if password else text


def _check_numbering(session_id: str, messages: Sequence[Message]) -> None:
    first = messages[0].seq
    for offset, message in enumerate(messages):
        if message.session_id != session_id:
            raise StorageConflict(
                f"message {message.id!r} belongs to session {message.session_id!r}, not {session_id!r}"
            )
        if message.seq != first + offset:
            raise StorageConflict(
                f"appended messages must be numbered consecutively for {session_id!r}, got {[m.seq for m in messages]}"
            )


_NO_USAGE: Final = Usage()  # frozen: shared by every sum of messages without usage


def _usage_sum(messages: Sequence[Message]) -> Usage:
    total = _NO_USAGE
    for message in messages:
        if message.usage is not None:
            total += message.usage
    return total


def _session_row(session: SessionRecord) -> tuple[Any, ...]:
    usage = session.usage
    return (
        session.tenant, session.id, session.user_id, session.status.value, session.updated_at, session.version,
        session.message_count, usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cost,
        _storable(dumps(session)),
    )  # fmt: skip


def _session_from_row(row: Any) -> SessionRecord:
    try:
        data = json.loads(row["record"])
        data.update(
            updated_at=row["updated_at"].isoformat(),
            version=row["version"],
            message_count=row["message_count"],
            usage={
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "cached_tokens": row["cached_tokens"],
                "cost": row["cost"],
            },
        )
        session = load(data, SessionRecord)
        if (session.tenant, session.id) != (row["tenant"], row["id"]):
            raise ValueError(f"its record names session {session.id!r} of tenant {session.tenant!r}")
        return session
    except (ValueError, KeyError, TypeError, AttributeError, DataFormatError) as exc:
        raise DataFormatError(
            f"session {row['id']!r} of tenant {row['tenant']!r} is damaged in the database: {exc}"
        ) from None


#: what a PostgreSQL text cannot hold: NUL, and a surrogate with no pair (not UTF-8)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(json_text: str) -> str:
    """JSON as PostgreSQL can store it: a NUL or a lone surrogate (only ever inside a JSON
    string) written as its ``\\u`` escape, which reads back the same."""
    if _plain_storable(json_text):
        return json_text
    return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", json_text)


def _plain_storable(text: str) -> bool:
    """No NUL, no lone surrogate: ASCII told in C at once, other text by the pattern."""
    return (text.isascii() and "\x00" not in text) or _UNSTORABLE.search(text) is None


def _listed(row: Any) -> SessionRecord:
    """Where a listing goes on from: the last row's activity time and id, damaged or not."""
    return SessionRecord(id=row["id"], tenant=row["tenant"], updated_at=row["updated_at"])


def _message_row(message: Message) -> tuple[Any, ...]:
    parts = message.parts
    plain = len(parts) == 1 and type(parts[0]) is Text and not parts[0].provider_data
    if plain and not _plain_storable(parts[0].text):  # type: ignore[union-attr]
        plain = False  # kept as JSON, escaped
    extra = message_extra(message)
    return (
        message.seq, message.id, message.role.value, message.status.value, message.created_at,
        parts[0].text if plain else None, None if plain else _storable(dump_parts(parts)),  # type: ignore[union-attr]
        None if extra is None else _storable(json.dumps(extra, ensure_ascii=False, separators=(",", ":"))),
    )  # fmt: skip


_REVISION_COLUMNS: Final = ("tenant", "session_id", "number", "after_seq", "added", "created_at", "replaced")


def _revision_row(revision: Revision) -> tuple[Any, ...]:
    """A revision's row but its tenant."""
    return (revision.session_id, revision.number, revision.after_seq, revision.added, revision.created_at,
            _replaced(revision.replaced))  # fmt: skip


def _replaced(messages: Sequence[Message]) -> str:
    """A revision's ``replaced`` column: its messages as a JSON array."""
    return _storable(json.dumps([dump(m) for m in messages], ensure_ascii=False, separators=(",", ":")))


def _revision(session_id: str, row: Any) -> Revision:
    replaced = tuple(load(data, Message) for data in json.loads(row["replaced"]))
    return Revision(session_id, row["number"], row["after_seq"], replaced, row["added"], created_at=row["created_at"])


def _messages_from_rows(session_id: str, rows: Sequence[Any]) -> list[Message]:
    try:
        return [_message_from_row(session_id, row) for row in rows]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, DataFormatError) as exc:
        raise DataFormatError(f"a message of session {session_id!r} is damaged in the database: {exc}") from None


_new_message = unchecked_constructor(Message)
_new_text = unchecked_constructor(Text)
_new_usage = unchecked_constructor(Usage)
_ROLES: Final = {role.value: role for role in Role}
_STATUSES: Final = {status.value: status for status in MessageStatus}
_NO_DATA: Final = FrozenDict()  # the empty metadata and provider_data of most rows, shared


def _message_from_row(session_id: str, row: Any) -> Message:
    """A stored row as a Message, built without re-running the checks it passed when stored."""
    seq, message_id, role, status, created_at, text, parts_json, extra_json = row[:8]
    if parts_json is None and text is None:
        raise ValueError(f"message {seq} has neither text nor parts")
    parts = (_new_text(text=text, provider_data=_NO_DATA),) if parts_json is None else load_parts(parts_json)
    extra = json.loads(extra_json) if extra_json is not None else {}
    usage = extra.get("usage")
    return _new_message(
        session_id=session_id,
        seq=seq,
        role=_ROLES[role],
        parts=parts,
        id=message_id,
        created_at=created_at,  # asyncpg gives timestamptz in UTC
        usage=None if usage is None else _usage(usage),
        status=_STATUSES[status],
        error=extra.get("error"),
        provider=extra.get("provider"),
        model=extra.get("model"),
        metadata=extra.get("metadata") or _NO_DATA,
    )


def _usage(stored: list[Any]) -> Usage:
    """A message's usage as ``message_extra`` keeps it: ``[input, output, cached, cost]``."""
    cost = stored[3] if len(stored) > 3 else None
    return _new_usage(input_tokens=stored[0], output_tokens=stored[1], cached_tokens=stored[2], cost=cost)
