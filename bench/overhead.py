"""Per-send overhead: `Session.send` (echo + memory storage) against calling the echo
provider directly, in the same process.

Run: python bench/overhead.py [--sends 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from threadline import Message, Request, Role, SessionManager, Text
from threadline.builtins.echo import EchoProvider
from threadline.builtins.memory import MemoryStorage

TURNS_PER_SESSION = 10
TEXT = "x" * 200


async def direct(provider: EchoProvider, sends: int) -> float:
    """The same conversations, the history kept in a list and sent to the provider."""
    started = time.perf_counter()
    for index in range(sends):
        if index % TURNS_PER_SESSION == 0:
            history: list[Message] = []
        history.append(Message("bench", len(history) + 1, Role.USER, (Text(TEXT),)))
        response = await provider.complete(Request(None, tuple(history)))
        history.append(Message("bench", len(history) + 1, Role.ASSISTANT, response.parts, usage=response.usage))
    return (time.perf_counter() - started) / sends


async def through_sessions(manager: SessionManager, sends: int) -> float:
    started = time.perf_counter()
    for index in range(sends):
        if index % TURNS_PER_SESSION == 0:
            session = await manager.create_session()
        await session.send(TEXT)
    return (time.perf_counter() - started) / sends


async def main(sends: int, rounds: int) -> None:
    baseline, ours = [], []
    for _ in range(rounds):
        provider = EchoProvider()
        async with SessionManager(storage=MemoryStorage(), providers={"echo": provider}) as manager:
            baseline.append(await direct(provider, sends))
            ours.append(await through_sessions(manager, sends))
            provider.requests.clear()
    base, send = statistics.median(baseline) * 1e6, statistics.median(ours) * 1e6
    print(f"sends per round: {sends}, rounds: {rounds}, sessions of {TURNS_PER_SESSION} turns")
    print(f"echo.complete directly : {base:8.1f} µs per call (history kept in a list)")
    print(f"Session.send           : {send:8.1f} µs per send  ({send / base:.1f}x, +{send - base:.1f} µs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.sends, args.rounds))
