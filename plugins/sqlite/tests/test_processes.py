"""Several OS processes on one database file: nothing lost, seq dense, no partial batch,
even when a writer is killed with SIGKILL mid-flight."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import threadline
from threadline import Message, Role, SessionRecord, Text
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage

APPENDER = str(Path(__file__).with_name("appender.py"))


async def make_sessions(path: Path, count: int) -> list[str]:
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        return [(await storage.create_session(SessionRecord(id=f"s{i}"))).id for i in range(count)]
    finally:
        await storage.close()


async def read_all(path: Path, session_ids: list[str]) -> dict[str, list[tuple[int, str]]]:
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        found = {}
        for session_id in session_ids:
            messages = await storage.get_messages("default", session_id)
            session = await storage.get_session("default", session_id)
            assert session.message_count == len(messages)
            found[session_id] = [(m.seq, m.text) for m in messages]
        return found
    finally:
        await storage.close()


def appender(path: Path, name: str, batches: int, size: int, sessions: list[str]) -> subprocess.Popen[str]:
    command = [sys.executable, APPENDER, str(path), name, str(batches), str(size), *sessions]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_two_processes_appending_to_the_same_sessions(db_path: Path) -> None:
    sessions = await make_sessions(db_path, 3)
    writers = [appender(db_path, name, 150, 2, sessions) for name in ("a", "b")]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    found = await read_all(db_path, sessions)
    texts = [text for rows in found.values() for _, text in rows]
    assert len(texts) == 2 * 150 * 2 == len(set(texts))
    for rows in found.values():
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
        for name in ("a", "b"):
            own = [int(text.split(":")[1]) for _, text in rows if text.startswith(f"{name}:")]
            assert own == sorted(own)  # each process's appends land in the order it made them


@pytest.mark.parametrize("run", range(3))
async def test_a_writer_killed_mid_flight_loses_no_acknowledged_append(db_path: Path, run: int) -> None:
    sessions = await make_sessions(db_path, 4)
    rng = random.Random(f"{os.getpid()}-{run}")
    kill_after = rng.randint(5, 300)
    writer = appender(db_path, "w", 100_000, 3, sessions)
    acked = []
    assert writer.stdout is not None
    for line in writer.stdout:
        acked.append(line.split()[2])
        if len(acked) >= kill_after:
            break
    writer.send_signal(signal.SIGKILL)
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL, f"the writer ended before it was killed: {err}"

    found = await read_all(db_path, sessions)
    stored_batches: dict[str, int] = defaultdict(int)
    for rows in found.values():
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
        for _, text in rows:
            stored_batches[text.rsplit(":", 1)[0]] += 1
    assert all(count == 3 for count in stored_batches.values()), "a batch was stored in part"
    missing = [tag for tag in acked if tag not in stored_batches]
    assert not missing, f"acknowledged but lost after SIGKILL at ack {kill_after}: {missing}"


SENDER = str(Path(__file__).with_name("sender.py"))


def test_turns_from_three_processes_on_one_session_stay_whole(db_path: Path) -> None:
    """Every send succeeds, and every user message is followed by its own reply, though three
    processes send on the session at once, many sends each."""
    import asyncio

    (session_id,) = asyncio.run(make_sessions(db_path, 1))
    senders = [
        subprocess.Popen(
            [sys.executable, SENDER, str(db_path), session_id, name, "40", "8"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b", "c")
    ]
    outputs = [sender.communicate(timeout=240) for sender in senders]
    for sender, (out, err) in zip(senders, outputs, strict=True):
        assert sender.returncode == 0, err
        assert out.count("sent ") == 40
    (history,) = asyncio.run(read_all(db_path, [session_id])).values()
    assert len(history) == 3 * 40 * 2
    for (_, user), (_, reply) in zip(history[::2], history[1::2], strict=True):
        assert reply == user  # the echo's reply to exactly that user message


def test_a_turn_lease_whose_holder_was_killed_runs_out(db_path: Path) -> None:
    import asyncio

    (session_id,) = asyncio.run(make_sessions(db_path, 1))
    holder = subprocess.Popen(
        [sys.executable, "-c", TAKE_AND_HANG, str(db_path), session_id], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "taken"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)

    async def send_after_it() -> str:
        storage = SQLiteStorage(SQLiteConfig(path=db_path))
        async with threadline.SessionManager(storage=storage) as manager:
            session = await manager.get_session(session_id)
            return (await session.send("still here")).text

    assert asyncio.run(send_after_it()) == "still here"


TAKE_AND_HANG = """
import asyncio, sys, time
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage

