"""Writes are pipelined (threadline_redis.writes): what a caller of the storage relies on
through it: every write answered with its own reply, in order, and a cancelled or timed-out
write that leaves the storage usable and its outcome settled.

A server of the test's own is paused (CLIENT PAUSE ... WRITE) to hold writes on the wire."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from servers import start_server, stop

from threadline import Message, Role, SessionRecord, StorageConflict, StorageUnavailable, Text
from threadline_redis import RedisConfig
from threadline_redis.script_queue import _pack
from threadline_redis.storage import RedisStorage


def message(session_id: str, seq: int) -> Message:
    return Message(session_id, seq, Role.USER if seq % 2 else Role.ASSISTANT, (Text(f"message {seq}"),))


@pytest.fixture
async def paused_storage(own_redis: str) -> AsyncIterator[RedisStorage]:
    storage = RedisStorage(RedisConfig(url=own_redis, socket_timeout=5))
    await storage.open()
    yield storage
    await storage.close()


def pause_writes(url: str, milliseconds: int) -> None:
    client = redis.Redis.from_url(url)
    client.client_pause(milliseconds, all=False)  # writes wait; reads go on
    client.close()


async def count(storage: RedisStorage, session_id: str) -> int:
    stored = await storage.get_session("default", session_id)
    assert len(await storage.get_messages("default", session_id)) == stored.message_count
    return stored.message_count


async def test_concurrent_appends_to_many_sessions_each_get_their_own_reply(storage: RedisStorage) -> None:
    sessions = [await storage.create_session(SessionRecord()) for _ in range(30)]

    async def fill(session: SessionRecord) -> None:
        for seq in range(1, 21):
            await storage.append_messages("default", session.id, [message(session.id, seq)])

    await asyncio.gather(*(fill(s) for s in sessions))
    wrong = message(sessions[0].id, 5)  # each reply is its own call's: this one's is a conflict
    results = await asyncio.gather(
        *(storage.append_messages("default", s.id, [message(s.id, 21)]) for s in sessions[1:]),
        storage.append_messages("default", wrong.session_id, [wrong]),
        return_exceptions=True,
    )
    assert results[:-1] == [None] * 29
    assert isinstance(results[-1], StorageConflict)
    for session in sessions:
        assert [m.seq for m in await storage.get_messages("default", session.id)] == list(
            range(1, 21 + (session is not sessions[0]))
        )


async def test_a_write_cancelled_on_the_wire_ends_once_it_is_stored_and_the_next_reply_is_its_own(
    paused_storage: RedisStorage, own_redis: str
) -> None:
    session = await paused_storage.create_session(SessionRecord())
    await paused_storage.append_messages("default", session.id, [message(session.id, 1)])  # the server has the script
    pause_writes(own_redis, 400)
    append = asyncio.ensure_future(paused_storage.append_messages("default", session.id, [message(session.id, 2)]))
    await asyncio.sleep(0.1)  # sent, held by the pause
    append.cancel()
    with pytest.raises(asyncio.CancelledError):
        await append
    assert await count(paused_storage, session.id) == 2  # it ran before the cancellation came out
    await paused_storage.append_messages("default", session.id, [message(session.id, 3)])
    with pytest.raises(StorageConflict):  # a reply read out of turn would pass this, or fail the one above
        await paused_storage.append_messages("default", session.id, [message(session.id, 3)])
    assert await count(paused_storage, session.id) == 3


async def test_writes_cancelled_while_they_wait_their_turn_are_never_sent(
    paused_storage: RedisStorage, own_redis: str
) -> None:
    sessions = [await paused_storage.create_session(SessionRecord()) for _ in range(5)]
    await paused_storage.append_messages("default", sessions[4].id, [message(sessions[4].id, 1)])  # loads the script
    sessions = sessions[:4]
    pause_writes(own_redis, 400)
    first, *waiting = [
        asyncio.ensure_future(paused_storage.append_messages("default", s.id, [message(s.id, 1)])) for s in sessions
    ]  # the first goes on the wire at once; the others queue behind it
    await asyncio.sleep(0.05)
    for task in waiting[:2]:
        task.cancel()
    done, _ = await asyncio.wait(waiting[:2], timeout=0.1)
    assert len(done) == 2  # at once: the pause still holds the first
    assert not first.done()
    await first
    await waiting[2]
    assert [await count(paused_storage, s.id) for s in sessions] == [1, 0, 0, 1]


async def test_a_write_past_the_socket_timeout_fails_and_the_storage_goes_on(own_redis: str) -> None:
    storage = RedisStorage(RedisConfig(url=own_redis, socket_timeout=0.3))
    await storage.open()
    try:
        session = await storage.create_session(SessionRecord())
        pause_writes(own_redis, 1000)
        with pytest.raises(StorageUnavailable, match="Timeout"):
            await storage.append_messages("default", session.id, [message(session.id, 1)])
        await asyncio.sleep(1)  # the pause ends; the append sent before it ran then, unseen
        stored = await count(storage, session.id)
        await storage.append_messages("default", session.id, [message(session.id, stored + 1)])
        assert await count(storage, session.id) == stored + 1
    finally:
        await storage.close()


async def test_a_batch_whose_scripts_the_server_forgot_runs_each_once(own_redis: str) -> None:
    storage = RedisStorage(RedisConfig(url=own_redis))
    await storage.open()
    try:
        sessions = [await storage.create_session(SessionRecord()) for _ in range(20)]
        client = redis.asyncio.Redis.from_url(own_redis)
        await client.script_flush()
        await client.aclose()
        await asyncio.gather(*(storage.append_messages("default", s.id, [message(s.id, 1)]) for s in sessions))
        assert [await count(storage, s.id) for s in sessions] == [1] * 20
    finally:
        await storage.close()


@pytest.mark.parametrize(
    "command",
    [("EVALSHA", "f" * 40, 1, "k:{ü}s:1", "", 0, -7, "ünïcödé ✓", b"\x00\xff bytes"), ("EVAL", "return 1", 0)],
)
def test_the_packer_without_hiredis_packs_as_redis_py_does(command: tuple[object, ...]) -> None:
    connection = redis.asyncio.Connection()
    assert b"".join(_pack([command, command])) == b"".join(connection.pack_commands([command, command]))


async def test_close_waits_for_the_scripts_on_the_wire_and_queued_and_leaves_no_connection(own_redis: str) -> None:
    storage = RedisStorage(RedisConfig(url=own_redis))
    await storage.open()
    sessions = [await storage.create_session(SessionRecord()) for _ in range(3)]
    await storage.append_messages("default", sessions[2].id, [message(sessions[2].id, 1)])  # loads the script
    pause_writes(own_redis, 300)
    appends = [
        asyncio.ensure_future(storage.append_messages("default", s.id, [message(s.id, 1)])) for s in sessions[:2]
    ]  # the first on the wire, the second queued
    await asyncio.sleep(0.05)
    await storage.close()
    assert await asyncio.gather(*appends) == [None, None]
    with pytest.raises(RuntimeError, match="not open"):
        await storage.append_messages("default", sessions[0].id, [message(sessions[0].id, 2)])
    admin = redis.Redis.from_url(own_redis)
    assert len(admin.client_list()) == 1  # its own
    admin.close()


async def test_a_connection_the_server_closed_while_idle_is_opened_again_before_a_script(tmp_path: Path) -> None:
    server, url = start_server(tmp_path / "redis", "--timeout", "1")  # it closes clients idle 1 s
    try:
        storage = RedisStorage(RedisConfig(url=url))
        await storage.open()
        session = await storage.create_session(SessionRecord())
        await asyncio.sleep(2.5)
        await storage.append_messages("default", session.id, [message(session.id, 1)])
        assert await count(storage, session.id) == 1
        await storage.close()
    finally:
        stop([server])


async def test_a_large_write_the_server_does_not_take_fails_after_the_socket_timeout(tmp_path: Path) -> None:
    server, url = start_server(tmp_path / "redis")
    storage = RedisStorage(RedisConfig(url=url, socket_timeout=1))
    try:
        await storage.open()
        session = await storage.create_session(SessionRecord())
        os.kill(server.pid, signal.SIGSTOP)  # it takes nothing in: the write waits for room
        big = Message(session.id, 1, Role.USER, (Text("x" * 40_000_000),))
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(storage.append_messages("default", session.id, [big]), timeout=10)
    finally:
        os.kill(server.pid, signal.SIGCONT)
        await storage.close()
        stop([server])
