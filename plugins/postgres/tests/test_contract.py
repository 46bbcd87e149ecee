"""threadline-postgres passes the kernel's storage contract in full (it has no search, which is
optional), on the machine's PostgreSQL server, each test in a schema of its own; and, as
storage shared by processes,
the shared-storage contract with two storages on one schema."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from threadline.testing import SharedStorageContract, StorageContract
from threadline_postgres import PostgresConfig
from threadline_postgres.storage import PostgresStorage


class TestPostgresStorage(StorageContract):
    pass


class TestPostgresShared(SharedStorageContract):
    @pytest.fixture
    async def other(self, postgres_dsn: str, schema: str, storage: PostgresStorage) -> AsyncIterator[PostgresStorage]:
        other = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema))
        await other.open()
        yield other
        await other.close()
