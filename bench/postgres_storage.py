"""threadline-postgres against raw asyncpg with the same statements, same run, same server.

Baseline: raw asyncpg on a pool of its own, running the very statements threadline-postgres
runs (the one-statement append, the history's SELECT) on the same tables, with the rows it
gets back as asyncpg records: what is left is what threadline adds (messages built and
checked, rows turned into them). The peer, run when installed, is the OpenAI Agents SDK's
SQLAlchemySession on the same server (`pip install "openai-agents[sqlalchemy]"`, with
asyncpg), one session object per conversation on an engine of its own.

Each contender works in a schema of its own, bench_<random hex>_<name>, dropped at the end;
nothing else on the server is touched.

Run: python bench/postgres_storage.py [--quick] [--only W1 W5] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import secrets
import statistics
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from storage_workloads import (
    ROUNDS,
    Store,
    alternating_loads,
    installed,
    long_history,
    many_sessions,
    p,
    ratio,
    rounds_of,
    timed,
    w1_sequential_appends,
    w4_concurrent_appends,
)

from threadline import Message, Role, SessionQuery, SessionRecord, SessionStatus, Text
from threadline.plugin import utcnow
from threadline_postgres import PostgresConfig, redacted
from threadline_postgres.storage import PostgresStorage

TEXT = ("The quick brown fox jumps over the lazy dog. " * 5)[:200]
RUN = f"bench_{secrets.token_hex(4)}"
DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Ours:
    def __init__(self, dsn: str, schema: str, history_cache: int = 20_000, notify: bool = False) -> None:
        config = PostgresConfig(dsn=dsn, schema=schema, max_size=60, history_cache=history_cache, notify=notify)
        self.storage = PostgresStorage(config)

    async def open(self) -> None:
        await self.storage.open()

    async def close(self) -> None:
        await self.storage.close()

    async def new_session(self) -> str:
        return (await self.storage.create_session(SessionRecord())).id

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        await self.storage.append_messages("default", session_id, [Message(session_id, seq, Role(role), (Text(TEXT),))])

    async def load(self, session_id: str) -> list[Message]:
        return await self.storage.get_messages("default", session_id)

    async def fill(self, session_id: str, count: int) -> None:
        messages = [Message(session_id, seq, Role.USER, (Text(TEXT),)) for seq in range(1, count + 1)]
        await self.storage.append_messages("default", session_id, messages)


class Baseline(Ours):
    """threadline-postgres's own statements through raw asyncpg: the same tables (made by
    the plugin's migrations), rows built by hand, records read as they come."""

    async def open(self) -> None:
        await self.storage.open()
        self.pool, self.sql = self.storage.pool, self.storage._sql

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        await self._insert(session_id, seq, [role])

    async def fill(self, session_id: str, count: int) -> None:
        await self._insert(session_id, 1, ["user"] * count)

    async def _insert(self, session_id: str, first: int, roles: list[str]) -> None:
        count = len(roles)
        now = utcnow()
        await self.pool.execute(
            self.sql.append, "default", session_id, count, first - 1, now, 0, 0, 0, None,
            list(range(first, first + count)), [secrets.token_hex(16) for _ in roles], roles, ["ok"] * count,
            [now] * count, [TEXT] * count, [None] * count, [None] * count,
        )  # fmt: skip

    async def load(self, session_id: str) -> list[Any]:
        rows: list[Any] = await self.pool.fetch(self.sql.messages_after, "default", session_id, 0)
        return rows


