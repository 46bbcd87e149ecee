"""Several OS processes on one Redis server: turns stay whole, nothing acknowledged is lost
and no batch is stored in part, even when a writer is killed with SIGKILL mid-flight."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import attrs
import pytest

import threadline
from threadline import SessionQuery, SessionRecord, SessionStatus, StorageEvent
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage

HERE = Path(__file__).parent


def helper(script: str, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(HERE / script), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def make_sessions(url: str, prefix: str, count: int) -> list[str]:
    storage = RedisStorage(RedisConfig(url=url, prefix=prefix))
    await storage.open()
    try:
        return [(await storage.create_session(SessionRecord(id=f"s{i}"))).id for i in range(count)]
    finally:
        await storage.close()


async def read_all(url: str, prefix: str, session_ids: list[str]) -> dict[str, list[tuple[int, str]]]:
    storage = RedisStorage(RedisConfig(url=url, prefix=prefix))
    await storage.open()
    try:
        found = {}
        for session_id in session_ids:
            messages = await storage.get_messages("default", session_id)
            assert (await storage.get_session("default", session_id)).message_count == len(messages)
            found[session_id] = [(m.seq, m.text) for m in messages]
        return found
    finally:
        await storage.close()


async def test_turns_from_three_processes_on_one_session_stay_whole(redis_url: str, prefix: str) -> None:
    """Every send succeeds, and every user message is followed by its own reply, though three
    processes send 200 messages each on one session, all at once."""
    (session_id,) = await make_sessions(redis_url, prefix, 1)
    senders = [helper("sender.py", redis_url, prefix, session_id, name, "200") for name in ("a", "b", "c")]
    for sender in senders:
        out, err = sender.communicate(timeout=300)
        assert sender.returncode == 0, err
        assert out.count("sent ") == 200
    (history,) = (await read_all(redis_url, prefix, [session_id])).values()
    assert [seq for seq, _ in history] == list(range(1, 1201))
    for (_, user), (_, reply) in zip(history[::2], history[1::2], strict=True):
        assert reply == user  # the echo's reply to exactly that user message


@pytest.mark.parametrize("trial", range(10))
async def test_a_writer_killed_mid_flight_loses_no_acknowledged_append(redis_url: str, prefix: str, trial: int) -> None:
    sessions = await make_sessions(redis_url, prefix, 4)
    kill_after = random.Random(f"{os.getpid()}-{trial}").randint(5, 200)
    writers = [helper("appender.py", redis_url, prefix, name, "300", "3", *sessions) for name in ("a", "b", "c")]
    doomed = writers[0]
    acked: list[str] = []
    assert doomed.stdout is not None
    for line in doomed.stdout:
        acked.append(line.split()[2])
        if len(acked) >= kill_after:
            break
    doomed.send_signal(signal.SIGKILL)
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == (-signal.SIGKILL if writer is doomed else 0), err

    found = await read_all(redis_url, prefix, sessions)
    stored_batches: dict[str, int] = defaultdict(int)
    for rows in found.values():
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
        for _, text in rows:
            stored_batches[text.rsplit(":", 1)[0]] += 1
    assert all(count == 3 for count in stored_batches.values()), "a batch was stored in part"
    assert not [tag for tag in acked if tag not in stored_batches], f"acknowledged but lost (kill at {kill_after})"
    assert sum(1 for tag in stored_batches if not tag.startswith("a:")) == 2 * 300


TAKE_AND_HANG = """
import asyncio, sys, time
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage

async def take(url, prefix, session_id):
    storage = RedisStorage(RedisConfig(url=url, prefix=prefix))
    await storage.open()
    assert await storage.take_turn("default", session_id, "doomed", 1.0)
    print("taken", flush=True)
    time.sleep(600)

asyncio.run(take(*sys.argv[1:]))
"""


async def test_a_turn_lease_whose_holder_was_killed_runs_out(redis_url: str, prefix: str) -> None:
    (session_id,) = await make_sessions(redis_url, prefix, 1)
    holder = subprocess.Popen(  # noqa: ASYNC220 (it hangs until killed: nothing to wait for)
        [sys.executable, "-c", TAKE_AND_HANG, redis_url, prefix, session_id], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "taken"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    async with threadline.SessionManager(storage=RedisStorage(RedisConfig(url=redis_url, prefix=prefix))) as manager:
        session = await manager.get_session(session_id)
        assert (await session.send("still here")).text == "still here"


async def test_a_process_hears_of_what_another_process_changes(
    storage: RedisStorage, redis_url: str, prefix: str
) -> None:
    heard: list[StorageEvent] = []

    async def listen(tenant: str | None) -> None:
        async for event in storage.events(tenant):
            heard.append(event)
            if event.kind == "deleted":
                return

    listener = asyncio.create_task(listen(None))
    await asyncio.sleep(0.2)  # subscribed: pub/sub tells only who listens
    (session_id,) = await make_sessions(redis_url, prefix, 1)
    sender = helper("sender.py", redis_url, prefix, session_id, "a", "2")
    _, err = await asyncio.to_thread(sender.communicate, timeout=120)
    assert sender.returncode == 0, err
    await storage.replace_messages("default", session_id, 2, [], count=4)
    session = await storage.get_session("default", session_id)
    await storage.update_session(attrs.evolve(session, status=SessionStatus.ARCHIVED))
    await storage.delete_session("default", session_id)
    await asyncio.wait_for(listener, timeout=10)
    assert [(e.kind, e.message_count, e.status) for e in heard] == [
        ("created", 0, "active"),
        ("appended", 1, None),
        ("updated", None, "active"),  # the first message became its title
        ("appended", 2, None),
        ("appended", 3, None),
        ("appended", 4, None),
        ("replaced", 2, None),
        ("updated", None, "archived"),
        ("deleted", None, None),
    ]
    assert {(e.tenant, e.session_id) for e in heard} == {("default", session_id)}


async def test_ten_thousand_sessions_made_by_three_processes_are_all_listed_once(
    storage: RedisStorage, redis_url: str, prefix: str
) -> None:
    fillers = [helper("filler.py", redis_url, prefix, name, "3334") for name in ("a", "b", "c")]
    for filler in fillers:
        out, err = await asyncio.to_thread(filler.communicate, timeout=300)
        assert filler.returncode == 0 and out.strip() == "made 3334", err
    listed: list[str] = []
    query = SessionQuery(limit=500)
    while True:
        page = await storage.list_sessions(query)
        listed += [s.id for s in page.items]
        if page.next_cursor is None:
            break
        query = attrs.evolve(query, cursor=page.next_cursor)
    assert len(listed) == len(set(listed)) == 3 * 3334
    one_user = (await storage.list_sessions(SessionQuery(user_id="u7", limit=1000))).items
    assert len(one_user) == 3 * 67 and all(s.message_count == 2 for s in one_user)
