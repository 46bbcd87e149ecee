"""What timing every storage operation costs (the ``metrics`` middleware's storage stage,
``threadline_storage_operation_duration_seconds``): the same storage operations on
threadline-sqlite files, through the stage and without it, in the same process and run,
taking turns operation by operation: an append of two messages, a read of the last 20.

Run: python bench/metrics_storage.py [--rounds 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from threadline import Config, Message, Role, SessionManager, Text


def config(path: Path, chain: list[str]) -> Config:
    return Config.from_dict({"storage": {"backend": "sqlite", "path": str(path)}, "middleware": {"chain": chain}})


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3000, help="appends and reads per contender [3000]")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as directory:
        managers = {
            "sqlite": SessionManager(config(Path(directory) / "bare.db", [])),
            "sqlite, timed": SessionManager(config(Path(directory) / "timed.db", ["metrics"])),
        }
        times: dict[str, dict[str, list[float]]] = {name: {"append": [], "read": []} for name in managers}
        sessions = {}
        for name, manager in managers.items():
            await manager.open()
            sessions[name] = (await manager.create_session(provider="echo")).id
        for index in range(rounds):
            for name, manager in managers.items():
                storage, session = manager.storage, sessions[name]
                pair = [Message(session, 2 * index + n, Role.USER, (Text("hello " * 20),)) for n in (1, 2)]
                started = time.perf_counter()
                await storage.append_messages("default", session, pair)
                appended = time.perf_counter()
                await storage.get_messages("default", session, last=20)
                times[name]["append"].append(appended - started)
                times[name]["read"].append(time.perf_counter() - appended)
        for manager in managers.values():
            await manager.close()
    print(f"SQLite file, median of {rounds} operations each, taking turns")
    base = {kind: statistics.median(values) for kind, values in times["sqlite"].items()}
    for name, kinds in times.items():
        cells = []
        for kind, values in kinds.items():
            median = statistics.median(values)
            cells.append(f"{kind} {median * 1e6:7.1f} µs ({(median / base[kind] - 1) * 100:+5.1f} %)")
        print(f"  {name:<15} " + "   ".join(cells))


if __name__ == "__main__":
    asyncio.run(main())
