"""The ``redis`` storage: each write is one Lua script, atomic on the server, so that any
number of processes and machines share sessions without locks of their own.

Every key of a tenant starts with ``PREFIX{TENANT}`` (lua/common.lua has the layout): on
Redis Cluster all of a tenant's keys hash to one slot, so each script runs there unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any, cast

import attrs
import redis.asyncio as redis
from attrs import frozen
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import AuthenticationError, RedisClusterException, RedisError, ResponseError

from threadline.plugin import (
    WAITER_SECONDS,
    DataFormatError,
    DeletedCounts,
    HistoryCache,
    Message,
    MessageStatus,
    Revision,
    SessionNotFound,
    SessionPage,
    SessionQuery,
    SessionRecord,
    StorageConflict,
    StorageEvent,
    StorageUnavailable,
    Usage,
    check_replacement,
    check_revision_follows,
    dump_record,
    load,
    make_cursor,
    read_cursor,
    read_event,
    settled,
)
from threadline_redis import RedisConfig, shown_url
from threadline_redis.messages import decode_all, encode
from threadline_redis.script_queue import ClusterPipeline, OwnConnection, Replicas, ScriptQueue, whole

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the key layout this code writes; a database written by a newer one is refused, an older
#: one brought up to it (2: each session has a revision, 'rv', for the history cache)
SCHEMA_VERSION = 2
#: ZRANGE ... BYSCORE REV came in 6.2
MINIMUM_REDIS = (6, 2)
_RAISE_LAYOUT = (
    "if tonumber(redis.call('GET', KEYS[1]) or 0) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end"
)
#: the scripts that only read: they do not wait for replicas
READS = frozenset({"read", "list"})
SCRIPTS = (
    *("put_session", "update_session", "delete", "delete_user", "list"),
    *("append", "read", "set_status", "take_turn", "end_turn", "revisions", "replace"),
)


#: the session hash's fields a record is made from, as lua/common.lua lists them
FIELDS = ["r", "c", "n", "v", "u", "ti", "to", "tc", "cost"]


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(us: int | bytes) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def tag(tenant: str) -> str:
    """``tenant`` as it may stand between the braces of a hash tag: never empty, as Redis
    Cluster hashes a key with an empty tag whole."""
    return tenant.replace("%", "%25").replace("}", "%7D") or "%"


def untag(text: str) -> str:
    return "" if text == "%" else text.replace("%7D", "}").replace("%25", "%")


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _load_scripts(client: redis.Redis | RedisCluster) -> dict[str, AsyncScript]:
    folder = files("threadline_redis") / "lua"
    common = (folder / "common.lua").read_text()
    return {name: client.register_script(common + (folder / f"{name}.lua").read_text()) for name in SCRIPTS}


def _asks_for_password(exc: RedisError | RedisClusterException) -> bool:
    """A server that wants a password and got none answers NOAUTH, or refuses redis-py's HELLO."""
    return "NOAUTH" in str(exc) or "HELLO must be called with the client already authenticated" in str(exc)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in str(text).split(".")[:2])


def _usage(tokens: Sequence[bytes | None]) -> Usage:
    inputs, outputs, cached, cost = tokens
    return Usage(int(inputs or 0), int(outputs or 0), int(cached or 0), None if cost is None else float(cost))


def _session(fields: Sequence[bytes | None]) -> SessionRecord:
    """A session from its hash's FIELDS (lua/common.lua), read as SQLite reads its rows: with
    the record's own checks, not those for data from outside (``load_record``'s)."""
    record, created_at, count, version, updated_us, *usage = fields
    if record is None or created_at is None or count is None or version is None or updated_us is None:
        raise DataFormatError("its hash lacks a field")
    data = json.loads(record)
    data.pop("type", None)
    data.update(
        created_at=created_at.decode(), updated_at=from_us(updated_us).isoformat(), version=int(version),
        message_count=int(count), usage=attrs.asdict(_usage(usage)),
    )  # fmt: skip
    return load(data, SessionRecord)


