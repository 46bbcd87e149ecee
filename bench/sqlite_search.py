"""threadline-sqlite's search against a raw FTS5 query on the same database, same run.

N messages of 30 words drawn from a vocabulary of 5,000, in sessions of 100; each search
looks for one word (about N * 30 / 5,000 hits, the best 20 returned). Contenders, in turn
within each round so that a busy moment of the machine hits them all alike:

- raw: aiosqlite on the same file, ``SELECT rowid, snippet(...) FROM message_search WHERE
  message_search MATCH ? ORDER BY rank LIMIT 20`` (the baseline; nothing joined)
- search: ``SQLiteStorage.search_messages``, nothing pending (a reader's EXISTS, then the query)
- search, always writes: the same, after the pending rows' write transaction that every
  search made before it asked first (what it cost)
- search after an append: 10 messages appended before each search (not timed), so that
  each search indexes them first

Run with threadline-sqlite installed: python bench/sqlite_search.py [--messages N] [--searches K]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiosqlite

from threadline import Message, Role, SearchQuery, SessionRecord, Text
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.schema import INDEX_PENDING
from threadline_sqlite.storage import SQLiteStorage

RAW = (
    "SELECT rowid, snippet(message_search, 0, '[', ']', '…', 16) FROM message_search "
    "WHERE message_search MATCH ? ORDER BY rank LIMIT 20"
)


async def main(messages: int, searches: int, rounds: int) -> None:
    rng = random.Random(7)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(4, 9))) for _ in range(5000)]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "search.db"
        storage = SQLiteStorage(SQLiteConfig(path=path))
        await storage.open()
        sessions = []
        for number in range(messages // 100):
            session = await storage.create_session(SessionRecord(id=f"s{number}"))
            sessions.append(session)
            batch = [
                Message(session.id, seq, Role.USER, (Text(" ".join(rng.choices(vocabulary, k=30))),))
                for seq in range(1, 101)
            ]
            await storage.append_messages(session.tenant, session.id, batch)
        await storage.search_messages(SearchQuery(vocabulary[0]))  # index what the appends left pending
        raw = await aiosqlite.connect(path)
        appended = dict.fromkeys((session.id for session in sessions), 100)

        async def raw_search(word: str) -> None:
            await raw.execute_fetchall(RAW, (f'"{word}"',))

        async def search(word: str) -> None:
            await storage.search_messages(SearchQuery(word))

        async def always_writes(word: str) -> None:
            async def index(db: aiosqlite.Connection) -> None:
                for statement in INDEX_PENDING:
                    await db.execute(statement)

            await storage._write.write(index)
            await storage.search_messages(SearchQuery(word))

        async def append_ten() -> None:
            session = rng.choice(sessions)
            start = appended[session.id] + 1
            batch = [
                Message(session.id, seq, Role.USER, (Text(" ".join(rng.choices(vocabulary, k=30))),))
                for seq in range(start, start + 10)
            ]
            await storage.append_messages(session.tenant, session.id, batch)
            appended[session.id] = start + 9

        contenders = {
            "raw FTS5 query (aiosqlite)": (raw_search, None),
            "search, nothing pending": (search, None),
            "search, always writes (before)": (always_writes, None),
            "search, 10 appended before each": (search, append_ten),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, (run, before) in contenders.items():
                spent = 0.0
                for _ in range(searches):
                    if before is not None:
                        await before()
                    word = rng.choice(vocabulary)
                    started = time.perf_counter()
                    await run(word)
                    spent += time.perf_counter() - started
                times[name].append(spent / searches * 1e6)
        await raw.close()
        await storage.close()
    baseline = statistics.median(times["raw FTS5 query (aiosqlite)"])
    print(f"{messages:,} messages, {searches} searches a round, median of {rounds} rounds")
    print("| | µs a search | \u00d7 raw |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / baseline:.2f}\u00d7 |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.searches, arguments.rounds))
