from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "threadline.db"


@pytest.fixture
async def storage(db_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    yield storage
    await storage.close()


@pytest.fixture(autouse=True)
def no_connection_left_open() -> Iterator[None]:
    """aiosqlite's connection threads keep the process alive: a connection a test forgets to
    close would hang the whole run at exit. Make it this test's failure instead."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in set(threading.enumerate()) - before if "_connection_worker_thread" in t.name]
    for thread in leftover:
        thread.join(timeout=5)
    still = [t.name for t in leftover if t.is_alive()]
    assert not still, f"the test left SQLite connections open: {still}"
