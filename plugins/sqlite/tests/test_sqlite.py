"""What threadline-sqlite promises beyond the contract: group commit, readers that do not
wait, indexes for every listing, clear errors that write nothing, schema versions."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

import threadline
from threadline import (
    BadCursor,
    DataFormatError,
    Message,
    Role,
    SessionManager,
    SessionNotFound,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    StorageConflict,
    StorageUnavailable,
    Text,
    Usage,
    make_cursor,
)
from threadline.plugin import TurnLease, next_lease
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.schema import LATEST
from threadline_sqlite.storage import SQLiteStorage

CURSOR = make_cursor(SessionRecord(id="x"))


def message(session: SessionRecord, seq: int, text: str = "hello") -> Message:
    return Message(session.id, seq, Role.USER, (Text(text),))


@contextmanager
def write_lock_held_elsewhere(db_path: Path) -> Iterator[None]:
    """Another process holds the database's write lock for the block."""
    with closing(sqlite3.connect(db_path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


async def test_concurrent_appends_share_commits(storage: SQLiteStorage) -> None:
    sessions = [await storage.create_session(SessionRecord()) for _ in range(50)]
    commits_before = storage._write.commits

    async def fill(session: SessionRecord) -> None:
        for seq in range(1, 21):
            await storage.append_messages(session.tenant, session.id, [message(session, seq)])

    await asyncio.gather(*(fill(s) for s in sessions))
    commits = storage._write.commits - commits_before
    assert 1 <= commits <= 1000 / 10, f"{commits} commits for 1000 appends: writes are not being grouped"
    for session in sessions:
        assert (await storage.get_session("default", session.id)).message_count == 20


async def test_an_append_alone_is_one_commit_however_many_statements_it_takes(storage: SQLiteStorage) -> None:
    session = await storage.create_session(SessionRecord())
    for seqs in ([1], range(2, 4), range(4, 9_005)):  # the last past one statement's parameter limit
        commits_before = storage._write.commits
        await storage.append_messages("default", session.id, [message(session, seq) for seq in seqs])
        assert storage._write.commits - commits_before == 1


async def test_max_batch_caps_the_writes_a_transaction_holds(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, max_batch=2))
    await storage.open()
    try:
        sessions = [await storage.create_session(SessionRecord()) for _ in range(10)]
        commits_before = storage._write.commits
        await asyncio.gather(*(storage.append_messages("default", s.id, [message(s, 1)]) for s in sessions))
        assert storage._write.commits - commits_before >= 5  # ten appends, at most two a transaction
    finally:
        await storage.close()


async def test_a_conflicting_append_fails_alone_in_its_group(storage: SQLiteStorage) -> None:
    sessions = [await storage.create_session(SessionRecord()) for _ in range(5)]
    commits_before = storage._write.commits
    results = await asyncio.gather(
        *(storage.append_messages("default", s.id, [message(s, 5 if s is sessions[2] else 1)]) for s in sessions),
        return_exceptions=True,
    )
    assert storage._write.commits - commits_before < 5  # some of them were grouped
    assert [type(result).__name__ for result in results] == ["NoneType"] * 2 + ["StorageConflict"] + ["NoneType"] * 2
    assert "appended seqs must be [1]" in str(results[2])
    for session in sessions:
        stored = [m.seq for m in await storage.get_messages("default", session.id)]
        assert stored == ([] if session is sessions[2] else [1])


async def test_reads_do_not_wait_behind_a_long_write(storage: SQLiteStorage) -> None:
    session = await storage.create_session(SessionRecord())
    await storage.append_messages("default", session.id, [message(session, 1, "before")])
    holding, release = asyncio.Event(), asyncio.Event()

    async def slow_import() -> AsyncIterator[SessionRecord]:
        yield SessionRecord()
        holding.set()
        await release.wait()  # the writer sits inside its transaction here

    importing = asyncio.create_task(storage.import_records(slow_import()))
    await asyncio.wait([asyncio.ensure_future(holding.wait()), importing], return_when=asyncio.FIRST_COMPLETED)
    assert not importing.done(), importing.exception()  # the import failed before it held the writer
    try:
        read = await asyncio.wait_for(storage.get_messages("default", session.id), timeout=30)
        assert [m.text for m in read] == ["before"]
        assert not importing.done()
    finally:  # else a failed read leaves the writer, and so the storage's close, waiting for ever
        release.set()
    assert await importing == 1


def explain_reads(storage: SQLiteStorage) -> list[str]:
    """The query plan of every read the storage makes from now on, step by step."""
    plans: list[str] = []
    read = storage._read

    async def explain(sql: str, parameters: Any = ()) -> Any:
        plans.extend(row[3] for row in await read(f"EXPLAIN QUERY PLAN {sql}", parameters))
        return await read(sql, parameters)

    storage._read = explain  # type: ignore[method-assign]
    return plans


@pytest.mark.parametrize(
    ("query", "seek"),
    [
        (SessionQuery(), "tenant=? AND status=?"),
        (SessionQuery(user_id="u1"), "tenant=? AND user_id=?"),
        (SessionQuery(status=SessionStatus.ACTIVE), "tenant=? AND status=?"),
        (SessionQuery(user_id="u1", cursor=CURSOR), "tenant=? AND user_id=? AND (updated_us,id)<(?,?)"),
        (SessionQuery(cursor=CURSOR), "tenant=? AND status=? AND (updated_us,id)<(?,?)"),
    ],
)
async def test_every_listing_seeks_an_index_in_order(storage: SQLiteStorage, query: SessionQuery, seek: str) -> None:
    plans = explain_reads(storage)
    await storage.list_sessions(query)
    searches = [step for step in plans if step.startswith(("SEARCH", "SCAN"))]
    assert searches and not any("TEMP B-TREE" in step for step in plans), plans
    assert all("USING INDEX" in step and f"({seek})" in step for step in searches), plans


@pytest.mark.parametrize("cache", [0, 100])
@pytest.mark.parametrize("read", [{}, {"last": 2}, {"after_seq": 1}])
async def test_history_reads_seek_a_range_of_the_table_in_order(
    db_path: Path, cache: int, read: dict[str, int]
) -> None:
    writer = SQLiteStorage(SQLiteConfig(path=db_path))  # another process: what it wrote is not held here
    await writer.open()
    session = await writer.create_session(SessionRecord())
    await writer.append_messages("default", session.id, [Message(session.id, 1, Role.USER, (Text("q"),))])
    await writer.close()
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=cache))
    await storage.open()
    try:
        plans = explain_reads(storage)
        await storage.get_messages("default", session.id, **read)
    finally:
        await storage.close()
    searches = [step for step in plans if "messages" in step]
    assert searches and "TEMP B-TREE" not in " ".join(plans), plans
    assert all("USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in step for step in searches), plans


async def test_writes_queued_together_with_one_that_fails_are_each_done_once(storage: SQLiteStorage) -> None:
    """A group that fails is done again write by write: an import, which reads its records as
    it goes, must not be in it (done again, it would find no records and store nothing)."""
    existing = await storage.create_session(SessionRecord())
    imported = SessionRecord()
    history = [Message(imported.id, seq, Role.USER, (Text(f"m{seq}"),)) for seq in (1, 2, 3)]

    async def records() -> AsyncIterator[SessionRecord | Message]:
        for record in (imported, *history):
            yield record

    commits = storage._write.commits
    outcomes = await asyncio.gather(
        storage.import_records(records()),
        storage.update_session(attrs.evolve(existing, version=7, title="stale")),
        storage.update_session(attrs.evolve(existing, title="fresh")),
        return_exceptions=True,
    )
    assert outcomes[0] == 4 and isinstance(outcomes[1], StorageConflict), outcomes
    assert await storage.get_messages("default", imported.id) == history
    assert (await storage.get_session("default", existing.id)).title == "fresh"
    assert storage._write.commits - commits == 2  # the import alone, the updates together


async def test_take_turn_applies_the_kernels_lease_rule_in_every_case(storage: SQLiteStorage, db_path: Path) -> None:
    """take_turn is next_lease's rule written as one SQL statement: for every lease a session
    can have (holder, waiter, each live or run out) and either asker, both give the same."""
    now, hour = time.time(), 3600.0
    people, ends = (None, "a", "b"), (now - hour, now + hour)
    cases = [
        (TurnLease(holder, until, waiter, waiter_until), asker)
        for holder, until, waiter, waiter_until in itertools.product(people, ends, people, ends)
        for asker in ("a", "b")
    ]
    for number, (lease, asker) in enumerate(cases):
        session = await storage.create_session(SessionRecord(id=f"s{number}"))
        with closing(sqlite3.connect(db_path)) as db, db:
            db.execute(
                "INSERT INTO turn_leases VALUES ('default', ?, ?, ?, ?, ?)",
                (session.id, lease.holder, int(lease.until * 1e6), lease.waiter, int(lease.waiter_until * 1e6)),
            )
        taken = await storage.take_turn("default", session.id, asker, 60.0)
        with closing(sqlite3.connect(db_path)) as db:
            ((holder, until, waiter, waiter_until),) = db.execute(
                "SELECT holder, expires_us, waiter, waiter_until_us FROM turn_leases WHERE session_id = ?",
                (session.id,),
            ).fetchall()
        expected_taken, expected = next_lease(lease, asker, time.time(), 60.0)
        stored = TurnLease(holder, until / 1e6, waiter, waiter_until / 1e6)
        assert (taken, stored.holder, stored.waiter) == (expected_taken, expected.holder, expected.waiter), lease
        assert stored.until == pytest.approx(expected.until, abs=5), lease
        assert stored.waiter_until == pytest.approx(expected.waiter_until, abs=5), lease
    with pytest.raises(SessionNotFound):
        await storage.take_turn("default", "no such session", "a", 60.0)


def file_size(path: Path) -> int:
    return path.stat().st_size


async def test_vacuum_gives_the_space_of_deleted_sessions_back_and_keeps_the_rest(
    storage: SQLiteStorage, db_path: Path
) -> None:
    sessions = [await storage.create_session(SessionRecord()) for _ in range(40)]
    for session in sessions:
        history = [Message(session.id, seq, Role.USER, (Text("words " * 200),)) for seq in range(1, 11)]
        await storage.append_messages("default", session.id, history)
    for session in sessions[:30]:
        await storage.delete_session("default", session.id)
    kept = {s.id: await storage.get_messages("default", s.id) for s in sessions[30:]}
    await storage._checkpoint(storage._write.db)
    before = file_size(db_path)

    late = Message(sessions[-1].id, 11, Role.USER, (Text("written while it vacuums"),))
    given_back, _ = await asyncio.gather(storage.vacuum(), storage.append_messages("default", sessions[-1].id, [late]))
    after = file_size(db_path)
    assert after < before / 2 and given_back == before - after
    assert {s: await storage.get_messages("default", s) for s in kept} == {
        **kept,
        sessions[-1].id: [*kept[sessions[-1].id], late],
    }


async def test_a_session_key_is_never_given_again(storage: SQLiteStorage, db_path: Path) -> None:
    """A message's row key holds its session's key: a key given again would make a deleted
    session's messages, read before the delete and written back (a vacuum), another's."""
    first, last = [await storage.create_session(SessionRecord()) for _ in range(2)]
    await storage.delete_session("default", last.id)
    made = await storage.create_session(SessionRecord())
    with closing(sqlite3.connect(db_path)) as db:
        keys = dict(db.execute("SELECT id, sid FROM sessions").fetchall())
    assert keys[bytes.fromhex(made.id)] > max(keys[bytes.fromhex(first.id)], 2)


async def test_one_write_whose_own_sql_fails_fails_alone(storage: SQLiteStorage, db_path: Path) -> None:
    damaged, fine = [await storage.create_session(SessionRecord()) for _ in range(2)]
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE sessions SET record = '{not json' WHERE id = ?", (bytes.fromhex(damaged.id),))
    outcomes = await asyncio.gather(
        storage.update_session(attrs.evolve(damaged, title="x")),
        storage.create_session(SessionRecord(id="new")),
        storage.update_session(attrs.evolve(fine, title="fine")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], StorageUnavailable) and "malformed JSON" in str(outcomes[0])
    assert [type(outcome) for outcome in outcomes[1:]] == [SessionRecord, SessionRecord]
    assert (await storage.get_session("default", fine.id)).title == "fine"


IDS = ("0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF", "g" * 32, "f" * 31, "f" * 33, "x")


async def test_ids_of_every_form_read_back_as_given_and_list_in_one_order(storage: SQLiteStorage) -> None:
    """Ids of 32 lowercase hex digits are stored as 16 bytes (schema 5); every other id as given."""
    same_moment = SessionRecord().updated_at
    for session_id in IDS:
        await storage.create_session(SessionRecord(id=session_id, updated_at=same_moment))
        message = Message(session_id, 1, Role.USER, (Text("q"),), id=session_id)
        await storage.append_messages("default", session_id, [message])
        assert await storage.get_messages("default", session_id) == [message]
        assert await storage.get_messages("default", session_id, last=1) == [message]
        await storage.set_message_status("default", session_id, 1, "failed", "boom")
        assert (await storage.take_turn("default", session_id, "me", 30)) is True
        await storage.end_turn("default", session_id, "me")
        assert (await storage.get_session("default", session_id)).id == session_id
    listed = [s.id for s in (await storage.list_sessions(SessionQuery(limit=1000))).items]
    paged, cursor = [], None
    while True:
        page = await storage.list_sessions(SessionQuery(limit=2, cursor=cursor))
        paged += [s.id for s in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert sorted(listed) == sorted(IDS) and paged == listed
    exported = [r.id async for r in storage.export_records() if isinstance(r, SessionRecord)]
    assert sorted(exported) == sorted(IDS)
    for session_id in IDS:
        await storage.delete_session("default", session_id)
    assert (await storage.list_sessions(SessionQuery())).items == ()


async def test_wal_busy_timeout_and_foreign_keys_are_on(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, synchronous="FULL", busy_timeout=1.5))
    await storage.open()
    try:
        db = storage._write.db
        assert (await db.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"
        assert (await db.execute_fetchall("PRAGMA synchronous"))[0][0] == 2  # FULL
        assert (await db.execute_fetchall("PRAGMA busy_timeout"))[0][0] == 1500
        assert (await db.execute_fetchall("PRAGMA foreign_keys"))[0][0] == 1
    finally:
        await storage.close()


@pytest.mark.parametrize("history_cache", [0, 100])
async def test_rows_rebuild_into_equal_records_whose_mappings_cannot_be_changed(
    db_path: Path, history_cache: int
) -> None:
    session = SessionRecord(metadata={"channel": "web"}, provider_state={"response_id": "r1"})
    messages = [
        message(session, 1),  # a plain row: no extra, no parts JSON
        Message(session.id, 2, Role.ASSISTANT, (Text("hi", provider_data={"sig": "s"}),), usage=Usage(1, 2),
                provider="echo", metadata={"ip": "x"}),
    ]  # fmt: skip
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=history_cache))
    await storage.open()
    try:
        await storage.create_session(session)
        await storage.append_messages(session.tenant, session.id, messages)
        stored = await storage.get_session(session.tenant, session.id)
        read = await storage.get_messages(session.tenant, session.id)
    finally:
        await storage.close()
    assert read == messages and stored.metadata == session.metadata
    mappings = [stored.metadata, stored.provider_state]
    mappings += [mapping for m in read for mapping in (m.metadata, m.parts[0].provider_data)]  # type: ignore[union-attr]
    for mapping in mappings:
        with pytest.raises(TypeError):
            mapping["ip"] = "y"  # type: ignore[index]