def _usage_argument(messages: Sequence[Message]) -> str:
    """What append.lua adds to the session's usage: '' for nothing, else the token sums and
    then each message's cost, in order."""
    usages = [m.usage for m in messages if m.usage is not None]
    if not usages:
        return ""
    total = sum(usages, Usage())
    costs = [repr(u.cost) for u in usages if u.cost is not None]
    return " ".join([str(total.input_tokens), str(total.output_tokens), str(total.cached_tokens), *costs])


def _kept(revision: Revision) -> str:
    """A revision as lua/replace.lua keeps it (its messages' statuses in the messages)."""
    replaced = [encode(m) for m in revision.replaced]
    return json.dumps([revision.number, revision.after_seq, revision.added, to_us(revision.created_at), replaced, {}])


def _revision(session_id: str, entry: bytes) -> Revision:
    """A revision as lua/replace.lua keeps it: ``[number, after_seq, added, created_us,
    replaced, changes]`` (an empty Lua table is encoded as ``{}``)."""
    number, after_seq, added, created_us, replaced, changes = json.loads(entry)
    messages = decode_all(
        session_id, [m.encode() for m in replaced or ()], {k.encode(): v.encode() for k, v in (changes or {}).items()}
    )
    return Revision(session_id, number, after_seq, tuple(messages), added, created_at=from_us(created_us))


def _status_change(status: str, error: str | None) -> str:
    """A status change as the x: hash keeps it: the status, a newline, then "" for no error or
    "=" and the error."""
    return f"{MessageStatus(status).value}\n{'' if error is None else '=' + error}"


@frozen
class _Read:
    """What lua/read.lua answered: the session's count and revision (``None`` if it has
    none), its FIELDS (if asked for), its messages from ``first`` on, and its revisions as
    kept (if asked for)."""

    count: int
    revision: int | None
    fields: Sequence[bytes | None]
    first: int
    messages: list[Message]
    kept: Sequence[bytes] = ()