class AgentsSDK:
    """The peer: the OpenAI Agents SDK's SQLAlchemySession on PostgreSQL (asyncpg), its
    tables made by it in a schema of its own."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn, self.schema = dsn.replace("postgresql://", "postgresql+asyncpg://", 1), schema
        self.sessions: dict[str, Any] = {}

    async def open(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        connection = await asyncpg.connect(self.dsn.replace("+asyncpg", ""))
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        await connection.close()
        self.engine = create_async_engine(
            self.dsn, pool_size=60, connect_args={"server_settings": {"search_path": self.schema}}
        )

    async def close(self) -> None:
        await self.engine.dispose()

    def _session(self, session_id: str) -> Any:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

        if session_id not in self.sessions:
            self.sessions[session_id] = SQLAlchemySession(session_id, engine=self.engine, create_tables=True)
        return self.sessions[session_id]

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        await self._session(session_id).add_items([{"role": role, "content": TEXT}])

    async def load(self, session_id: str) -> list[Any]:
        items: list[Any] = await self._session(session_id).get_items()
        return items

    async def fill(self, session_id: str, count: int) -> None:
        await self._session(session_id).add_items([{"role": "user", "content": TEXT}] * count)


def uncached(dsn: str, schema: str) -> Ours:
    return Ours(dsn, schema, history_cache=0)


def notifying(dsn: str, schema: str) -> Ours:
    """Writes that send events (``notify = true``): what LISTEN/NOTIFY costs."""
    return Ours(dsn, schema, notify=True)


def peer_installed() -> bool:
    try:
        import agents.extensions.memory.sqlalchemy_session  # noqa: F401
    except ImportError:
        return False
    return True


Maker = Callable[[str, str], Store]


class Schemas:
    """The schemas of this run: made per contender, dropped at the end."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.made = dsn, 0

    def next(self) -> str:
        self.made += 1
        return f"{RUN}_{self.made}"

    async def drop_all(self) -> int:
        connection = await asyncpg.connect(self.dsn)
        try:
            names = await connection.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"{RUN}_%")
            for row in names:
                await connection.execute(f"DROP SCHEMA {row['nspname']} CASCADE")
            return len(names)
        finally:
            await connection.close()


SCHEMAS = Schemas(DSN)


@contextlib.asynccontextmanager
async def opened(makers: dict[str, Maker]) -> AsyncIterator[dict[str, Store]]:
    stores: dict[str, Store] = {}
    try:
        for name, make in makers.items():
            stores[name] = make(SCHEMAS.dsn, SCHEMAS.next())
            await stores[name].open()
        yield stores
    finally:
        for store in stores.values():
            await store.close()
        await SCHEMAS.drop_all()


