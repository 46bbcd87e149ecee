"""The workloads the storage benches share (bench/sqlite_storage.py, bench/redis_storage.py):
each takes a store with ``append(session, seq)``, ``load(session)`` and ``fill(session, n)``:
a contender or the baseline; threadline's also makes its sessions, ``new_session()``."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

Store = Any  # each bench's Baseline | Ours | AgentsSDK


async def session_for(store: Store, index: int) -> str:
    return await store.new_session() if hasattr(store, "new_session") else f"s{index}"  # threadline's own ids


async def w1_sequential_appends(store: Store, appends: int) -> float:
    session = await session_for(store, 0)
    started = time.perf_counter()
    for seq in range(1, appends + 1):
        await store.append(session, seq)
    return appends / (time.perf_counter() - started)


async def timed(calls: int, load: Callable[[], Awaitable[Any]]) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await load()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def alternating_loads(stores: dict[str, Store], sessions: dict[str, list[str]]) -> dict[str, list[float]]:
    """Load ``sessions[name][i]`` from each store in turn, so a busy moment of the machine
    hits every contender alike; returns each one's times in ms."""
    times: dict[str, list[float]] = {name: [] for name in stores}
    for index in range(len(next(iter(sessions.values())))):
        for name, store in stores.items():
            started = time.perf_counter()
            await store.load(sessions[name][index])
            times[name].append((time.perf_counter() - started) * 1000)
    return times


async def long_history(store: Store, messages: int, loads: int) -> list[str]:
    """W2's session, filled; the session to load, ``loads`` times."""
    session = await session_for(store, 0)
    await store.fill(session, messages)
    return [session] * loads


async def many_sessions(store: Store, sessions: int, each: int, loads: int) -> list[str]:
    """W3's sessions, filled; ``loads`` of them picked at random (the same picks for every store)."""
    ids = [await session_for(store, index) for index in range(sessions)]
    for session in ids:
        await store.fill(session, each)
    return random.Random(7).choices(ids, k=loads)


async def w4_concurrent_appends(store: Store, tasks: int, each: int) -> float:
    ids = [await session_for(store, index) for index in range(tasks)]

    async def fill(session: str) -> None:
        for seq in range(1, each + 1):
            await store.append(session, seq)

    started = time.perf_counter()
    await asyncio.gather(*(fill(session) for session in ids))
    return tasks * each / (time.perf_counter() - started)


ROUNDS = 7


async def rounds_of(names: Iterable[str], once: Callable[[str], Awaitable[float]]) -> dict[str, list[float]]:
    """ROUNDS rounds, each running every contender (``once(name)``: its rate) in turn, so that
    a busy moment of the machine hits them all; each one's rate in each round."""
    names = list(names)
    results: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(ROUNDS):
        for name in names:
            results[name].append(await once(name))
    return results


def ratio(rates: dict[str, list[float]], name: str, to: str = "baseline") -> float:
    """The median of ``name``'s rate over ``to``'s, round by round: each pair ran moments
    apart, so the machine's drift between rounds (it moves the baseline's own rate by a
    third here) cancels out."""
    return statistics.median(a / b for a, b in zip(rates[name], rates[to], strict=True))


def installed(name: str) -> str:
    """A distribution's version, or ``not installed``."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if q < 100 else max(values)
