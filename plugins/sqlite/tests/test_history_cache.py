"""The history cache never serves what another writer changed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import attrs
import pytest

from threadline import Message, MessageStatus, Role, SessionNotFound, SessionRecord, Text
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


# -- ranged reads: what the cache serves is what the database holds -----------------------

APPENDER = str(Path(__file__).with_name("appender.py"))
# (after_seq, last) of a history of five or more messages
RANGES = [(0, None), (0, 1), (0, 3), (2, None), (2, 1), (2, 2), (4, None), (0, 100), (100, None), (0, 0), (2, 0)]
# something another writer (or the reader itself) does to a session whose history is cached;
# given the cached storage, another on the same file, the file, and a counter
Change = Callable[[SQLiteStorage, SQLiteStorage, Path, int], Awaitable[object]]


async def own_status_change(cached: SQLiteStorage, other: SQLiteStorage, path: Path, index: int) -> None:
    """What a failed send does: the reader's own storage marks a message."""
    await cached.set_message_status("default", "s1", 2, "failed" if index % 2 == 0 else "ok", "boom")


async def status_change_by_another(cached: SQLiteStorage, other: SQLiteStorage, path: Path, index: int) -> None:
    await other.set_message_status("default", "s1", 3, "incomplete" if index % 2 == 0 else "ok")


async def append_by_another(cached: SQLiteStorage, other: SQLiteStorage, path: Path, index: int) -> None:
    count = (await other.get_session("default", "s1")).message_count
    await other.append_messages("default", "s1", [Message("s1", count + 1, Role.USER, (Text(f"more {index}"),))])


async def append_by_another_process(cached: SQLiteStorage, other: SQLiteStorage, path: Path, index: int) -> None:
    command = [sys.executable, APPENDER, str(path), f"p{index}", "1", "2", "s1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)  # noqa: ASYNC221
    assert done.returncode == 0, done.stderr


async def update_of_the_session(cached: SQLiteStorage, other: SQLiteStorage, path: Path, index: int) -> None:
    session = await other.get_session("default", "s1")
    await other.update_session(attrs.evolve(session, title=f"title {index}"))


async def made_again_shorter(cached: SQLiteStorage, other: SQLiteStorage, path: Path, index: int) -> None:
    await other.delete_session("default", "s1")
    await started(other, [f"again {index}", "x", "y", "z"])


async def made_again_as_long(cached: SQLiteStorage, other: SQLiteStorage, path: Path, index: int) -> None:
    count = (await other.get_session("default", "s1")).message_count
    await other.delete_session("default", "s1")
    await started(other, [f"again {index}:{seq}" for seq in range(count)])


CHANGES: list[Change] = [
    own_status_change, status_change_by_another, append_by_another, append_by_another_process,
    update_of_the_session, made_again_shorter, made_again_as_long,
]  # fmt: skip


@pytest.mark.parametrize("history_cache", [20_000, 3, 0], ids=["cache", "small-cache", "no-cache"])
@pytest.mark.parametrize("change", CHANGES, ids=[change.__name__ for change in CHANGES])
async def test_ranged_reads_after_a_change_answer_as_with_the_cache_off(
    db_path: Path, change: Change, history_cache: int
) -> None:
    """Each range is read right after the change, from a history cached just before it: the
    first read after a change is the one that finds the cached entry stale."""
    cached = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=history_cache))
    reference = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await cached.open()
    await reference.open()
    try:
        await started(cached, ["a", "b", "c", "d", "e"])
        for index, (after_seq, last) in enumerate(RANGES):
            await cached.get_messages("default", "s1")  # the whole history, now cached
            await change(cached, reference, db_path, index)
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


async def test_an_unchanged_history_is_read_from_the_database_once(storage: SQLiteStorage) -> None:
    await started(storage, ["a", "b"])
    statements: list[str] = []
    for reader in storage._readers:
        await reader.set_trace_callback(statements.append)

    async def message_reads() -> list[str]:
        read = [s for s in statements if "FROM messages" in s]
        statements.clear()
        return read

    assert await texts(storage) == ["a", "b"]
    assert len(await message_reads()) == 1
    assert await texts(storage) == ["a", "b"]
    assert await message_reads() == []  # the session's row said nothing changed
    await storage.append_messages("default", "s1", [Message("s1", 3, Role.USER, (Text("c"),))])
    assert await texts(storage) == ["a", "b", "c"]
    (only_the_new,) = await message_reads()
    assert "seq > 2" in only_the_new
