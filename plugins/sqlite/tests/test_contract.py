"""threadline-sqlite passes the kernel's storage contract in full, with its history cache on
(the `storage` fixture in conftest) and off, and with zstd compression."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from threadline.testing import SearchContract, StorageContract
from threadline_sqlite import SQLiteConfig, compression
from threadline_sqlite.storage import SQLiteStorage


class TestSQLiteStorage(StorageContract, SearchContract):
    pass


class TestSQLiteStorageWithoutCache(StorageContract, SearchContract):
    @pytest.fixture
    async def storage(self, db_path: Path) -> AsyncIterator[SQLiteStorage]:
        storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
        await storage.open()
        yield storage
        await storage.close()


class TestSQLiteStorageCompressed(StorageContract, SearchContract):
    """Every body that zstd makes smaller is stored compressed, with a dictionary."""

    @pytest.fixture
    async def storage(self, db_path: Path) -> AsyncIterator[SQLiteStorage]:
        await with_a_dictionary(db_path)
        storage = SQLiteStorage(SQLiteConfig(path=db_path, compression="zstd"))
        await storage.open()
        yield storage
        await storage.close()


async def with_a_dictionary(db_path: Path) -> None:
    """A new database at ``db_path`` with a zstd dictionary trained on text like the contract's."""
    empty = SQLiteStorage(SQLiteConfig(path=db_path))
    await empty.open()
    await empty.close()
    samples = [f"message {n}: the quick brown fox {'jumps ' * (n % 7)}over the lazy dog {n * 7}" for n in range(2000)]
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("INSERT INTO zstd_dictionaries (dictionary, messages) VALUES (?, 0)", (compression.train(samples),))
