"""A separate process for the multi-process turn tests: sends messages on one session through
a SessionManager on the SQLite database, some at once, and prints "sent <text>" after each reply.

python sender.py DB_PATH SESSION_ID NAME SENDS CONCURRENCY
"""

from __future__ import annotations

import asyncio
import sys

import threadline
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


async def send_all(path: str, session_id: str, name: str, sends: int, concurrency: int) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=path, busy_timeout=30))
    config = threadline.Config.from_dict({"providers": {"echo": {"latency": 0.001}}})
    async with threadline.SessionManager(config, storage=storage) as manager:
        session = await manager.get_session(session_id)
        gate = asyncio.Semaphore(concurrency)

        async def send(n: int) -> None:
            async with gate:
                await session.send(f"{name} {n}")
                print(f"sent {name} {n}", flush=True)

        await asyncio.gather(*(send(n) for n in range(sends)))


if __name__ == "__main__":
    path, session_id, name, sends, concurrency = sys.argv[1:]
    asyncio.run(send_all(path, session_id, name, int(sends), int(concurrency)))