# -- errors that write nothing -------------------------------------------------------


async def test_a_cursor_it_did_not_give_out_is_refused(storage: SQLiteStorage) -> None:
    with pytest.raises(BadCursor, match=r"'garbage'.*next_cursor"):
        await storage.list_sessions(SessionQuery(cursor="garbage"))


async def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StorageUnavailable, match="is not a SQLite database"):
        await SQLiteStorage(SQLiteConfig(path=path)).open()
    assert path.read_bytes() == before


async def test_a_path_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageUnavailable, match="cannot create the folder"):
        await SQLiteStorage(SQLiteConfig(path=blocker / "sub" / "db")).open()
    with pytest.raises(StorageUnavailable, match="cannot open SQLite database"):
        await SQLiteStorage(SQLiteConfig(path=tmp_path)).open()  # a directory


async def test_a_database_locked_past_the_timeout_is_a_clear_error(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, busy_timeout=0.2))
    await storage.open()
    try:
        session = await storage.create_session(SessionRecord())
        locked = r"locked by another connection; waited 0\.2s"
        with write_lock_held_elsewhere(db_path), pytest.raises(StorageUnavailable, match=locked):
            await storage.append_messages("default", session.id, [message(session, 1)])
        await storage.append_messages("default", session.id, [message(session, 1)])  # usable again
        assert (await storage.get_session("default", session.id)).message_count == 1
    finally:
        await storage.close()


