"""A separate process for the multi-process tests: appends batches to sessions in a
SQLite database and prints "acked <session> <tag>" after each append is committed.

python appender.py DB_PATH NAME BATCHES BATCH_SIZE SESSION_ID...
"""

from __future__ import annotations

import asyncio
import sys

from threadline import Message, Role, StorageConflict, Text
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


async def append_batches(path: str, name: str, batches: int, size: int, session_ids: list[str]) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=path, busy_timeout=30))
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
                    continue  # the other process got there first: renumber and try again
            print(f"acked {session_id} {tag}", flush=True)
    finally:
        await storage.close()


if __name__ == "__main__":
    path, name, batches, size, *sessions = sys.argv[1:]
    asyncio.run(append_batches(path, name, int(batches), int(size), sessions))
