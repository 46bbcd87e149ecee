"""threadline-redis against raw redis.asyncio, same run, same machine, same Redis server.

Baseline: raw redis.asyncio written the way a careful user would: one RPUSH per message of
a JSON object (session_id, seq, role, content, created_at) to a list per session, LRANGE
0 -1 and json.loads of each into a dict; its own client (connection pool), as each
contender has. The peer, run when installed, is the OpenAI Agents SDK's RedisSession
(`pip install "openai-agents[redis]"`), one session object per conversation, all on one
client of its own. The run first prints the server's version and redis-py's reply parser:
hiredis (C) when the `hiredis` package is installed, else redis-py's own, in Python.

Every key this bench writes is under a prefix of its own, bench-<random hex>:, deleted at
the end (SCAN MATCH prefix* then DEL); it never flushes the server, which may be shared.

Run: python bench/redis_storage.py [--quick] [--only W1 W4] [--url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import secrets
import statistics
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.utils import HIREDIS_AVAILABLE
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
from threadline_redis import RedisConfig, shown_url
from threadline_redis.storage import RedisStorage

TEXT = ("The quick brown fox jumps over the lazy dog. " * 5)[:200]
#: every key of this run starts with it
RUN = f"bench-{secrets.token_hex(4)}:"
URL = "redis://127.0.0.1:6379/0"


class Baseline:
    """What a careful user writes by hand with redis.asyncio."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix

    async def open(self) -> None:
        self.client = redis.Redis.from_url(self.url)

    async def close(self) -> None:
        await self.client.aclose()

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}m:{session_id}"

    def _dumped(self, session_id: str, seq: int, role: str) -> str:
        created_at = datetime.now(UTC).isoformat()
        return json.dumps(
            {"session_id": session_id, "seq": seq, "role": role, "content": TEXT, "created_at": created_at}
        )

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        await self.client.rpush(self._key(session_id), self._dumped(session_id, seq, role))

    async def load(self, session_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in await self.client.lrange(self._key(session_id), 0, -1)]

    async def fill(self, session_id: str, count: int) -> None:
        items = [self._dumped(session_id, seq, "user") for seq in range(1, count + 1)]
        await self.client.rpush(self._key(session_id), *items)


class Ours:
    def __init__(self, url: str, prefix: str, history_cache: int = 20_000) -> None:
        self.storage = RedisStorage(RedisConfig(url=url, prefix=prefix, history_cache=history_cache))

    async def open(self) -> None:
        await self.storage.open()

    async def close(self) -> None:
        await self.storage.close()

    async def new_session(self) -> str:
        return (await self.storage.create_session(SessionRecord())).id

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        message = Message(session_id, seq, Role(role), (Text(TEXT),))
        await self.storage.append_messages("default", session_id, [message])

    async def load(self, session_id: str) -> list[Message]:
        return await self.storage.get_messages("default", session_id)

    async def fill(self, session_id: str, count: int) -> None:
        messages = [Message(session_id, seq, Role.USER, (Text(TEXT),)) for seq in range(1, count + 1)]
        await self.storage.append_messages("default", session_id, messages)


class AgentsSDK:
    """The peer: the OpenAI Agents SDK's RedisSession (`pip install "openai-agents[redis]"`),
    one session object per conversation on a client of its own."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.sessions: dict[str, Any] = {}

    async def open(self) -> None:
        self.client = redis.Redis.from_url(self.url)

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()  # the client is ours: this only marks the session closed
        await self.client.aclose()

    def _session(self, session_id: str) -> Any:
        from agents.extensions.memory.redis_session import RedisSession

        if session_id not in self.sessions:
            self.sessions[session_id] = RedisSession(
                session_id, redis_client=self.client, key_prefix=f"{self.prefix}agents"
            )
        return self.sessions[session_id]

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        await self._session(session_id).add_items([{"role": role, "content": TEXT}])

    async def load(self, session_id: str) -> list[Any]:
        items: list[Any] = await self._session(session_id).get_items()
        return items

    async def fill(self, session_id: str, count: int) -> None:
        await self._session(session_id).add_items([{"role": "user", "content": TEXT}] * count)


def peer_installed() -> bool:
    try:
        import agents.extensions.memory.redis_session  # noqa: F401
    except ImportError:
        return False
    return True


Maker = Callable[[str, str], Store]


class Keys:
    """Prefixes for the contenders, each new one under RUN; what they hold, and deleting it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made = 0

    def prefix(self, name: str) -> str:
        self.made += 1
        return f"{RUN}{name.split(',')[0].replace(' ', '-')}-{self.made}:"

    async def held(self, prefix: str) -> int:
        """The bytes the keys under ``prefix`` take on the server (MEMORY USAGE, all of each)."""
        total = 0
        async with redis.Redis.from_url(self.url) as client:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            for start in range(0, len(keys), 1000):
                pipe = client.pipeline(transaction=False)
                for key in keys[start : start + 1000]:
                    pipe.memory_usage(key, samples=0)
                total += sum(n or 0 for n in await pipe.execute())
        return total

    async def delete(self, prefix: str) -> int:
        deleted = 0
        async with redis.Redis.from_url(self.url) as client:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) == 500:
                    deleted += await client.delete(*batch)
                    batch = []
            if batch:
                deleted += await client.delete(*batch)
        return deleted