async def test_an_append_past_one_statements_parameter_limit_is_stored_whole(storage: SQLiteStorage) -> None:
    """Over 4,000 rows the insert takes several statements, in one transaction."""
    session = await storage.create_session(SessionRecord())
    batch = [message(session, seq, f"m{seq}") for seq in range(1, 9_002)]
    await storage.append_messages("default", session.id, batch)
    assert await storage.get_messages("default", session.id) == batch
    assert (await storage.get_session("default", session.id)).message_count == 9_001
    others = [await storage.create_session(SessionRecord()) for _ in range(3)]
    batches = [[message(other, seq) for seq in range(1, 2_501)] for other in others]  # grouped: 7,500 rows
    await asyncio.gather(*(storage.append_messages("default", b[0].session_id, b) for b in batches))
    for other, batch in zip(others, batches, strict=True):
        assert await storage.get_messages("default", other.id) == batch


async def test_a_group_of_appends_blocked_by_another_writer_all_fail_and_store_nothing(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, busy_timeout=0.2))
    await storage.open()
    try:
        sessions = [await storage.create_session(SessionRecord()) for _ in range(10)]
        with write_lock_held_elsewhere(db_path):
            results = await asyncio.gather(
                *(storage.append_messages("default", s.id, [message(s, 1)]) for s in sessions),
                return_exceptions=True,
            )
        assert all(isinstance(r, StorageUnavailable) and "locked by another connection" in str(r) for r in results)
        for session in sessions:
            assert (await storage.get_session("default", session.id)).message_count == 0
            assert await storage.get_messages("default", session.id) == []
    finally:
        await storage.close()


