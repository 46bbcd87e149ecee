"""`threadline migrate` against the plainest copy the storages allow, same run, same machine.

Source: a SQLite file of SESSIONS sessions with MESSAGES messages each, made once. Each round
copies it into a new PostgreSQL schema twice, in turn:

- baseline: the target's `import_records` fed straight from the source's `export_records`,
  in one transaction: the fewest steps a copy between two backends can take through
  threadline, with no batching, no checksum and nothing read back;
- migrate: `threadline.migrate_sessions`, as `threadline migrate` runs it: batches of about
  2,000 records, each all or nothing, every record hashed, the target read back and verified.

The ratio is migrate's rate over the baseline's, the median of the rounds' ratios. Schemas
are bench_<random hex>_*, dropped at the end; nothing else on the server is touched.

Run: python bench/migrate.py [--sessions 2000] [--messages 10] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from storage_workloads import ROUNDS, installed, ratio, rounds_of

from threadline import Config, Message, Role, SessionManager, SessionRecord, Storage, Text, migrate_sessions

DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RUN = f"bench_{secrets.token_hex(4)}"
TEXT = ("The quick brown fox jumps over the lazy dog. " * 5)[:200]


def storage_config(table: dict[str, object]) -> Config:
    return Config.from_dict({"storage": table})


async def fill(source: Storage, sessions: int, messages: int) -> None:
    async def records() -> AsyncIterator[SessionRecord | Message]:
        for number in range(sessions):
            session = SessionRecord(tenant=f"t{number % 7}", user_id=f"u{number % 100}", title=f"chat {number}")
            yield session
            for seq in range(1, messages + 1):
                yield Message(session.id, seq, Role.USER if seq % 2 else Role.ASSISTANT, (Text(TEXT),))

    await source.import_records(records())


async def copy_plain(source: Storage, target: Storage) -> None:
    await target.import_records(source.export_records(None))


async def copy_migrate(source: Storage, target: Storage) -> None:
    await migrate_sessions(source, target)


async def main(sessions: int, messages: int, dsn: str) -> None:
    records = sessions * (messages + 1)
    made: list[str] = []
    print(f"source: SQLite, {sessions:,} sessions of {messages} messages ({records:,} records); target: PostgreSQL")
    print(f"threadline-sqlite {installed('threadline-sqlite')}, threadline-postgres {installed('threadline-postgres')}")
    with tempfile.TemporaryDirectory() as folder:
        source_config = storage_config({"backend": "sqlite", "path": str(Path(folder) / "source.db")})
        async with SessionManager(source_config) as reading:
            await fill(reading.storage, sessions, messages)

            async def once(name: str) -> float:
                made.append(f"{RUN}_{len(made)}")
                target_config = storage_config({"backend": "postgres", "dsn": dsn, "schema": made[-1]})
                async with SessionManager(target_config) as writing:
                    copy = copy_plain if name == "baseline" else copy_migrate
                    began = time.perf_counter()
                    await copy(reading.storage, writing.storage)
                    return records / (time.perf_counter() - began)

            try:
                rates = await rounds_of(["baseline", "migrate"], once)
            finally:
                connection = await asyncpg.connect(dsn)
                for schema in made:
                    await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                await connection.close()
    base, ours = (sorted(rates[name])[ROUNDS // 2] for name in ("baseline", "migrate"))
    print(f"copy ({ROUNDS} rounds, medians): baseline {base:,.0f} records/s, migrate {ours:,.0f} records/s "
          f"-> {ratio(rates, 'migrate'):.2f}x")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--dsn", default=DSN, help=f"the PostgreSQL server (default {DSN}); only its own schemas")
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.messages, args.dsn))
