"""A separate process for the multi-process turn tests: sends messages on one session through
a SessionManager on Redis, all at once, and prints "sent <text>" after each reply.

python sender.py URL PREFIX SESSION_ID NAME SENDS
"""

from __future__ import annotations

import asyncio
import sys

import threadline
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage


async def send_all(url: str, prefix: str, session_id: str, name: str, sends: int) -> None:
    storage = RedisStorage(RedisConfig(url=url, prefix=prefix))
    config = threadline.Config.from_dict({"providers": {"echo": {"latency": 0.001}}, "defaults": {"turn_wait": 300}})
    async with threadline.SessionManager(config, storage=storage) as manager:
        session = await manager.get_session(session_id)

        async def send(n: int) -> None:
            await session.send(f"{name} {n}")
            print(f"sent {name} {n}", flush=True)

        await asyncio.gather(*(send(n) for n in range(sends)))


if __name__ == "__main__":
    url, prefix, session_id, name, sends = sys.argv[1:]
    asyncio.run(send_all(url, prefix, session_id, name, int(sends)))