class RedisStorage:
    """Sessions and messages on a Redis server. Passes the full ``StorageContract``."""

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self._client: redis.Redis | RedisCluster | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._queue: ScriptQueue | None = None
        self._cache = HistoryCache(config.history_cache) if config.history_cache else None
        #: the pool's connections, bar the one the scripts take on a single server
        self._slots = asyncio.Semaphore(config.max_connections - (not config.cluster))

    def __repr__(self) -> str:
        return f"RedisStorage({shown_url(self.config.url)!r}, prefix={self.config.prefix!r})"

    # -- opening and closing ------------------------------------------------

    async def open(self) -> None:
        try:
            client = self._new_client()
        except (ValueError, TypeError):  # their text may hold a piece of the password: not shown
            raise StorageUnavailable(
                f"Redis URL {shown_url(self.config.url)} is not one redis-py can use: check its form "
                "(a password with /, #, ?, @ or % in it must be percent-encoded) and its query options"
            ) from None
        try:
            with self._translated():
                layout = await self._check_server(client)
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._scripts = _load_scripts(client)
        self._queue = ScriptQueue(self._transport(client))
        if layout < SCHEMA_VERSION:
            try:
                await self._upgrade(layout)
            except BaseException:
                await self.close()
                raise

    def _transport(self, client: redis.Redis | RedisCluster) -> OwnConnection | ClusterPipeline:
        replicas = Replicas(self.config.replicas, self.config.socket_timeout / 2)
        if isinstance(client, RedisCluster):
            return ClusterPipeline(client, replicas)
        pool = client.connection_pool
        # its own timeout, for a whole batch: redis-py's would start a task for every send
        connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        return OwnConnection(connection, self.config.socket_timeout, replicas)

    def _new_client(self) -> redis.Redis | RedisCluster:
        options: dict[str, Any] = {
            "max_connections": self.config.max_connections,
            "socket_timeout": self.config.socket_timeout,
            "socket_connect_timeout": self.config.socket_timeout,
        }
        if self.config.cluster:
            return RedisCluster.from_url(self.config.url, **options)
        return redis.Redis.from_url(self.config.url, **options)

    async def _check_server(self, client: redis.Redis | RedisCluster) -> int:
        """The key layout of the data under the prefix (a new prefix is given this code's)."""
        info = await client.info("server")  # on a cluster, one node's: nodes run one version
        version = _version(info["redis_version"])
        if version < MINIMUM_REDIS:
            raise StorageUnavailable(
                f"Redis at {shown_url(self.config.url)} is version {info['redis_version']}; "
                f"threadline-redis needs {'.'.join(map(str, MINIMUM_REDIS))} or newer"
            )
        key = f"{self.config.prefix}schema"
        await client.set(key, SCHEMA_VERSION, nx=True)
        found = int(await client.get(key) or 0)
        if found > SCHEMA_VERSION:
            raise StorageUnavailable(
                f"the threadline data under prefix {self.config.prefix!r} at {shown_url(self.config.url)} has "
                f"key layout {found}; this threadline-redis knows up to {SCHEMA_VERSION} (upgrade threadline-redis)"
            )
        return found

    async def _upgrade(self, layout: int) -> None:
        """Bring data of key layout ``layout`` up to this code's, in steps each safe to run
        again (by another process opening at the same time, or after a failed try)."""
        log.warning("upgrading threadline data under prefix %r from key layout %d to %d",
                    self.config.prefix, layout, SCHEMA_VERSION)  # fmt: skip
        if layout < 2:
            await self._retag_empty_tenant()
            for tenant in await self._tenants():
                await self._give_revisions(tenant)
        async with self._command() as client:  # unless a newer layout is there already
            await client.eval(_RAISE_LAYOUT, 1, f"{self.config.prefix}schema", SCHEMA_VERSION)

    async def _retag_empty_tenant(self) -> None:
        """Layout 1 tagged the tenant "" as ``{}``, which Redis Cluster does not take as a tag:
        each such key is copied to its new name (DUMP and RESTORE: the two names may be in
        different slots) and deleted; one another process moved meanwhile is passed over."""
        old = f"{self.config.prefix}{{}}"
        async with self._command() as client:
            keys = {key async for key in client.scan_iter(match=f"{glob_escape(old)}*", count=1000)}
            for key in keys:
                value, ttl = await client.dump(key), await client.pttl(key)
                if value is not None:
                    with contextlib.suppress(ResponseError):  # BUSYKEY: another process copied it
                        await client.restore(self._base("") + key.decode()[len(old) :], max(ttl, 0), value)
                    await client.delete(key)

    async def _give_revisions(self, tenant: str) -> None:
        listing = f"{self._base(tenant)}i:all"
        async with self._command() as client:
            ids = cast("list[bytes]", await client.zrange(listing, 0, -1))
        for start in range(0, len(ids), 1000):
            await self._script("revisions", listing, self._base(tenant), *ids[start : start + 1000])

    async def close(self) -> None:
        if self._queue is not None:
            queue, self._queue = self._queue, None  # no new script starts: "not open"
            await queue.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _unavailable(self, exc: RedisError | RedisClusterException) -> StorageUnavailable | DataFormatError:
        if isinstance(exc, ResponseError) and str(exc).startswith("DAMAGED"):  # lua/common.lua's stored()
            return DataFormatError(
                f"threadline's data under prefix {self.config.prefix!r} at {shown_url(self.config.url)} is damaged: "
                f"{str(exc).removeprefix('DAMAGED ').split(' script:')[0]}"
            )
        if isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc):
            return DataFormatError(
                f"threadline's data under prefix {self.config.prefix!r} at {shown_url(self.config.url)} is damaged: "
                "a key holds another kind of value than threadline wrote there"
            )
        if isinstance(exc, AuthenticationError) or _asks_for_password(exc):
            return StorageUnavailable(
                f"Redis at {shown_url(self.config.url)} refused the login ({exc}): give the password in the URL, "
                "redis://:PASSWORD@host:port/db, or redis://USER:PASSWORD@host:port/db for an ACL user"
            )
        return StorageUnavailable(f"Redis at {shown_url(self.config.url)}: {exc}")

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (RedisError, RedisClusterException) as exc:
            raise self._unavailable(exc) from None

    @contextlib.asynccontextmanager
    async def _command(self) -> AsyncIterator[redis.Redis | RedisCluster]:
        """The client, for one command at a time per connection of the pool: past
        ``max_connections`` commands wait their turn here, where redis-py would fail them."""
        if self._client is None:
            raise RuntimeError("the Redis storage is not open; call open() first")
        async with self._slots:
            with self._translated():
                yield self._client

    async def _script(self, script: str, key: str, *args: str | int | bytes) -> Any:
        """Run one of the Lua scripts, pipelined with the others (threadline_redis.script_queue)."""
        if self._queue is None:
            raise RuntimeError("the Redis storage is not open; call open() first")
        try:
            return await self._queue.run(self._scripts[script], key, args, writes=script not in READS)
        except (RedisError, RedisClusterException) as exc:
            raise self._unavailable(exc) from None

    async def _change(self, script: str, tenant: str, session_id: str, *args: str | int | bytes) -> Any:
        """Run a script that changes the session, which keeps it ``ttl`` longer."""
        key, base = self._session_key(tenant, session_id)
        ttl = "" if self.config.ttl is None else round(self.config.ttl * 1000)
        return await self._script(script, key, base, session_id, ttl, *args)

    # -- keys -----------------------------------------------------------------

    def _base(self, tenant: str) -> str:
        return f"{self.config.prefix}{{{tag(tenant)}}}"

    def _session_key(self, tenant: str, session_id: str) -> tuple[str, str]:
        """The session's hash key and the base and id its script is given."""
        base = self._base(tenant)
        return f"{base}s:{session_id}", base

    # -- sessions -------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> SessionRecord:
        stored = attrs.evolve(session, message_count=0, usage=Usage(), version=1)
        if not await self._put(stored, []):
            raise StorageConflict(f"session {session.id!r} exists already")
        return stored

    async def _put(
        self, session: SessionRecord, messages: Sequence[Message], revisions: Sequence[Revision] = ()
    ) -> bool:
        usage = session.usage
        stored: int = await self._change(
            "put_session",
            session.tenant,
            session.id,
            dump_record(session),
            session.created_at.isoformat(),
            session.version,
            to_us(session.updated_at),
            session.user_id or "",
            "0" if session.user_id is None else "1",
            session.status.value,
            session.message_count,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
            "" if usage.cost is None else repr(usage.cost),
            len(revisions),
            *map(_kept, revisions),
            *(encode(m) for m in messages),
        )
        return bool(stored)

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        key, _ = self._session_key(tenant, session_id)
        async with self._command() as client:
            fields = cast("list[bytes | None]", await client.hmget(key, FIELDS))  # not decoded: bytes
        if fields[0] is None:
            raise SessionNotFound(session_id, tenant)
        return self._decoded(tenant, session_id, fields)

    def _decoded(self, tenant: str, session_id: str, fields: Sequence[bytes | None]) -> SessionRecord:
        try:
            return _session(fields)
        except (ValueError, TypeError, KeyError, DataFormatError) as exc:
            raise DataFormatError(f"session {session_id!r} of tenant {tenant!r} is damaged in Redis: {exc!r}") from None

    async def update_session(self, session: SessionRecord) -> SessionRecord:
        reply = await self._change(
            "update_session",
            session.tenant,
            session.id,
            session.version,
            dump_record(session),
            session.user_id or "",
            "0" if session.user_id is None else "1",
            session.status.value,
        )
        if reply[0] == 0:
            raise SessionNotFound(session.id, session.tenant)
        if reply[0] == 1:
            raise StorageConflict(f"session {session.id!r} is at version {int(reply[1])}, not {session.version}")
        return self._decoded(session.tenant, session.id, reply[1:])

    async def delete_session(self, tenant: str, session_id: str) -> None:
        key, base = self._session_key(tenant, session_id)
        if await self._script("delete", key, base, session_id) < 0:
            raise SessionNotFound(session_id, tenant)

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        base = self._base(query.tenant)
        status = query.status.value if query.status is not None else ""
        of_user, of_status = "", ""
        if query.user_id is not None:
            index, of_user = f"{base}i:u:{query.user_id}", query.user_id
        elif status:
            index, of_status, status = f"{base}i:s:{status}", status, ""
        else:
            index = f"{base}i:all"
        cursor_score, cursor_id = "", ""
        highest = "+inf"
        if query.updated_before is not None:
            highest = f"({to_us(query.updated_before)}"
        if query.cursor:
            updated_at, cursor_id = read_cursor(query.cursor)
            cursor_score = str(to_us(updated_at))
            if query.updated_before is None or to_us(updated_at) < to_us(query.updated_before):
                highest = cursor_score
        lowest = "-inf" if query.updated_after is None else f"({to_us(query.updated_after)}"
        rows = await self._script(
            "list", index, base, highest, lowest, cursor_score, cursor_id, of_user, of_status, status, query.limit + 1
        )
        page = rows[: query.limit]
        if len(rows) <= query.limit:
            return SessionPage(self._listed(query.tenant, page), None)
        last_id, last_updated_us = page[-1][0].decode(), page[-1][5]  # a damaged last one still continues
        cursor = make_cursor(SessionRecord(id=last_id, updated_at=from_us(last_updated_us)))
        return SessionPage(self._listed(query.tenant, page), cursor)

    def _listed(self, tenant: str, rows: Sequence[Sequence[bytes | None]]) -> tuple[SessionRecord, ...]:
        """The sessions of a listing; a damaged one is left out (and logged), not the listing."""
        sessions = []
        for session_id, *fields in rows:
            try:
                sessions.append(_session(fields))
            except (ValueError, TypeError, KeyError, DataFormatError) as exc:
                log.error("session %r of tenant %r is damaged in Redis and was left out of a listing: %s",
                          session_id, tenant, exc)  # fmt: skip
        return tuple(sessions)

    async def delete_user(self, tenant: str, user_id: str) -> DeletedCounts:
        base = self._base(tenant)
        sessions, messages = await self._script("delete_user", f"{base}i:u:{user_id}", base, user_id)
        return DeletedCounts(int(sessions), int(messages))

    # -- messages -------------------------------------------------------------

    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        stray = next((m for m in messages if m.session_id != session_id), None)
        if not messages or stray is not None:
            await self.get_session(tenant, session_id)  # SessionNotFound comes first
            if stray is not None:
                raise StorageConflict(
                    f"message {stray.id!r} belongs to session {stray.session_id!r}, not {session_id!r}"
                )
            return
        seqs = [m.seq for m in messages]
        in_order = seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        reply = await self._change(
            "append",
            tenant,
            session_id,
            seqs[0] if in_order else -1,  # out of order: the script only reports the count
            _usage_argument(messages),
            *(encode(m) for m in messages),
        )
        if reply == -1:
            raise SessionNotFound(session_id, tenant)
        if reply >= 0:
            count = reply
            expected = list(range(count + 1, count + 1 + len(messages)))
            raise StorageConflict(
                f"session {session_id!r} has {count} messages; appended seqs must be {expected}, got {seqs}"
            )

    async def set_message_status(
        self, tenant: str, session_id: str, seq: int, status: str, error: str | None = None
    ) -> None:
        outcome = await self._change("set_status", tenant, session_id, seq, _status_change(status, error))
        if outcome == 0:
            raise SessionNotFound(session_id, tenant)
        if outcome == 1:
            raise StorageConflict(f"session {session_id!r} has no message {seq}")

    async def replace_messages(
        self, tenant: str, session_id: str, after_seq: int, messages: Sequence[Message], *, count: int
    ) -> Revision:
        check_replacement(session_id, count, after_seq, messages, count)  # what can be told without the server
        reply = await self._change("replace", tenant, session_id, count, after_seq, *(encode(m) for m in messages))
        if reply[0] == -1:
            raise SessionNotFound(session_id, tenant)
        if reply[0] == -2:
            check_replacement(session_id, int(reply[1]), after_seq, messages, count)
        if self._cache is not None:
            self._cache.drop((tenant, session_id))
        return self._revisions(tenant, session_id, [reply[1]])[0]

    async def get_revisions(self, tenant: str, session_id: str) -> list[Revision]:
        key, base = self._session_key(tenant, session_id)
        async with self._command() as client:
            stored = cast("list[bytes]", await client.lrange(f"{base}e:{session_id}", 0, -1))  # not decoded
            if not stored and not await client.exists(key):
                raise SessionNotFound(session_id, tenant)
        return self._revisions(tenant, session_id, stored)

    def _revisions(self, tenant: str, session_id: str, stored: Sequence[bytes]) -> list[Revision]:
        try:
            return [_revision(session_id, entry) for entry in stored]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, DataFormatError) as exc:
            raise DataFormatError(
                f"a revision of session {session_id!r} of tenant {tenant!r} is damaged in Redis: {exc!r}"
            ) from None

    async def get_messages(
        self, tenant: str, session_id: str, *, after_seq: int = 0, last: int | None = None
    ) -> list[Message]:
        if last is not None and last <= 0:
            await self.get_session(tenant, session_id)
            return []
        after_seq = max(after_seq, 0)
        key = (tenant, session_id)
        held = self._cache.peek(key) if self._cache is not None else None
        if self._cache is None or (held is None and (after_seq or last is not None)):
            return (await self._read(tenant, session_id, after_seq, last)).messages
        revision, cached = held or (None, [])
        try:
            read = await self._read(tenant, session_id, len(cached), None, known=revision)
        except SessionNotFound:
            self._cache.drop(key)
            raise
        history = cached + read.messages if read.first == len(cached) + 1 else read.messages
        if read.revision is None:  # written before sessions had revisions: not cached
            self._cache.drop(key)
        elif read.messages or read.revision != revision:
            self._cache.put(key, read.revision, history)
        selected = history[after_seq:]  # a copy: callers may change their list
        return selected[-last:] if last is not None else selected

    async def _read(
        self,
        tenant: str,
        session_id: str,
        after: int,
        last: int | None,
        *,
        with_session: bool = False,
        with_revisions: bool = False,
        known: int | None = None,
    ) -> _Read:
        """The session's messages after the first ``after`` (the ``last`` of them, if given)
        as they were at one moment (lua/read.lua). With ``known``, the revision of a history
        of ``after`` messages the caller holds: only those after it, unless it is stale."""
        key, base = self._session_key(tenant, session_id)
        reply = await self._script(
            "read", key, base, session_id, after, "" if last is None else last,
            "2" if with_revisions else "1" if with_session else "",
            "" if known is None else known,
        )  # fmt: skip
        if not reply:
            raise SessionNotFound(session_id, tenant)
        count, revision, fields, flat_changes, first, *data = reply
        try:
            changes = dict(zip(flat_changes[::2], flat_changes[1::2], strict=True))
            messages = decode_all(session_id, data, changes)
            kept = fields[len(FIELDS)] if with_revisions else ()
            return _Read(int(count), None if revision is None else int(revision), fields[: len(FIELDS)], first,
                         messages, kept)  # fmt: skip
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, DataFormatError) as exc:
            raise DataFormatError(
                f"a message of session {session_id!r} of tenant {tenant!r} is damaged in Redis: {exc!r}"
            ) from None

    # -- turn leases ----------------------------------------------------------

    async def take_turn(self, tenant: str, session_id: str, holder: str, seconds: float) -> bool:
        taken = await self._change("take_turn", tenant, session_id, holder, repr(seconds), repr(WAITER_SECONDS))
        if taken < 0:
            raise SessionNotFound(session_id, tenant)
        return bool(taken)

    async def end_turn(self, tenant: str, session_id: str, holder: str) -> None:
        key, base = self._session_key(tenant, session_id)
        await self._script("end_turn", key, base, session_id, holder)

    # -- events ---------------------------------------------------------------

    async def events(self, tenant: str | None = None) -> AsyncIterator[StorageEvent]:
        """Every change to the sessions of ``tenant`` (``None``: of every tenant) made by any
        process from now on, as it happens, until the caller stops iterating; see
        :class:`threadline.StorageEvent` for what a listener may miss. On Redis Cluster any
        node hears every tenant's events."""
        start = len(self.config.prefix) + 1
        listener = redis.Redis.from_url(self.config.url, socket_connect_timeout=self.config.socket_timeout)
        pubsub = listener.pubsub(ignore_subscribe_messages=True)
        try:
            with self._translated():
                if tenant is None:
                    await pubsub.psubscribe(f"{glob_escape(self.config.prefix)}{{*}}events")
                else:
                    await pubsub.subscribe(f"{self._base(tenant)}events")
            while True:
                with self._translated():
                    delivered = await pubsub.get_message(timeout=None)
                if delivered is not None:
                    tenant_tag = delivered["channel"].decode()[start : -len("}events")]
                    try:
                        event = read_event(delivered["data"], untag(tenant_tag))
                    except DataFormatError as exc:
                        log.warning("left out a message on the events channel that is not an event: %r", exc)
                        continue
                    yield event
        finally:
            await pubsub.aclose()
            await listener.aclose()

    # -- export and import ----------------------------------------------------

    async def _tenants(self) -> list[str]:
        pattern = f"{glob_escape(self.config.prefix)}{{*}}i:all"
        async with self._command() as client:
            keys = {key.decode() async for key in client.scan_iter(match=pattern, count=1000)}  # SCAN may repeat
        tags = (key[len(self.config.prefix) + 1 :].partition("}") for key in keys)
        return sorted(untag(tenant) for tenant, _, rest in tags if rest == "i:all")  # not a session id's "}i:all"

    async def export_records(self, tenant: str | None = None) -> AsyncIterator[SessionRecord | Message | Revision]:
        """Each session is read whole, with its messages, in one step; one deleted before the
        export reaches it is left out (Redis keeps no snapshot of the whole database)."""
        for name in [tenant] if tenant is not None else await self._tenants():
            async with self._command() as client:
                listed = cast("list[bytes]", await client.zrange(f"{self._base(name)}i:all", 0, -1))
            ids = sorted(i.decode() for i in listed)
            for session_id in ids:
                try:
                    read = await self._read(name, session_id, 0, None, with_revisions=True)
                except SessionNotFound:
                    continue
                yield self._decoded(name, session_id, read.fields)
                for message in read.messages:
                    yield message
                for revision in self._revisions(name, session_id, read.kept):
                    yield revision

    async def import_records(self, records: AsyncIterable[SessionRecord | Message | Revision]) -> int:
        """Each session is stored with its messages in one step; if any fails, those stored
        before it are removed again, so that nothing is imported."""
        stored: list[SessionRecord] = []
        try:
            return await self._import(records, stored)
        except BaseException:
            await whole(self._remove(stored))
            raise

    async def _import(
        self, records: AsyncIterable[SessionRecord | Message | Revision], stored: list[SessionRecord]
    ) -> int:
        count = 0
        current: SessionRecord | None = None
        messages: list[Message] = []
        revisions: list[Revision] = []
        async for record in records:
            count += 1
            if isinstance(record, SessionRecord):
                if current is not None:
                    await self._import_one(current, messages, revisions, stored)
                current, messages, revisions = record, [], []
            elif isinstance(record, Revision):
                check_revision_follows(record, current, len(revisions))
                revisions.append(record)
            elif current is None or record.session_id != current.id:
                raise DataFormatError(f"message {record.id!r} does not follow its session {record.session_id!r}")
            elif record.seq != len(messages) + 1:
                raise DataFormatError(f"message {record.id!r} has seq {record.seq}; seqs must run 1, 2, 3, ...")
            else:
                messages.append(record)
        if current is not None:
            await self._import_one(current, messages, revisions, stored)
        return count

    async def _import_one(
        self, session: SessionRecord, messages: list[Message], revisions: list[Revision], stored: list[SessionRecord]
    ) -> None:
        usage = session.usage if revisions else sum((m.usage for m in messages if m.usage), Usage())
        whole = attrs.evolve(session, message_count=len(messages), usage=usage)
        put = asyncio.ensure_future(self._put(whole, messages, revisions))
        try:
            await asyncio.shield(put)
        except asyncio.CancelledError:  # stored or not? Known once it settles: then it can be undone
            await settled(put)
            raise
        finally:
            if put.done() and not put.cancelled() and put.exception() is None and put.result():
                stored.append(whole)
        if not put.result():
            raise StorageConflict(f"session {session.id!r} exists already; nothing was imported")

    async def _remove(self, sessions: list[SessionRecord]) -> None:
        for session in sessions:
            key, base = self._session_key(session.tenant, session.id)
            await self._script("delete", key, base, session.id)
