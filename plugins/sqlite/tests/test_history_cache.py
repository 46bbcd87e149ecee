"""The history cache never serves what another writer changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from threadline import Message, MessageStatus, Role, SessionRecord, Text
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


@pytest.fixture
async def other(db_path: Path, storage: SQLiteStorage) -> AsyncIterator[SQLiteStorage]:
    """A second storage on the same file, as another process would have."""
    second = SQLiteStorage(SQLiteConfig(path=db_path))
    await second.open()
    yield second
    await second.close()


async def started(storage: SQLiteStorage, texts: list[str]) -> SessionRecord:
    session = await storage.create_session(SessionRecord(id="s1"))
    messages = [Message("s1", seq, Role.USER, (Text(text),)) for seq, text in enumerate(texts, 1)]
    await storage.append_messages("default", "s1", messages)
    return session


async def texts(storage: SQLiteStorage) -> list[str]:
    return [m.text for m in await storage.get_messages("default", "s1")]


async def test_appends_by_another_writer_are_seen(storage: SQLiteStorage, other: SQLiteStorage) -> None:
    await started(storage, ["a", "b"])
    assert await texts(storage) == ["a", "b"]  # now cached
    await other.append_messages("default", "s1", [Message("s1", 3, Role.USER, (Text("c"),))])
    assert await texts(storage) == ["a", "b", "c"]
    assert [m.text for m in await storage.get_messages("default", "s1", last=1)] == ["c"]


async def test_a_status_change_by_another_writer_is_seen(storage: SQLiteStorage, other: SQLiteStorage) -> None:
    await started(storage, ["a", "b"])
    await texts(storage)
    await other.set_message_status("default", "s1", 2, "incomplete", "cut off")
    second = (await storage.get_messages("default", "s1"))[1]
    assert (second.status, second.error) == (MessageStatus.INCOMPLETE, "cut off")


async def test_a_session_deleted_and_made_again_is_read_afresh(storage: SQLiteStorage, other: SQLiteStorage) -> None:
    session = await started(storage, ["old", "old"])
    await texts(storage)
    await other.delete_session("default", "s1")
    await other.create_session(attrs.evolve(session, title="again"))
    await other.append_messages("default", "s1", [Message("s1", seq, Role.USER, (Text("new"),)) for seq in (1, 2)])
    assert await texts(storage) == ["new", "new"]


async def test_the_cache_holds_no_more_than_its_capacity(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=10))
    await storage.open()
    try:
        for index in range(5):
            await storage.create_session(SessionRecord(id=f"s{index}"))
            await storage.append_messages(
                "default", f"s{index}", [Message(f"s{index}", seq, Role.USER, (Text("x"),)) for seq in range(1, 5)]
            )
            await storage.get_messages("default", f"s{index}")
        assert storage._cache is not None and storage._cache._size <= 10
    finally:
        await storage.close()
