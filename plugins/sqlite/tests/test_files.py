"""The database on disk: one file that holds everything once closed, at any path, read even
when it is read-only; an open that fails ends cleanly."""

from __future__ import annotations

import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from test_migrations import SCHEMAS, copy_old_database, records_read_now, records_read_then, revisions_read_then

from threadline import DataFormatError, Message, Role, SessionQuery, SessionRecord, StorageUnavailable, Text
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.schema import LATEST, READABLE_FROM
from threadline_sqlite.storage import SQLiteStorage


def messages(session_id: str, count: int) -> list[Message]:
    return [Message(session_id, seq, Role.USER, (Text(f"message {seq}"),)) for seq in range(1, count + 1)]


async def write_one_session(path: Path) -> list[Message]:
    """A database at ``path`` with session s1 of three messages, closed; returns them."""
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        await storage.create_session(SessionRecord(id="s1", title="kept"))
        written = messages("s1", 3)
        await storage.append_messages("default", "s1", written)
        return written
    finally:
        await storage.close()


def files_under(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# -- after close, the .db file alone holds everything ---------------------------------


@pytest.mark.parametrize("another_connection", [False, True], ids=["alone", "another-connection-open"])
async def test_after_a_clean_close_the_db_file_alone_holds_everything(
    db_path: Path, tmp_path: Path, another_connection: bool
) -> None:
    """Copying threadline.db without its -wal file (a backup, a sync tool) loses nothing,
    even while another process keeps the database open (SQLite's own checkpoint at the
    last close does not run then)."""
    other = None
    if another_connection:  # it has read the database, so it holds it open in WAL mode
        empty = SQLiteStorage(SQLiteConfig(path=db_path))
        await empty.open()
        await empty.close()
        other = sqlite3.connect(db_path)
        other.execute("SELECT count(*) FROM sessions").fetchall()
    try:
        written = await write_one_session(db_path)
        copy = tmp_path / "copy" / "threadline.db"
        copy.parent.mkdir()
        shutil.copyfile(db_path, copy)
    finally:
        if other is not None:
            other.close()
    with closing(sqlite3.connect(copy)) as plain:
        assert plain.execute("SELECT id, message_count FROM sessions").fetchall() == [("s1", 3)]
    storage = SQLiteStorage(SQLiteConfig(path=copy))
    await storage.open()
    try:
        assert await storage.get_messages("default", "s1") == written
    finally:
        await storage.close()


# -- any path: the readers open the file the writer opened ---------------------------


@pytest.mark.parametrize(
    "name",
    ["a#b.db", "a?mode=rwc&b.db", "a%41.db", "a b.db", "x#y?mode=ro/z%20w.db"],
    ids=["hash", "query", "percent", "space", "all-in-folder"],
)
async def test_any_path_is_the_one_file_read_and_written(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    written = await write_one_session(path)
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        assert await storage.get_messages("default", "s1") == written
        assert [s.id for s in (await storage.list_sessions(SessionQuery())).items] == ["s1"]
        exported = [record async for record in storage.export_records()]
        assert exported[1:] == written
    finally:
        await storage.close()
    assert set(files_under(tmp_path)) == {path}, "a file was made beside the database"


# -- a failed open ends: no connection thread keeps the process alive -----------------

OPEN = """
import asyncio, sys
import aiosqlite
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage

if sys.argv[2] == "reader-fails":  # every connection after the first (the writer's) fails
    connect, made = aiosqlite.connect, []
    def failing(target, **kwargs):
        made.append(target)
        return connect(target if len(made) == 1 else "/no/such/folder/db", **kwargs)
    aiosqlite.connect = failing
asyncio.run(SQLiteStorage(SQLiteConfig(path=sys.argv[1])).open())
"""


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("not-a-database", "is not a SQLite database"),
        ("newer-schema", f"schema version {LATEST + 1}, newer than"),
        ("reader-fails", "cannot open SQLite database"),
        ("read-only-needs-migration", "needs a migration"),
    ],
)
def test_a_failed_open_raises_and_the_process_ends(db_path: Path, case: str, error: str) -> None:
    if case == "not-a-database":
        db_path.write_text("these are my notes, not a database\n" * 100)
    elif case == "newer-schema":
        with closing(sqlite3.connect(db_path)) as db:
            db.executescript(
                f"CREATE TABLE schema_version (version INTEGER); INSERT INTO schema_version VALUES ({LATEST + 1})"
            )
    elif case == "read-only-needs-migration":
        copy_old_database(1, db_path)
        db_path.chmod(0o444)
    else:
        db_path.touch()
    try:
        done = subprocess.run(
            [sys.executable, "-c", OPEN, str(db_path), case], capture_output=True, text=True, timeout=20
        )
    finally:
        db_path.chmod(0o644)
    assert done.returncode == 1 and error in done.stderr, done.stderr


# -- read-only databases --------------------------------------------------------------


@contextmanager
def without_write_permission(*paths: Path) -> Iterator[None]:
    """chmod a-w, restored after. As root this stops nothing by itself: the plugin must
    honour it (a file or folder with no write permission is opened read-only)."""
    modes = {path: path.stat().st_mode for path in paths}
    try:
        for path, mode in modes.items():
            path.chmod(stat.S_IMODE(mode) & ~0o222)
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(stat.S_IMODE(mode))