async def test_a_damaged_database_is_a_clear_error_that_changes_nothing(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    session = await storage.create_session(SessionRecord())
    await storage.append_messages("default", session.id, [message(session, n, "x" * 2000) for n in range(1, 201)])
    await storage.close()
    damaged = bytearray(db_path.read_bytes())  # noqa: ASYNC240
    page = len(damaged) // 2 // 4096 * 4096
    damaged[page : page + 3 * 4096] = b"\x5a" * 3 * 4096  # a disk that lost three pages of messages
    db_path.write_bytes(bytes(damaged))  # noqa: ASYNC240
    damaged_storage = SQLiteStorage(SQLiteConfig(path=db_path))
    with pytest.raises(StorageUnavailable, match=r"is not a SQLite database \(or is damaged\): .*malformed"):
        await damaged_storage.open()
        try:
            await damaged_storage.get_messages("default", session.id)
        finally:
            await damaged_storage.close()
    assert db_path.read_bytes() == damaged  # noqa: ASYNC240


async def test_another_sqlite_error_names_the_database_and_says_what_sqlite_said(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))  # every read goes to the file
    await storage.open()
    try:
        session = await storage.create_session(SessionRecord())
        with sqlite3.connect(db_path) as other:
            other.execute("DROP TABLE messages")  # done by another tool, behind the storage's back
        with pytest.raises(StorageUnavailable, match=f"^SQLite database {db_path}: no such table: messages$"):
            await storage.get_messages("default", session.id)
    finally:
        await storage.close()


