"""The stores of every installed kind, new and empty for each test: a SQLite file, a key
prefix on the machine's Redis server, a schema on its PostgreSQL server (each removed after
the test). A test that needs a server fails when it is not reachable under ``CI``, and is
skipped elsewhere (``server_missing``)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from threadline.testing import server_missing

REDIS_URL = os.environ.get("THREADLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DSN_VARIABLE = "THREADLINE_TEST_POSTGRES_DSN"
POSTGRES_DSN = os.environ.get(DSN_VARIABLE, "postgresql://postgres@127.0.0.1:5432/postgres")
KINDS = ("memory", "sqlite", "redis", "postgres")
PERSISTENT = ("sqlite", "redis", "postgres")

StorageTable = Callable[[str], dict[str, Any]]


@pytest.fixture
def storage_table(tmp_path: Path) -> Iterator[StorageTable]:
    """Makes the ``[storage]`` table of a new, empty store of a kind: a SQLite file, a Redis
    key prefix or a PostgreSQL schema no other test uses, each removed after the test."""
    prefixes: list[str] = []
    schemas: list[str] = []

    def make(kind: str) -> dict[str, Any]:
        name = uuid.uuid4().hex[:16]
        if kind == "sqlite":
            return {"backend": "sqlite", "path": str(tmp_path / f"{name}.db")}
        if kind == "redis":
            _redis_reachable()
            prefixes.append(f"threadline-test:{name}:")
            return {"backend": "redis", "url": REDIS_URL, "prefix": prefixes[-1]}
        if kind == "postgres":
            _postgres_run()
            schemas.append(f"threadline_test_{name}")
            return {"backend": "postgres", "dsn": POSTGRES_DSN, "schema": schemas[-1]}
        return {"backend": kind}

    yield make
    client = redis.Redis.from_url(REDIS_URL)
    for prefix in prefixes:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    client.close()
    if schemas:
        _postgres_run(*(f"DROP SCHEMA IF EXISTS {schema} CASCADE" for schema in schemas))


def _redis_reachable() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        server_missing(f"no Redis server at {REDIS_URL} ({exc}); start one, or set THREADLINE_TEST_REDIS_URL")


def _postgres_run(*statements: str) -> None:
    """Run ``statements`` on the server (in a thread: a test's event loop may be running)."""

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=3)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    try:
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, run()).result()
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        server_missing(f"no PostgreSQL server at {POSTGRES_DSN} ({exc}); start one, or set {DSN_VARIABLE}")
