"""The history cache never serves what another writer changed: the kernel's shared-storage
contract, and what only SQLite has (another process's appender, the statements it runs)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline import Message, Role, SessionNotFound, SessionRecord, Text
from threadline.testing import SharedStorageContract
from threadline.testing.shared_storage_contract import RANGES, started, texts
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


async def test_the_cache_holds_no_more_than_its_capacity_dropping_the_least_recent(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=8))
    await storage.open()
    try:
        for name, count in (("s1", 4), ("s2", 3), ("s3", 4), ("big", 8)):
            await storage.create_session(SessionRecord(id=name))
            batch = [Message(name, seq, Role.USER, (Text("x"),)) for seq in range(1, count + 1)]
            await storage.append_messages("default", name, batch)
        cache = storage._cache
        assert cache is not None

        async def read(name: str) -> list[str]:
            await storage.get_messages("default", name)
            held = {key[1]: len(entry.messages) for key, entry in cache._entries.items()}
            assert cache._size == sum(held.values()) <= 8
            return list(held)

        assert await read("s1") == ["s1"]
        assert await read("s2") == ["s1", "s2"]
        assert await read("s3") == ["s2", "s3"]  # s1, read longest ago, made room
        await storage.append_messages("default", "s3", [Message("s3", 5, Role.USER, (Text("x"),))])
        assert await read("s3") == ["s2", "s3"]  # 3 + 5: exactly full
        assert await read("big") == ["big"]  # a history of exactly the capacity is kept
    finally:
        await storage.close()


class TestSharedSQLiteStorage(SharedStorageContract):
    """Another storage on the same file sees what ``storage`` keeps, with its cache in each
    setting: on, so small that a history is left out, and off."""

    @pytest.fixture(params=[20_000, 3, 0], ids=["cache", "small-cache", "no-cache"])
    async def storage(self, db_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SQLiteStorage]:
        storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=request.param))
        await storage.open()
        yield storage
        await storage.close()

    @pytest.fixture
    async def other(self, db_path: Path, storage: SQLiteStorage) -> AsyncIterator[SQLiteStorage]:
        other = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
        await other.open()
        yield other
        await other.close()


APPENDER = str(Path(__file__).with_name("appender.py"))


async def test_ranged_reads_after_an_append_by_another_process_answer_as_with_the_cache_off(db_path: Path) -> None:
    cached = SQLiteStorage(SQLiteConfig(path=db_path))
    reference = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await cached.open()
    await reference.open()
    try:
        await started(cached, ["a", "b", "c", "d", "e"])
        for index, (after_seq, last) in enumerate(RANGES):
            await cached.get_messages("default", "s1")  # the whole history, now cached
            command = [sys.executable, APPENDER, str(db_path), f"p{index}", "1", "2", "s1"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)  # noqa: ASYNC221
            assert done.returncode == 0, done.stderr
            got = await cached.get_messages("default", "s1", after_seq=after_seq, last=last)
            expected = await reference.get_messages("default", "s1", after_seq=after_seq, last=last)
            assert got == expected, f"after_seq={after_seq} last={last}"
    finally:
        await cached.close()
        await reference.close()


@pytest.mark.parametrize("history_cache", [20_000, 0], ids=["cache", "no-cache"])
async def test_last_0_is_no_messages_whether_or_not_the_history_is_cached(db_path: Path, history_cache: int) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=history_cache))
    await storage.open()
    try:
        await started(storage, ["a", "b", "c"])
        for _ in range(2):  # not cached yet, then (with the cache on) cached
            assert await storage.get_messages("default", "s1", last=0) == []
            assert await storage.get_messages("default", "s1", after_seq=1, last=0) == []
            assert await storage.get_messages("default", "s1", last=-1) == []
            assert [m.seq for m in await storage.get_messages("default", "s1", after_seq=-2, last=2)] == [2, 3]
            assert [m.seq for m in await storage.get_messages("default", "s1")] == [1, 2, 3]
        with pytest.raises(SessionNotFound):
            await storage.get_messages("default", "nope", last=0)
    finally:
        await storage.close()


async def test_a_history_is_read_from_the_database_only_as_far_as_another_process_wrote_it(
    storage: SQLiteStorage, db_path: Path
) -> None:
    """What this storage made and appended it holds already; what another process appended
    is read from where the held history ends."""
    await started(storage, ["a", "b"])
    statements: list[str] = []
    for reader in storage._readers:
        await reader.set_trace_callback(statements.append)

    async def message_reads() -> list[str]:
        read = [s for s in statements if "FROM messages" in s]
        statements.clear()
        return read

    assert await texts(storage) == ["a", "b"]
    assert await message_reads() == []  # the session's row said nothing changed since its own writes
    other = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await other.open()
    try:
        await other.append_messages("default", "s1", [Message("s1", 3, Role.USER, (Text("c"),))])
    finally:
        await other.close()
    assert await texts(storage) == ["a", "b", "c"]
    (only_the_new,) = await message_reads()
    assert "key > base + 2" in only_the_new
    assert await texts(storage) == ["a", "b", "c"]
    assert await message_reads() == []


async def test_the_cache_of_empty_and_deleted_sessions_stays_within_its_capacity(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=10))
    await storage.open()
    try:
        for _ in range(50):
            session = await storage.create_session(SessionRecord())
            if _ % 2:
                await storage.delete_session("default", session.id)
        assert storage._cache is not None and len(storage._cache._entries) <= 10
    finally:
        await storage.close()


async def test_a_held_history_reads_back_as_the_database_gives_it(storage: SQLiteStorage, db_path: Path) -> None:
    """A message whose metadata the database gives back in its own form is read again, not
    kept as the caller gave it."""
    session = await storage.create_session(SessionRecord(id="s1"))
    given = Message("s1", 1, Role.USER, (Text("hi"),), metadata={"pair": (1, 2), "nested": {"x": 1}})
    await storage.append_messages("default", "s1", [given])
    other = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await other.open()
    try:
        assert await storage.get_messages("default", session.id) == await other.get_messages("default", session.id)
    finally:
        await other.close()