def test_an_error_python_raises_itself_has_no_sqlite_code_and_is_reported_the_same(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    error = storage._translate(sqlite3.ProgrammingError("Cannot operate on a closed database."))
    assert isinstance(error, StorageUnavailable)
    assert str(error) == f"SQLite database {db_path}: Cannot operate on a closed database."


async def test_a_cancelled_open_is_a_cancellation_and_leaves_the_file_usable(tmp_path: Path) -> None:
    for delay in (0, 0.001, 0.003, 0.01, 0.05):
        path = tmp_path / f"{delay}.db"
        storage = SQLiteStorage(SQLiteConfig(path=path))
        opening = asyncio.ensure_future(storage.open())
        await asyncio.sleep(delay)
        opening.cancel()
        try:
            await opening
        except asyncio.CancelledError:
            pass  # not an error: the caller asked for it
        else:  # it was open before the cancellation came
            await storage.close()
        again = SQLiteStorage(SQLiteConfig(path=path))
        await again.open()
        try:
            await again.create_session(SessionRecord())
            assert len((await again.list_sessions(SessionQuery())).items) == 1
        finally:
            await again.close()


async def test_a_database_from_a_newer_version_is_refused_untouched(db_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    await storage.close()
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE schema_version SET version = ?", (LATEST + 1,))
    before = db_path.read_bytes()  # noqa: ASYNC240
    with pytest.raises(DataFormatError, match=f"schema version {LATEST + 1}, newer than"):
        await SQLiteStorage(SQLiteConfig(path=db_path)).open()
    assert db_path.read_bytes() == before  # noqa: ASYNC240


def test_config_expands_home_and_checks_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SQLiteConfig(path="~/chats.db").path == tmp_path / "chats.db"
    with pytest.raises(ValueError, match="busy_timeout"):
        SQLiteConfig(busy_timeout=-1)


# -- through the kernel ------------------------------------------------------------


async def test_sqlite_is_the_default_storage_once_installed_and_sessions_persist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    async with SessionManager() as first:
        assert first.storage_backend == "sqlite"
        session = await first.create_session(user_id="ann")
        await session.send("remember this")
    assert (tmp_path / "threadline" / "threadline.db").exists()
    async with SessionManager() as second:
        again = await second.get_session(session.id)
        assert [m.text for m in await again.history()] == ["remember this", "remember this"]
        (listed,) = (await second.list_sessions(user_id="ann")).items
        assert (listed.title, listed.message_count) == ("remember this", 2)


async def test_the_configured_settings_are_the_ones_used(tmp_path: Path) -> None:
    config = tmp_path / "threadline.toml"
    config.write_text(f'[storage]\nbackend = "sqlite"\npath = "{tmp_path / "chats.db"}"\nbusy_timeout = 2.5\n')
    async with SessionManager.from_config(config) as manager:
        assert manager.storage.path == str(tmp_path / "chats.db")
        assert (await manager.storage._write.db.execute_fetchall("PRAGMA busy_timeout"))[0][0] == 2500
        await manager.create_session()
    assert (tmp_path / "chats.db").exists()


async def test_100_concurrent_sends_on_sqlite(db_path: Path) -> None:
    async with SessionManager(storage=SQLiteStorage(SQLiteConfig(path=db_path))) as manager:
        session = await manager.create_session()
        await asyncio.gather(*(session.send(f"m{i}") for i in range(100)))
        history = await session.history()
        assert [m.seq for m in history] == list(range(1, 201))
        assert all(u.text == r.text for u, r in zip(history[::2], history[1::2], strict=True))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"busy_timeout": float("inf")}, "storage: busy_timeout must be a finite number"),
        ({"path": "/tmp/a\x00b.db"}, "storage: a path cannot hold a NUL character"),
    ],
)
def test_settings_chat_would_reject_are_config_errors(settings: dict[str, object], message: str) -> None:
    config = threadline.Config.from_dict({"storage": {"backend": "sqlite", **settings}}, file="tl.toml")
    with pytest.raises(threadline.ConfigError, match=f"tl.toml: {message}"):
        threadline.SessionManager(config)


