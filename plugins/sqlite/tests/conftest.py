from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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
