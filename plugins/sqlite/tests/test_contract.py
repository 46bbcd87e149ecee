"""threadline-sqlite passes the kernel's storage contract in full, with its history cache on
(the `storage` fixture in conftest) and off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.testing import StorageContract
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


class TestSQLiteStorage(StorageContract):
    pass


class TestSQLiteStorageWithoutCache(StorageContract):
    @pytest.fixture
    async def storage(self, db_path: Path) -> AsyncIterator[SQLiteStorage]:
        storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
        await storage.open()
        yield storage
        await storage.close()