async def run(name: str, make: Maker, workload: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    async with opened({name: make}) as stores:
        return await workload(stores[name], *args)


async def _rounds(
    contenders: dict[str, Maker], workload: Callable[..., Awaitable[float]], *args: Any
) -> dict[str, list[float]]:
    """Each contender's rate in each of the rounds, on a new store every time."""

    async def once(name: str) -> float:
        rate: float = await run(name, contenders[name], workload, *args)
        return rate

    return await rounds_of(contenders, once)


def contenders() -> dict[str, Maker]:
    makers: dict[str, Maker] = {"baseline": Baseline, "threadline": Ours}
    if peer_installed():
        makers["peer, Agents SDK SQLAlchemySession"] = AgentsSDK
    return makers


async def w1(scale: int) -> None:
    rates = await _rounds({**contenders(), "threadline, notify on": notifying}, w1_sequential_appends, 2000 // scale)
    base, ours = statistics.median(rates["baseline"]), statistics.median(rates["threadline"])
    print(f"W1 sequential appends ({ROUNDS} rounds, medians): threadline {ours:,.0f} msg/s, "
          f"baseline {base:,.0f} msg/s -> {ratio(rates, 'threadline'):.2f}x (target >= 0.8x)")  # fmt: skip
    for name in rates.keys() - {"baseline", "threadline"}:
        print(f"   {name}: {statistics.median(rates[name]):,.0f} msg/s -> {ratio(rates, name):.2f}x")


async def loads(title: str, fill: Callable[[Store], Awaitable[list[str]]]) -> None:
    makers = {**contenders(), "threadline, history cache off": uncached}
    async with opened(makers) as stores:
        sessions = {name: await fill(store) for name, store in stores.items()}
        times = await alternating_loads(stores, sessions)
    base = times.pop("baseline")
    print(f"{title}: baseline median {statistics.median(base):.3f} ms p99 {p(base, 99):.3f} ms")
    for name, ours in times.items():
        target = " (target <= 1.5x)" if name.startswith("threadline") else ""
        print(f"   {name}: median {statistics.median(ours):.3f} ms p99 {p(ours, 99):.3f} ms "
              f"-> {statistics.median(ours) / statistics.median(base):.2f}x time{target}")  # fmt: skip


async def w4(scale: int) -> None:
    rates = await _rounds({**contenders(), "threadline, notify on": notifying}, w4_concurrent_appends, 50, 100 // scale)
    base, ours = statistics.median(rates["baseline"]), statistics.median(rates["threadline"])
    print(f"W4 50 tasks appending ({ROUNDS} rounds, medians): threadline {ours:,.0f} msg/s, "
          f"baseline {base:,.0f} msg/s -> {ratio(rates, 'threadline'):.2f}x (target >= 1x)")  # fmt: skip
    for name in rates.keys() - {"baseline", "threadline"}:
        print(f"   {name}: {statistics.median(rates[name]):,.0f} msg/s -> {ratio(rates, name):.2f}x")


async def w5(sessions: int) -> None:
    """Pages of 20 through ``sessions`` sessions of 1,000 users, copied in by an import."""
    async with opened({"threadline": Ours}) as stores:
        storage = stores["threadline"].storage

        async def records() -> AsyncIterator[SessionRecord]:
            for index in range(sessions):
                yield SessionRecord(user_id=f"u{index % 1000}")

        await storage.import_records(records())
        await storage.pool.execute(f"ANALYZE {storage.config.schema}.sessions")
        deep = (await storage.list_sessions(SessionQuery(limit=1000))).next_cursor
        for _ in range(sessions // 2000 - 1):
            deep = (await storage.list_sessions(SessionQuery(limit=1000, cursor=deep))).next_cursor
        queries = {
            "first page": SessionQuery(limit=20),
            "page after a cursor half way down": SessionQuery(limit=20, cursor=deep),
            "first page of one user": SessionQuery(limit=20, user_id="u7"),
            "first page of active sessions": SessionQuery(limit=20, status=SessionStatus.ACTIVE),
        }
        print(f"W5 listing {sessions:,} sessions, median of 50, pages of 20:")
        for name, query in queries.items():
            ms = statistics.median(await timed(50, lambda q=query, s=storage: s.list_sessions(q)))  # type: ignore[misc]
            print(f"   {name}: {ms:.2f} ms")


async def describe() -> None:
    connection = await asyncpg.connect(SCHEMAS.dsn)
    server = await connection.fetchval("SHOW server_version")
    await connection.close()
    print(f"PostgreSQL {server} at {redacted(SCHEMAS.dsn)}; asyncpg {installed('asyncpg')}; schemas {RUN}_*")
    if peer_installed():
        print(f"peer: OpenAI Agents SDK SQLAlchemySession (openai-agents {installed('openai-agents')}, "
              f"SQLAlchemy {installed('sqlalchemy')})")  # fmt: skip
    else:
        print('peer: skipped, the OpenAI Agents SDK is not installed (pip install "openai-agents[sqlalchemy]")')


async def main(quick: bool, only: set[str]) -> None:
    scale = 10 if quick else 1
    await describe()
    gc.collect()
    gc.freeze()
    print(f"workloads at 1/{scale} scale" if quick else "full workloads")
    try:
        if "W1" in only:
            await w1(scale)
        if "W2" in only:
            await loads("W2 load 1,000 messages", lambda store: long_history(store, 1000, 200 // scale))
        if "W3" in only:
            await loads(
                f"W3 load 1 of {5000 // scale:,} sessions",
                lambda store: many_sessions(store, 5000 // scale, 10, 1000 // scale),
            )
        if "W4" in only:
            await w4(scale)
        if "W5" in only:
            await w5(100_000 // scale)
    finally:
        left = await SCHEMAS.drop_all()
        if left:
            print(f"dropped {left} schemas left by this run")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of each workload, for a smoke run")
    parser.add_argument("--only", nargs="*", default=["W1", "W2", "W3", "W4", "W5"], help="workloads to run")
    parser.add_argument("--dsn", default=DSN, help=f"the PostgreSQL server (default {DSN}); only its own schemas")
    args = parser.parse_args()
    SCHEMAS.dsn = args.dsn
    try:
        asyncio.run(main(args.quick, set(args.only)))
    except (OSError, asyncpg.PostgresError) as exc:
        sys.exit(f"cannot reach PostgreSQL at {redacted(args.dsn)}: {exc}")
