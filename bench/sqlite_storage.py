"""threadline-sqlite against raw aiosqlite, same run, same machine, same pragmas.

Baseline: raw aiosqlite, one INSERT + COMMIT per message, an indexed SELECT returning
plain dicts; WAL and synchronous=NORMAL like threadline-sqlite's default (and, for W1,
also SQLite's defaults: rollback journal, synchronous=FULL). The "FULL" rows compare the
same durability: WAL with synchronous=FULL on both sides, threadline's history cache off.

W6 is whole turns through the public API (``Session.send`` on the offline ``echo`` provider),
the first turn of each session and a later one, against the kernel's ``memory`` storage.

Run: python bench/sqlite_storage.py [--quick] [--only W1 W6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import attrs
from storage_workloads import (
    Store,
    alternating_loads,
    long_history,
    many_sessions,
    p,
    session_for,
    timed,
    w1_sequential_appends,
    w4_concurrent_appends,
)

from threadline import Config, Message, Role, SessionManager, SessionQuery, SessionRecord, SessionStatus, Text
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage

TEXT = ("The quick brown fox jumps over the lazy dog. " * 5)[:200]


class Baseline:
    """What a careful user writes by hand with aiosqlite."""

    def __init__(self, path: Path, *, wal: bool = True, synchronous: str = "NORMAL") -> None:
        self.path, self.wal, self.synchronous = path, wal, synchronous
        self.lock = asyncio.Lock()

    async def open(self) -> None:
        self.db = await aiosqlite.connect(self.path)
        if self.wal:
            await self.db.execute("PRAGMA journal_mode = WAL")
            await self.db.execute(f"PRAGMA synchronous = {self.synchronous}")
        await self.db.execute(
            "CREATE TABLE IF NOT EXISTS messages (session_id TEXT, seq INTEGER, role TEXT, content TEXT, "
            "created_at TEXT, PRIMARY KEY (session_id, seq))"
        )
        await self.db.commit()

    async def close(self) -> None:
        await self.db.close()

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        async with self.lock:  # one INSERT + COMMIT per message, not interleaved with another's
            await self.db.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, datetime('now'))", (session_id, seq, role, TEXT)
            )
            await self.db.commit()

    async def load(self, session_id: str) -> list[dict[str, Any]]:
        rows = await self.db.execute_fetchall(
            "SELECT seq, role, content, created_at FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
        )
        return [{"seq": s, "role": r, "content": c, "created_at": t} for s, r, c, t in rows]

    async def fill(self, session_id: str, count: int) -> None:
        await self.fill_texts(session_id, [TEXT] * count)

    async def fill_texts(self, session_id: str, texts: list[str]) -> None:
        rows = [(session_id, seq, "user" if seq % 2 else "assistant", text) for seq, text in enumerate(texts, 1)]
        await self.db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, datetime('now'))", rows)
        await self.db.commit()


class Ours:
    def __init__(
        self,
        path: Path,
        *,
        cache: bool = True,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        compression: Literal["none", "zstd"] = "none",
    ) -> None:
        config = SQLiteConfig(
            path=path, history_cache=20_000 if cache else 0, synchronous=synchronous, compression=compression
        )
        self.storage = SQLiteStorage(config)

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
        await self.fill_texts(session_id, [TEXT] * count)

    async def fill_texts(self, session_id: str, texts: list[str]) -> None:
        roles = (Role.ASSISTANT, Role.USER)
        messages = [Message(session_id, seq, roles[seq % 2], (Text(text),)) for seq, text in enumerate(texts, 1)]
        await self.storage.append_messages("default", session_id, messages)


class AgentsSDK:
    """The peer: the OpenAI Agents SDK's SQLiteSession (`pip install openai-agents`), one
    session object per conversation on a shared file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sessions: dict[str, Any] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        for session in self.sessions.values():
            session.close()

    def _session(self, session_id: str) -> Any:
        from agents.memory import SQLiteSession

        if session_id not in self.sessions:
            self.sessions[session_id] = SQLiteSession(session_id, self.path)
        return self.sessions[session_id]

    async def append(self, session_id: str, seq: int, role: str = "user") -> None:
        await self._session(session_id).add_items([{"role": role, "content": TEXT}])

    async def load(self, session_id: str) -> list[Any]:
        items: list[Any] = await self._session(session_id).get_items()
        return items

    async def fill(self, session_id: str, count: int) -> None:
        await self._session(session_id).add_items([{"role": "user", "content": TEXT}] * count)