async def take(path, session_id):
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    assert await storage.take_turn("default", session_id, "doomed", 1.0)
    print("taken", flush=True)
    time.sleep(600)

asyncio.run(take(*sys.argv[1:]))
"""


async def test_a_turn_cancelled_while_taking_its_lease_gives_it_back(db_path: Path) -> None:
    mine = SQLiteStorage(SQLiteConfig(path=db_path))
    taking = asyncio.Event()
    take = mine.take_turn

    async def announced(*args: object) -> bool:
        taking.set()
        return await take(*args)  # type: ignore[arg-type]

    mine.take_turn = announced  # type: ignore[method-assign]
    waits_briefly = threadline.Config.from_dict({"defaults": {"turn_wait": 1}})
    theirs = SQLiteStorage(SQLiteConfig(path=db_path))
    async with (
        threadline.SessionManager(storage=mine) as a,
        threadline.SessionManager(waits_briefly, storage=theirs) as b,
    ):
        session = await a.create_session()
        task = asyncio.create_task(session.send("hi"))
        await taking.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await (await b.get_session(session.id)).send("hello")).text == "hello"


async def test_a_big_append_cancelled_at_any_step_leaves_no_transaction_open(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        for steps in range(12):
            session = await storage.create_session(SessionRecord())
            batch = [Message(session.id, n, Role.USER, (Text("x"),)) for n in range(1, 4002)]  # two INSERTs
            task = asyncio.ensure_future(storage.append_messages(session.tenant, session.id, batch))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert await storage.create_session(SessionRecord())  # the writer still writes
            seen = len(await storage.get_messages(session.tenant, session.id))
            assert seen in (0, len(batch)), steps
    finally:
        await storage.close()


EDITOR = str(Path(__file__).with_name("editor.py"))


def editing(path: Path, session_id: str, seed: int) -> subprocess.Popen[str]:
    command = [sys.executable, EDITOR, str(path), session_id, "100000", str(seed)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("run", range(3))
async def test_an_editor_killed_mid_flight_leaves_every_edit_whole_or_not_at_all(db_path: Path, run: int) -> None:
    """Each acknowledged edit is stored; the last stored one is whole (its messages, and
    only they, follow the seq it replaced after); the revisions are numbered without a gap."""
    (session_id,) = await make_sessions(db_path, 1)
    kill_after = random.Random(f"{os.getpid()}-{run}").randint(5, 300)
    editor = editing(db_path, session_id, seed=run)
    assert editor.stdout is not None
    acked = 0
    for _ in editor.stdout:
        acked += 1
        if acked >= kill_after:
            break
    editor.send_signal(signal.SIGKILL)
    _, err = editor.communicate(timeout=60)
    assert editor.returncode == -signal.SIGKILL, f"the editor ended before it was killed: {err}"

    (history,) = (await read_all(db_path, [session_id])).values()  # message_count agrees, seq dense
    assert [seq for seq, _ in history] == list(range(1, len(history) + 1))
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        revisions = await storage.get_revisions("default", session_id)
    finally:
        await storage.close()
    assert [r.number for r in revisions] == list(range(1, len(revisions) + 1))
    assert len(revisions) >= acked
    last = revisions[-1]
    tail = [text for _, text in history[last.after_seq :]]
    assert tail == [f"e{last.number}:{k}" for k in range(last.added)]