KEYS = Keys(URL)


@contextlib.asynccontextmanager
async def opened(makers: dict[str, Maker]) -> AsyncIterator[tuple[dict[str, Store], dict[str, int]]]:
    """Each contender open under a prefix of its own; after the block, ``sizes`` holds the
    bytes each one's keys took on the server, and the keys are gone."""
    sizes: dict[str, int] = {}
    stores: dict[str, Store] = {}
    prefixes: dict[str, str] = {}
    try:
        for name, make in makers.items():
            prefixes[name] = KEYS.prefix(name)
            stores[name] = make(KEYS.url, prefixes[name])
            await stores[name].open()
        yield stores, sizes
    finally:
        for store in stores.values():
            await store.close()
        for name, prefix in prefixes.items():
            sizes[name] = await KEYS.held(prefix)
            await KEYS.delete(prefix)


async def run(name: str, make: Maker, workload: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``workload`` on a new store under a prefix of its own; its result, and the bytes its
    keys took on the server (deleted after)."""
    async with opened({name: make}) as (stores, sizes):
        result = await workload(stores[name], *args)
    return result, sizes[name]


async def w5_listing(store: Ours, sessions: int, users: int) -> dict[str, float]:
    """Pages of 20 through a large store: the first page, the page after a deep cursor, one user's."""
    storage = store.storage
    records = [SessionRecord(user_id=f"u{index % users}") for index in range(sessions)]
    # Concurrently, so that filling is quick; no more at once than RedisConfig.max_connections
    # (64 by default): up to commit e66658d, a call past them failed ("Too many connections").
    batch = min(200, storage.config.max_connections)
    for start in range(0, sessions, batch):
        await asyncio.gather(*(storage.create_session(r) for r in records[start : start + batch]))
    deep = (await storage.list_sessions(SessionQuery(limit=1000))).next_cursor
    for _ in range(sessions // 1000 // 2):
        deep = (await storage.list_sessions(SessionQuery(limit=1000, cursor=deep))).next_cursor
    queries = {
        "first page": SessionQuery(limit=20),
        "page after a cursor half way down": SessionQuery(limit=20, cursor=deep),
        "first page of one user": SessionQuery(limit=20, user_id="u7"),
        "first page of active sessions": SessionQuery(limit=20, status=SessionStatus.ACTIVE),
    }
    results = {}
    for name, query in queries.items():
        times = await timed(50, lambda q=query: storage.list_sessions(q))  # type: ignore[misc]
        results[name] = statistics.median(times)
    return results


async def describe() -> None:
    async with redis.Redis.from_url(KEYS.url) as client:
        info = await client.info("server")
    parser = "hiredis (C)" if HIREDIS_AVAILABLE else "pure Python (hiredis not installed)"
    print(f"Redis {info['redis_version']} at {shown_url(KEYS.url)}; redis-py {installed('redis')}, reply parser: "
          f"{parser}; keys under {RUN}*")  # fmt: skip
    if peer_installed():
        print(f"peer: OpenAI Agents SDK RedisSession (openai-agents {installed('openai-agents')})")
    else:
        print('peer: skipped, the OpenAI Agents SDK is not installed (pip install "openai-agents[redis]")')


async def main(quick: bool, only: set[str]) -> None:
    scale = 10 if quick else 1
    await describe()
    # Import-time objects (the peer's among them) are left out of the garbage collector's
    # full passes, which otherwise land inside whichever load runs.
    gc.collect()
    gc.freeze()
    print(f"workloads at 1/{scale} scale" if quick else "full workloads")
    try:
        if "W1" in only:
            await w1(scale)
        if "W2" in only:
            await w2(scale)
        if "W3" in only:
            await w3(scale)
        if "W4" in only:
            await w4(scale)
        if "W5" in only:
            results, size = await run("threadline", Ours, w5_listing, 100_000 // scale, 1000)
            print(
                f"W5 listing {100_000 // scale:,} sessions ({size / 1e6:.0f} MB in Redis), median of 50, pages of 20:"
            )
            for name, ms in results.items():
                print(f"   {name}: {ms:.2f} ms")
    finally:
        left = await KEYS.delete(RUN)  # anything an interrupted workload left behind
        if left:
            print(f"deleted {left} keys left under {RUN}")


async def _rounds(
    contenders: dict[str, Maker], workload: Callable[..., Awaitable[float]], *args: Any
) -> dict[str, list[float]]:
    """Each contender's rate in each of the rounds, on a new store every time."""

    async def once(name: str) -> float:
        rate: float = (await run(name, contenders[name], workload, *args))[0]
        return rate

    return await rounds_of(contenders, once)


def write_contenders() -> dict[str, Maker]:
    contenders: dict[str, Maker] = {"baseline": Baseline, "threadline": Ours}
    if peer_installed():
        contenders["peer"] = AgentsSDK
    return contenders


async def w1(scale: int) -> None:
    rates = await _rounds(write_contenders(), w1_sequential_appends, 2000 // scale)
    base, ours = statistics.median(rates["baseline"]), statistics.median(rates["threadline"])
    print(f"W1 sequential appends ({ROUNDS} rounds, medians): threadline {ours:,.0f} msg/s, "
          f"baseline {base:,.0f} msg/s -> {ratio(rates, 'threadline'):.2f}x (target >= 0.7x)")  # fmt: skip
    if "peer" in rates:
        print(f"   peer, Agents SDK RedisSession: {statistics.median(rates['peer']):,.0f} msg/s -> "
              f"{ratio(rates, 'peer'):.2f}x; threadline / peer {ratio(rates, 'threadline', 'peer'):.2f}x "
              "(target >= 3x)")  # fmt: skip


def uncached(url: str, prefix: str) -> Ours:
    return Ours(url, prefix, history_cache=0)


def load_contenders() -> dict[str, Maker]:
    contenders: dict[str, Maker] = {"baseline": Baseline, "threadline": Ours, "threadline, history cache off": uncached}
    if peer_installed():
        contenders["peer, Agents SDK RedisSession"] = AgentsSDK
    return contenders


async def w2(scale: int) -> None:
    async with opened(load_contenders()) as (stores, _):
        sessions = {name: await long_history(store, 1000, 200 // scale) for name, store in stores.items()}
        times = await alternating_loads(stores, sessions)
    base = times.pop("baseline")
    print(f"W2 load 1,000 messages: baseline median {statistics.median(base):.2f} ms p99 {p(base, 99):.2f} ms")
    for name, ours in times.items():
        target = " (target <= 1.5x)" if name.startswith("threadline") else ""
        print(f"   {name}: median {statistics.median(ours):.2f} ms p99 {p(ours, 99):.2f} ms "
              f"-> {statistics.median(ours) / statistics.median(base):.2f}x time{target}")  # fmt: skip


async def w3(scale: int) -> None:
    async with opened(load_contenders()) as (stores, sizes):
        sessions = {name: await many_sessions(s, 5000 // scale, 10, 1000 // scale) for name, s in stores.items()}
        times = await alternating_loads(stores, sessions)
    base = times.pop("baseline")
    print(f"W3 load 1 of {5000 // scale:,} sessions: baseline p50 {statistics.median(base):.3f} ms "
          f"p99 {p(base, 99):.3f} ms; in Redis {sizes['threadline'] / 1e6:.1f} MB (threadline) "
          f"vs {sizes['baseline'] / 1e6:.1f} MB (baseline)")  # fmt: skip
    for name, ours in times.items():
        target = " (target <= 1.5x)" if name.startswith("threadline") else f", {sizes[name] / 1e6:.1f} MB in Redis"
        print(f"   {name}: p50 {statistics.median(ours):.3f} ms p99 {p(ours, 99):.3f} ms "
              f"-> {statistics.median(ours) / statistics.median(base):.2f}x time{target}")  # fmt: skip


async def w4(scale: int) -> None:
    rates = await _rounds(write_contenders(), w4_concurrent_appends, 50, 100 // scale)
    base, ours = statistics.median(rates["baseline"]), statistics.median(rates["threadline"])
    print(f"W4 50 tasks appending ({ROUNDS} rounds, medians): threadline {ours:,.0f} msg/s, "
          f"baseline {base:,.0f} msg/s -> {ratio(rates, 'threadline'):.2f}x (target >= 0.8x)")  # fmt: skip
    if "peer" in rates:
        print(f"   peer, Agents SDK RedisSession: {statistics.median(rates['peer']):,.0f} msg/s -> "
              f"{ratio(rates, 'peer'):.2f}x")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of each workload, for a smoke run")
    parser.add_argument("--only", nargs="*", default=["W1", "W2", "W3", "W4", "W5"], help="workloads to run")
    parser.add_argument("--url", default=URL, help=f"the Redis server (default {URL}); never flushed")
    args = parser.parse_args()
    KEYS.url = args.url
    try:
        asyncio.run(main(args.quick, set(args.only)))
    except (RedisConnectionError, OSError) as exc:
        sys.exit(f"cannot reach Redis at {shown_url(args.url)}: {exc}")