def full_baseline(path: Path) -> Baseline:
    return Baseline(path, synchronous="FULL")


def full_uncached(path: Path) -> Ours:
    return Ours(path, cache=False, synchronous="FULL")


def peer_installed() -> bool:
    try:
        import agents.memory  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.asynccontextmanager
async def opened(makers: dict[str, Callable[[Path], Store]]) -> AsyncIterator[tuple[dict[str, Store], dict[str, int]]]:
    """Each contender open on its own file; after the block, ``sizes`` holds each file's size."""
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        stores: dict[str, Store] = {}
        try:
            for name, make in makers.items():
                (Path(folder) / name).mkdir()
                stores[name] = make(Path(folder) / name / "bench.db")
                await stores[name].open()
            yield stores, sizes
        finally:
            for name, store in stores.items():
                await store.close()
                sizes[name] = sum(f.stat().st_size for f in (Path(folder) / name).iterdir())


async def run(make: Callable[[Path], Store], workload: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        store = make(path)
        await store.open()
        try:
            result = await workload(store, *args)
        finally:
            await store.close()
        size = sum(f.stat().st_size for f in Path(folder).iterdir())  # noqa: ASYNC240
    return result, size


async def w5_listing(store: Ours, sessions: int, users: int) -> dict[str, float]:
    """Pages of 20 through a large store: the first page, the page after a deep cursor, one user's."""
    storage = store.storage
    records = [SessionRecord(user_id=f"u{index % users}") for index in range(sessions)]
    for start in range(0, sessions, 500):  # concurrently, so group commit makes filling quick
        await asyncio.gather(*(storage.create_session(r) for r in records[start : start + 500]))
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


async def main(quick: bool, only: set[str]) -> None:
    scale = 10 if quick else 1
    peer_installed()  # imports the peer now
    # Import-time objects (the peer's ~140,000 among them) are left out of the garbage
    # collector's full passes, which otherwise took ~100 ms inside whichever load ran.
    gc.collect()
    gc.freeze()
    print(f"workloads at 1/{scale} scale" if quick else "full workloads")
    if "W1" in only:
        await w1(scale)
    if "W2" in only:
        await w2(scale)
    if "W3" in only:
        await w3(scale)
    if "W4" in only:
        await w4(scale)
    if "W6" in only:
        await w6(scale)
    if "W7" in only:
        await w7(scale)
    if "W5" in only:
        results, size = await run(Ours, w5_listing, 100_000 // scale, 1000)
        print(f"W5 listing {100_000 // scale:,} sessions ({size / 1e6:.0f} MB), median of 50, pages of 20:")
        for name, ms in results.items():
            print(f"   {name}: {ms:.2f} ms")


async def rounds_of(
    contenders: dict[str, Callable[[Path], Store]], workload: Callable[..., Awaitable[float]], *args: Any
) -> dict[str, float]:
    """Three rounds, each running every contender once in turn, so that a busy moment of the
    machine hits them all; the median of each one's rounds."""
    results: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(3):
        for name, make in contenders.items():
            results[name].append((await run(make, workload, *args))[0])
    return {name: statistics.median(values) for name, values in results.items()}


async def w1(scale: int) -> None:
    contenders: dict[str, Callable[[Path], Store]] = {
        "baseline": Baseline,
        "threadline": Ours,
        "default journal": lambda p: Baseline(p, wal=False),
        "baseline FULL": full_baseline,
        "threadline FULL, cache off": full_uncached,
    }
    if peer_installed():
        contenders["peer"] = AgentsSDK
    rates = await rounds_of(contenders, w1_sequential_appends, 2000 // scale)
    base = rates["baseline"]
    print(f"W1 sequential appends (median of 3 rounds): threadline {rates['threadline']:,.0f} msg/s, "
          f"baseline {base:,.0f} msg/s -> {rates['threadline'] / base:.2f}x   "
          f"(baseline with SQLite's default journal: {rates['default journal']:,.0f} msg/s)")  # fmt: skip
    full = rates["threadline FULL, cache off"] / rates["baseline FULL"]
    print(f"   at synchronous=FULL: threadline {rates['threadline FULL, cache off']:,.0f} msg/s, "
          f"baseline {rates['baseline FULL']:,.0f} msg/s -> {full:.2f}x")  # fmt: skip
    if "peer" in rates:
        print(f"   peer, Agents SDK SQLiteSession: {rates['peer']:,.0f} msg/s -> {rates['peer'] / base:.2f}x")


def load_contenders() -> dict[str, Callable[[Path], Store]]:
    contenders: dict[str, Callable[[Path], Store]] = {
        "baseline": Baseline,
        "threadline, history cache off": lambda path: Ours(path, cache=False),
        "threadline, default (cache on)": Ours,
        "baseline FULL": full_baseline,
        "threadline FULL, cache off": full_uncached,
    }
    if peer_installed():
        contenders["peer, Agents SDK SQLiteSession"] = AgentsSDK
    return contenders


async def w2(scale: int) -> None:
    async with opened(load_contenders()) as (stores, _):
        sessions = {name: await long_history(store, 1000, 200 // scale) for name, store in stores.items()}
        times = await alternating_loads(stores, sessions)
    base = times.pop("baseline")
    print(f"W2 load 1,000 messages: baseline median {statistics.median(base):.2f} ms p99 {p(base, 99):.2f} ms")
    for name, ours in times.items():
        print(f"   {name}: median {statistics.median(ours):.2f} ms p99 {p(ours, 99):.2f} ms "
              f"-> {statistics.median(ours) / statistics.median(base):.2f}x time")  # fmt: skip


async def w3(scale: int) -> None:
    async with opened(load_contenders()) as (stores, sizes):
        sessions = {name: await many_sessions(s, 5000 // scale, 10, 1000 // scale) for name, s in stores.items()}
        times = await alternating_loads(stores, sessions)
    base = times.pop("baseline")
    print(f"W3 load 1 of 5,000 sessions: baseline p50 {statistics.median(base):.3f} ms p99 {p(base, 99):.3f} ms")
    print("   files: " + ", ".join(f"{name} {size / 1e6:.1f} MB ({size / sizes['baseline']:.2f}x)"
                                   for name, size in sizes.items()))  # fmt: skip
    for name, ours in times.items():
        print(f"   {name}: p50 {statistics.median(ours):.3f} ms p99 {p(ours, 99):.3f} ms "
              f"-> {statistics.median(ours) / statistics.median(base):.2f}x time")  # fmt: skip


async def w4(scale: int) -> None:
    contenders: dict[str, Callable[[Path], Store]] = {
        "baseline": Baseline, "threadline": Ours, "baseline FULL": full_baseline,
        "threadline FULL, cache off": full_uncached,
    }  # fmt: skip
    if peer_installed():
        contenders["peer, Agents SDK SQLiteSession"] = AgentsSDK
    rates = await rounds_of(contenders, w4_concurrent_appends, 50, 100 // scale)
    base = rates.pop("baseline")
    print(f"W4 50 tasks appending (median of 3 rounds): baseline {base:,.0f} msg/s")
    for name, rate in rates.items():
        print(f"   {name}: {rate:,.0f} msg/s -> {rate / base:.2f}x")


@attrs.frozen
class Turns:
    """One round of turns: one per session, ``in_flight`` at a time."""

    rate: float  # turns/s
    latencies: list[float]  # ms, from the turn's start to its reply

    def __str__(self) -> str:
        p50, p99 = statistics.median(self.latencies), p(self.latencies, 99)
        return f"{self.rate:,.0f} turns/s, p50 {p50:.1f} ms p99 {p99:.1f} ms"


async def w6_whole_turns(storage: dict[str, str], sessions: int, in_flight: int) -> tuple[Turns, Turns]:
    """Every session's first turn (its title is stored then too), then each one's second."""
    async with SessionManager(Config.from_dict({"storage": storage})) as manager:
        made = await asyncio.gather(*(manager.create_session() for _ in range(sessions)))
        limit = asyncio.Semaphore(in_flight)

        async def turn(session: Any, latencies: list[float]) -> None:
            async with limit:
                started = time.perf_counter()
                await session.send("What should I cook tonight with rice, leeks and two eggs?")
                latencies.append((time.perf_counter() - started) * 1000)

        rounds = []
        for _ in range(2):
            latencies: list[float] = []
            started = time.perf_counter()
            await asyncio.gather(*(turn(session, latencies) for session in made))
            rounds.append(Turns(sessions / (time.perf_counter() - started), latencies))
    return rounds[0], rounds[1]


async def w6_paced(storage: dict[str, str], sessions: int, rate: float) -> Turns:
    """Turns arriving at ``rate`` a second, each to its own session (each session's first turn
    done before, unpaced): what a service sees, where closed-loop rounds see their own queue."""
    async with SessionManager(Config.from_dict({"storage": storage})) as manager:
        made = await asyncio.gather(*(manager.create_session() for _ in range(sessions)))
        limit = asyncio.Semaphore(200)

        async def first(session: Any) -> None:
            async with limit:
                await session.send("Hello!")

        await asyncio.gather(*(first(session) for session in made))
        latencies: list[float] = []

        async def turn(session: Any) -> None:
            started = time.perf_counter()
            await session.send("What should I cook tonight with rice, leeks and two eggs?")
            latencies.append((time.perf_counter() - started) * 1000)

        turns, started = [], time.perf_counter()
        for index, session in enumerate(made):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            turns.append(asyncio.ensure_future(turn(session)))
        await asyncio.gather(*turns)
        return Turns(sessions / (time.perf_counter() - started), latencies)


async def w6(scale: int) -> None:
    sessions = 2000 // scale
    print(f"W6 whole turns (Session.send on echo), {sessions:,} sessions, first turn then second:")
    for in_flight in (200, 1000):
        results: dict[str, tuple[Turns, Turns]] = {}
        with tempfile.TemporaryDirectory() as folder:
            backends = {"memory": {"backend": "memory"}, "sqlite": {"backend": "sqlite", "path": f"{folder}/w6.db"}}
            for name, storage in backends.items():
                results[name] = await w6_whole_turns(storage, sessions, in_flight)
        for name, (first, later) in results.items():
            print(f"   {in_flight} in flight, {name}: first {first}; later {later}")
        (first, later), (memory_first, memory_later) = results["sqlite"], results["memory"]
        print(f"   {in_flight} in flight: sqlite first/later turn rate {first.rate / later.rate:.2f}x, against memory: "
              f"first {first.rate / memory_first.rate:.2f}x, later {later.rate / memory_later.rate:.2f}x")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name, storage in {
            "memory": {"backend": "memory"},
            "sqlite": {"backend": "sqlite", "path": f"{folder}/p.db"},
        }.items():
            paced = await w6_paced(storage, sessions, 1000)
            print(f"   arriving at 1,000 turns/s, {name}: {paced}")


def chat_corpus() -> list[str]:
    """Sentences of English prose with code words in it, as assistants write: the docstrings
    of Python's standard library, split into sentences (the same on every run of one Python)."""
    import importlib
    import inspect
    import re
    import sys

    docs: dict[str, None] = {}
    for name in sorted(sys.stdlib_module_names - {"antigravity", "this", "idlelib", "turtledemo", "tkinter"}):
        try:
            module = importlib.import_module(name)
        except Exception:  # a module this Python cannot import is left out
            continue
        for attribute in sorted(dir(module)):
            doc = inspect.getdoc(getattr(module, attribute, None))
            if doc and len(doc) > 80:
                docs[doc] = None
    sentences = (s.strip() for doc in docs for s in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())))
    return sorted({s for s in sentences if 20 <= len(s) <= 400})


def chat_histories(sessions: int, each: int) -> list[list[str]]:
    """``sessions`` conversations of ``each`` messages: a question of one sentence, an answer
    of two to eight, taken at random (seeded) from :func:`chat_corpus`."""
    corpus, pick = chat_corpus(), random.Random(16)
    return [
        [" ".join(pick.sample(corpus, 1 if seq % 2 == 0 else pick.randint(2, 8))) for seq in range(each)]
        for _ in range(sessions)
    ]


async def w7(scale: int) -> None:
    """Space for realistic chat text, and what zstd costs on appends and loads."""
    histories = chat_histories(5000 // scale, 10)
    text = sum(len(t.encode()) for history in histories for t in history)
    contenders: dict[str, Callable[[Path], Store]] = {
        "baseline": Baseline,
        "threadline, default": Ours,
        'threadline, compression = "zstd"': lambda path: Ours(path, compression="zstd"),
    }
    async with opened(contenders) as (stores, sizes):
        for store in stores.values():
            for index, history in enumerate(histories):
                await store.fill_texts(await session_for(store, index), history)
        ours = stores['threadline, compression = "zstd"']
        assert isinstance(ours, Ours)
        started = time.perf_counter()
        await ours.storage.vacuum()  # trains its dictionary, compresses every message with it
        took = time.perf_counter() - started
    print(f"W7 realistic chat text, {len(histories):,} sessions x 10 messages, {text / 1e6:.1f} MB of text:")
    print("   files: " + ", ".join(f"{name} {size / 1e6:.1f} MB ({size / sizes['baseline']:.2f}x)"
                                   for name, size in sizes.items()))  # fmt: skip
    print(f"   (the zstd file after `threadline sessions vacuum`, which took {took:.1f} s)")
    held_out()
    await w7_costs(histories)


def held_out() -> None:
    """The corpus is small (its sentences recur in the messages dozens of times), which flatters
    a dictionary trained on the same database: bodies made only of sentences it never saw."""
    from threadline_sqlite.compression import Codec, train

    corpus, pick = chat_corpus(), random.Random(61)
    halves = corpus[::2], corpus[1::2]
    seen, unseen = ([" ".join(pick.sample(half, pick.randint(1, 8))) for _ in range(20_000)] for half in halves)
    codec = Codec([train(seen)], compress=True)
    raw = sum(len(text.encode()) for text in unseen)
    stored = sum(len(body if isinstance(body, bytes) else body.encode()) for body in map(codec.pack, unseen))
    print(f"   bodies of sentences the dictionary never saw: {stored / raw:.2f}x their text")


async def w7_costs(histories: list[list[str]]) -> None:
    """Appends and cold loads of chat text with zstd (a trained dictionary) against without."""
    long = [text for history in histories[:100] for text in history][:1000]
    rates: dict[str, list[float]] = {"none": [], "zstd": []}
    loads: dict[str, list[float]] = {"none": [], "zstd": []}
    for _ in range(3):
        for kind in ("none", "zstd"):
            with tempfile.TemporaryDirectory() as folder:
                store = Ours(Path(folder) / "w.db", cache=False, compression=kind)  # type: ignore[arg-type]
                await store.open()
                for index, history in enumerate(histories[:200]):  # enough to train a dictionary on
                    await store.fill_texts(await session_for(store, index), history)
                await store.storage.vacuum()
                session = await store.new_session()
                started = time.perf_counter()
                for seq, text in enumerate(long[:500], 1):
                    message = Message(session, seq, Role.USER, (Text(text),))
                    await store.storage.append_messages("default", session, [message])
                rates[kind].append(500 / (time.perf_counter() - started))
                loaded = await store.new_session()
                await store.fill_texts(loaded, long)
                loads[kind] += await timed(50, lambda s=loaded, st=store: st.load(s))  # type: ignore[misc]
                await store.close()
    appends = {kind: statistics.median(values) for kind, values in rates.items()}
    load = {kind: statistics.median(values) for kind, values in loads.items()}
    print(f"   appends of chat text, one at a time: zstd {appends['zstd']:,.0f} msg/s, none {appends['none']:,.0f} "
          f"-> {appends['zstd'] / appends['none']:.2f}x")  # fmt: skip
    print(f"   load 1,000 messages of chat text, cache off: zstd {load['zstd']:.2f} ms, none {load['none']:.2f} ms "
          f"-> {load['zstd'] / load['none']:.2f}x time")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of each workload, for a smoke run")
    parser.add_argument(
        "--only", nargs="*", default=["W1", "W2", "W3", "W4", "W5", "W6", "W7"], help="workloads to run"
    )
    args = parser.parse_args()
    asyncio.run(main(args.quick, set(args.only)))
