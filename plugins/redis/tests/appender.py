"""A separate process for the multi-process tests: appends batches to sessions on Redis and
prints "acked <session> <tag>" after each append is stored.

python appender.py URL PREFIX NAME BATCHES BATCH_SIZE SESSION_ID...
"""

from __future__ import annotations

import asyncio
import sys

from threadline import Message, Role, StorageConflict, Text
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage


async def append_batches(url: str, prefix: str, name: str, batches: int, size: int, session_ids: list[str]) -> None:
    storage = RedisStorage(RedisConfig(url=url, prefix=prefix))
    await storage.open()
    try:
        for index in range(batches):
            session_id = session_ids[index % len(session_ids)]
            tag = f"{name}:{index}"
            while True:
                count = (await storage.get_session("default", session_id)).message_count
                batch = [Message(session_id, count + k + 1, Role.USER, (Text(f"{tag}:{k}"),)) for k in range(size)]
                try:
                    await storage.append_messages("default", session_id, batch)
                    break
                except StorageConflict:
                    continue  # another process got there first: renumber and try again
            print(f"acked {session_id} {tag}", flush=True)
    finally:
        await storage.close()


if __name__ == "__main__":
    url, prefix, name, batches, size, *sessions = sys.argv[1:]
    asyncio.run(append_batches(url, prefix, name, int(batches), int(size), sessions))
