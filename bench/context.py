"""What the ``context`` middleware costs a turn on a long session: ``Session.send`` on a
session of 10,000 messages (5,000 turns of about 30 words), with the middleware trimming
what is sent to 8,000 tokens, with it finding that everything fits (a budget past the
history), and without it. Memory storage and the offline echo provider, so that the
middleware's work is what differs; each contender has its own manager and session, and
they take turns send by send in the same process and run.

Run: python bench/context.py [--sends 200] [--messages 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from threadline import Config, SessionManager
from threadline.builtins.memory import MemoryStorage

CONTENDERS: dict[str, dict[str, Any]] = {
    "no middleware": {},
    "context, trimmed to 8,000 tokens": {"chain": ["context"], "context": {"max_tokens": 8_000}},
    "context, all of it fits": {"chain": ["context"], "context": {"max_tokens": 10**9}},
}


async def main(sends: int, messages: int) -> None:
    text = " ".join(["word"] * 30)
    history = [pair for n in range(messages // 2) for pair in (("user", f"q{n} {text}"), ("assistant", f"a{n} {text}"))]
    managers = {name: SessionManager(Config.from_dict({"middleware": chain}), storage=MemoryStorage())
                for name, chain in CONTENDERS.items()}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for manager in managers.values():
        await manager.open()
    try:
        sessions = {name: await manager.create_session() for name, manager in managers.items()}
        for session in sessions.values():
            await session.add(history)
            await session.send("warm up")
        for n in range(sends):
            for name, session in sessions.items():
                started = time.perf_counter()
                await session.send(f"question {n}")
                times[name].append(time.perf_counter() - started)
    finally:
        for manager in managers.values():
            await manager.close()
    base = statistics.median(times["no middleware"])
    print(f"a send on a session of {messages:,} messages, median of {sends} (p99):")
    for name, taken in times.items():
        p99 = statistics.quantiles(taken, n=100)[98]
        median = statistics.median(taken)
        print(f"   {name}: {median * 1000:.2f} ms ({p99 * 1000:.2f} ms) -> {median / base:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sends, arguments.messages))