@pytest.mark.parametrize(
    ("damage", "where"),
    [
        ("UPDATE sessions SET record = 'not json' WHERE sid = :bad", "session"),
        ("UPDATE sessions SET record = '[1, 2]' WHERE sid = :bad", "session"),
        ("UPDATE messages SET extra = '{broken' WHERE key = :bad * 4294967296 + 2", "message"),
        ("UPDATE messages SET kind = 999 WHERE key = :bad * 4294967296 + 1", "message"),
        ("UPDATE messages SET kind = kind | 1, body = 'not parts' WHERE key = :bad * 4294967296 + 1", "message"),
        ("UPDATE messages SET extra = '{\"usage\": [1]}' WHERE key = :bad * 4294967296 + 2", "message"),
    ],
)
async def test_a_damaged_row_is_a_clear_error_and_the_rest_still_reads(
    db_path: Path, damage: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await storage.open()
    try:
        good, bad = [await storage.create_session(SessionRecord()) for _ in range(2)]
        for session in (good, bad):
            batch = [
                Message(session.id, 1, Role.USER, (Text("q"),)),
                Message(session.id, 2, Role.ASSISTANT, (Text("a"),), usage=Usage(3, 4)),
            ]
            await storage.append_messages("default", session.id, batch)
        with sqlite3.connect(db_path) as db:
            (sid,) = db.execute("SELECT sid FROM sessions WHERE id = ?", (bytes.fromhex(bad.id),)).fetchone()
            db.execute(damage, {"bad": sid})
        listed = await storage.list_sessions(SessionQuery(tenant="default"))
        damaged_session = f"session {bad.id!r} of tenant 'default' is damaged in the database: "
        if where == "session":
            assert [s.id for s in listed.items] == [good.id]
            (warning,) = [r.getMessage() for r in caplog.records if r.name == "threadline.storage"]
            assert warning.startswith(damaged_session) and warning.endswith("; left out of the listing")
        else:
            assert {s.id for s in listed.items} == {good.id, bad.id}
        with pytest.raises(DataFormatError, match=re.escape(damaged_session) if where == "session" else repr(bad.id)):
            if where == "session":
                await storage.get_session("default", bad.id)
            else:
                await storage.get_messages("default", bad.id)
        with pytest.raises(DataFormatError, match="is damaged in the database"):
            async for _ in storage.export_records("default"):
                pass
        assert len(await storage.get_messages("default", good.id)) == 2
    finally:
        await storage.close()


@pytest.mark.parametrize(
    "damage",
    [b"\xff\xfe not UTF-8", b'[{"v": 1, "seq": "one"}]', b'{"not": "a list"}'],
    ids=["bytes", "a field of another type", "no list"],
)
async def test_a_damaged_revision_is_a_clear_error_and_the_history_still_reads(db_path: Path, damage: bytes) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await storage.open()
    try:
        session = await storage.create_session(SessionRecord(id="s1"))
        await storage.append_messages("default", "s1", [Message("s1", 1, Role.USER, (Text("q"),))])
        await storage.replace_messages("default", "s1", 0, [Message("s1", 1, Role.USER, (Text("q2"),))], count=1)
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE revisions SET replaced = ?", (damage,))
        with pytest.raises(DataFormatError, match="revision 1 of session 's1' is damaged in the database"):
            await storage.get_revisions("default", session.id)
        assert [m.text for m in await storage.get_messages("default", "s1")] == ["q2"]
        with pytest.raises(DataFormatError, match="revision 1 of session 's1' is damaged"):
            async for _ in storage.export_records("default"):
                pass
    finally:
        await storage.close()
