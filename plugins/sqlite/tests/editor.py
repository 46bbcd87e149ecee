"""A separate process for the multi-process tests: edits one session's history in a SQLite
database over and over (``replace_messages``: the messages after a random seq replaced by
0 to 4 new ones, "e<edit>:<k>") and prints "edited <edit>" after each is committed.

python editor.py DB_PATH SESSION_ID EDITS SEED
"""

from __future__ import annotations

import asyncio
import random
import sys

from threadline import Message, Role, Text
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


async def edit(path: str, session_id: str, edits: int, seed: int) -> None:
    rng = random.Random(seed)
    storage = SQLiteStorage(SQLiteConfig(path=path, busy_timeout=30))
    await storage.open()
    try:
        for number in range(1, edits + 1):
            count = (await storage.get_session("default", session_id)).message_count
            after = rng.randint(max(count - 6, 0), count)
            added = [
                Message(session_id, after + k + 1, Role.USER, (Text(f"e{number}:{k}"),))
                for k in range(rng.randint(1 if after == count else 0, 4))
            ]
            await storage.replace_messages("default", session_id, after, added, count=count)
            print(f"edited {number}", flush=True)
    finally:
        await storage.close()


if __name__ == "__main__":
    path, session_id, edits, seed = sys.argv[1:]
    asyncio.run(edit(path, session_id, int(edits), int(seed)))
