from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest

from threadline.testing import isolated_user_dirs, server_missing  # noqa: F401 (autouse: no real user dirs)
from threadline_postgres import PostgresConfig
from threadline_postgres.storage import PostgresStorage

#: the machine's own server; shared, so each test keeps to a schema of its own, dropped after
DSN_VARIABLE = "THREADLINE_TEST_POSTGRES_DSN"
POSTGRES_DSN = os.environ.get(DSN_VARIABLE, "postgresql://postgres@127.0.0.1:5432/postgres")


async def _reachable(dsn: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=3)
    await connection.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    try:
        asyncio.run(_reachable(POSTGRES_DSN))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        server_missing(f"no PostgreSQL server at {POSTGRES_DSN} ({exc}); start one, or set {DSN_VARIABLE}")
    return POSTGRES_DSN


@pytest.fixture
def new_schema(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """Makes schema names no other test uses; each is dropped, with all in it, after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(f"threadline_test_{uuid.uuid4().hex[:16]}")
        return made[-1]

    yield make

    async def drop() -> None:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            for schema in made:
                await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await connection.close()

    asyncio.run(drop())


@pytest.fixture
def schema(new_schema: Callable[[], str]) -> str:
    return new_schema()


@pytest.fixture
async def storage(postgres_dsn: str, schema: str) -> AsyncIterator[PostgresStorage]:
    storage = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema))
    await storage.open()
    yield storage
    await storage.close()
