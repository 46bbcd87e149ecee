"""What the ``context`` middleware costs a turn on a long session: ``Session.send`` on a
session of 10,000 messages (5,000 turns of about 30 words), with the middleware trimming
what is sent to 8,000 tokens (counted by the provider, or by the estimate alone), with it
summarising the older turns instead, with it finding that everything fits (a budget past
the history), and without it. Memory storage and the offline echo provider (which counts
a word a token, and summarises by saying back the first 200 words it is sent), so that the
middleware's work is what differs; each contender has its own manager and session, and
they take turns send by send in the same process and run. The first send, which makes the
first summary of 10,000 messages, is shown on its own.

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

TRIMMED: dict[str, Any] = {"max_tokens": 8_000}
SUMMARIZED: dict[str, Any] = {"strategy": "summarize", "max_tokens": 8_000, "keep_last": 4, "summary_max_tokens": 200}
CONTENDERS: dict[str, dict[str, Any]] = {
    "no middleware": {},
    "context, trimmed to 8,000 tokens": {"chain": ["context"], "context": TRIMMED},
    "context, trimmed by the estimate alone": {"chain": ["context"], "context": TRIMMED | {"count": "estimate"}},
    "context, summarized at 8,000 tokens": {"chain": ["context"], "context": SUMMARIZED},
    "context, all of it fits": {"chain": ["context"], "context": {"max_tokens": 10**9}},
}
ECHO: dict[str, Any] = {"context_windows": {"echo-*": 1_000_000}}  # the summariser takes a whole transcript


async def main(sends: int, messages: int) -> None:
    text = " ".join(["word"] * 30)
    history = [pair for n in range(messages // 2) for pair in (("user", f"q{n} {text}"), ("assistant", f"a{n} {text}"))]
    managers = {name: SessionManager(Config.from_dict({"middleware": chain, "providers": {"echo": ECHO}}),
                                     storage=MemoryStorage())
                for name, chain in CONTENDERS.items()}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    first: dict[str, float] = {}
    for manager in managers.values():
        await manager.open()
    try:
        sessions = {name: await manager.create_session() for name, manager in managers.items()}
        for name, session in sessions.items():
            await session.add(history)
            started = time.perf_counter()
            await session.send("warm up")
            first[name] = time.perf_counter() - started
        for n in range(sends):
            for name, session in sessions.items():
                started = time.perf_counter()
                await session.send(f"question {n}")
                times[name].append(time.perf_counter() - started)
    finally:
        for manager in managers.values():
            await manager.close()
    base = statistics.median(times["no middleware"])
    print(f"a send on a session of {messages:,} messages, median of {sends} (p99); the first send:")
    for name, taken in times.items():
        p99 = statistics.quantiles(taken, n=100)[98]
        median = statistics.median(taken)
        print(f"   {name}: {median * 1000:.2f} ms ({p99 * 1000:.2f} ms) -> {median / base:.2f}x;"
              f" first {first[name] * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sends, arguments.messages))