@pytest.mark.parametrize("read_only", ["file", "folder", "both"])
async def test_a_read_only_database_is_read_and_left_untouched(tmp_path: Path, read_only: str) -> None:
    path = tmp_path / "data" / "threadline.db"
    written = await write_one_session(path)
    before = files_under(path.parent)
    locked = {"file": [path], "folder": [path.parent], "both": [path, path.parent]}[read_only]
    with without_write_permission(*locked):
        storage = SQLiteStorage(SQLiteConfig(path=path))
        await storage.open()
        try:
            assert await storage.get_messages("default", "s1") == written
            assert await storage.get_messages("default", "s1", last=1) == written[-1:]
            (listed,) = (await storage.list_sessions(SessionQuery())).items
            assert (listed.id, listed.title, listed.message_count) == ("s1", "kept", 3)
            assert [record async for record in storage.export_records()][1:] == written
            reason = {"file": "the file is not writable", "folder": "its folder is not writable"}[
                "file" if read_only in ("file", "both") else "folder"
            ]
            with pytest.raises(StorageUnavailable, match=rf"is open read-only \({reason}\); nothing can be written$"):
                await storage.append_messages("default", "s1", messages("s1", 4)[3:])
            with pytest.raises(StorageUnavailable, match="read-only"):
                await storage.create_session(SessionRecord(id="s2"))
        finally:
            await storage.close()
        assert files_under(path.parent) == before, "the read-only database or its folder changed"
    # and once writable again, it is an ordinary database: nothing left behind stops a writer
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        await storage.append_messages("default", "s1", messages("s1", 4)[3:])
        assert len(await storage.get_messages("default", "s1")) == 4
    finally:
        await storage.close()


async def test_read_only_true_opens_a_writable_database_without_writing(db_path: Path) -> None:
    written = await write_one_session(db_path)
    before = db_path.read_bytes()  # noqa: ASYNC240
    storage = SQLiteStorage(SQLiteConfig(path=db_path, read_only=True))
    await storage.open()
    try:
        assert await storage.get_messages("default", "s1") == written
        with pytest.raises(StorageUnavailable, match=r"read-only \(\[storage\] read_only = true\)"):
            await storage.delete_session("default", "s1")
    finally:
        await storage.close()
    assert db_path.read_bytes() == before  # noqa: ASYNC240


async def test_read_only_true_on_a_newer_schema_names_the_file_and_writes_nothing(db_path: Path) -> None:
    await write_one_session(db_path)
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE schema_version SET version = ?", (LATEST + 1,))
    before = db_path.read_bytes()  # noqa: ASYNC240
    with pytest.raises(DataFormatError, match=f"^{re.escape(str(db_path))} has schema version {LATEST + 1}, newer"):
        await SQLiteStorage(SQLiteConfig(path=db_path, read_only=True)).open()
    assert db_path.read_bytes() == before  # noqa: ASYNC240


async def test_read_only_true_on_a_missing_file_is_a_clear_error(db_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="does not exist"):
        await SQLiteStorage(SQLiteConfig(path=db_path, read_only=True)).open()
    assert not db_path.parent.exists() or not any(db_path.parent.iterdir())


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_an_old_read_only_database_is_read_as_it_is_or_says_it_needs_a_migration(
    schema: int, db_path: Path
) -> None:
    """Schema 4 only added the turn leases, which a read-only storage never writes: from
    schema 3 on, an old database is read without a migration."""
    copy_old_database(schema, db_path)
    before = files_under(db_path.parent)
    with without_write_permission(db_path, db_path.parent):
        storage = SQLiteStorage(SQLiteConfig(path=db_path))
        if schema < READABLE_FROM:
            needs = f"schema version {schema} and needs a migration to {LATEST}.*read-only"
            with pytest.raises(StorageUnavailable, match=needs):
                await storage.open()
        else:
            await storage.open()
            try:
                assert await records_read_now(storage) == records_read_then(schema)
                assert await storage.get_revisions("default", "s0") == revisions_read_then(schema)
            finally:
                await storage.close()
    assert files_under(db_path.parent) == before


async def test_missing_folders_on_the_way_to_the_database_are_made(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "threadline.db"
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    await storage.close()
    assert path.is_file()


async def test_an_sqlite_too_old_is_a_clear_error(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(StorageUnavailable) as caught:
        await SQLiteStorage(SQLiteConfig(path=db_path)).open()
    assert str(caught.value) == (
        "threadline-sqlite needs SQLite 3.38 or newer (JSON functions, DROP COLUMN); this Python has 3.31.1"
    )
    assert not db_path.exists()  # noqa: ASYNC240


async def test_a_newer_schema_is_refused_naming_the_file_and_what_to_do(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript(
            f"CREATE TABLE schema_version (version INTEGER); INSERT INTO schema_version VALUES ({LATEST + 1})"
        )
    with pytest.raises(DataFormatError) as caught:
        await SQLiteStorage(SQLiteConfig(path=db_path)).open()
    assert str(caught.value) == (
        f"{db_path} has schema version {LATEST + 1}, newer than this threadline-sqlite reads ({LATEST}); "
        "upgrade threadline-sqlite to open it"
    )
