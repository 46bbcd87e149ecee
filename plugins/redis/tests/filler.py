"""A separate process for the scale test: creates sessions on Redis, each with a user message
and a reply, many at once, and prints how many it made.

python filler.py URL PREFIX NAME SESSIONS
"""

from __future__ import annotations

import asyncio
import sys

from threadline import Message, Role, SessionRecord, Text
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage


async def fill(url: str, prefix: str, name: str, sessions: int) -> None:
    storage = RedisStorage(RedisConfig(url=url, prefix=prefix))
    await storage.open()
    gate = asyncio.Semaphore(100)

    async def one(n: int) -> None:
        async with gate:
            session = await storage.create_session(SessionRecord(id=f"{name}{n}", user_id=f"u{n % 50}"))
            turn = [
                Message(session.id, 1, Role.USER, (Text("q"),)),
                Message(session.id, 2, Role.ASSISTANT, (Text("a"),)),
            ]
            await storage.append_messages("default", session.id, turn)

    try:
        await asyncio.gather(*(one(n) for n in range(sessions)))
    finally:
        await storage.close()
    print(f"made {sessions}", flush=True)


if __name__ == "__main__":
    url, prefix, name, sessions = sys.argv[1:]
    asyncio.run(fill(url, prefix, name, int(sessions)))
