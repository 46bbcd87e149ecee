"""Databases that earlier releases wrote, kept as files (old_databases/, its README says which
release wrote each): each opens, migrates forward once, reads back every record as the
release that wrote it did, and takes every kind of write afterwards."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from threadline import (
    DeletedCounts,
    Message,
    MessageStatus,
    Revision,
    Role,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    Text,
    Usage,
)
from threadline.plugin import dumps, load, load_record
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.schema import LATEST
from threadline_sqlite.storage import SQLiteStorage

OLD_DATABASES = Path(__file__).with_name("old_databases")
SCHEMAS = sorted(int(path.stem.removeprefix("schema-")) for path in OLD_DATABASES.glob("schema-*.db"))
TENANTS = ("default", "acme")
Record = SessionRecord | Message


def copy_old_database(schema: int, to: Path) -> Path:
    """A copy of the database the release at ``schema`` wrote, at ``to``."""
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OLD_DATABASES / f"schema-{schema}.db", to)
    return to


def records_read_then(schema: int) -> list[Record]:
    """Every record of the old database, as the release that wrote it read it back."""
    lines = (OLD_DATABASES / f"schema-{schema}.jsonl").read_text(encoding="utf-8").splitlines()
    return [load_record(line) for line in lines]


def revisions_read_then(schema: int) -> list[Revision]:
    """The revisions of session s0, as the release that wrote the database read them (none
    before schema 6, which began keeping them)."""
    path = OLD_DATABASES / f"schema-{schema}.revisions.jsonl"
    if not path.exists():
        return []
    return [load(json.loads(line), Revision) for line in path.read_text(encoding="utf-8").splitlines()]


async def records_read_now(storage: SQLiteStorage) -> list[Record]:
    """Every session and message, as an export gives them; revisions, which exports carry
    since after schema 6's release, are compared on their own (:func:`revisions_read_then`)."""
    return [
        record
        for tenant in TENANTS
        async for record in storage.export_records(tenant)
        if isinstance(record, SessionRecord | Message)
    ]


def schema_of(path: Path) -> list[tuple[int]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT version FROM schema_version").fetchall()


def test_every_past_schema_has_a_database_written_by_its_release() -> None:
    assert list(range(1, LATEST + 1)) == SCHEMAS, "a new schema version needs its file: see old_databases/README.md"


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_an_old_database_migrates_and_reads_back_every_record(schema: int, db_path: Path) -> None:
    copy_old_database(schema, db_path)
    for _ in range(2):  # the second open finds nothing to migrate
        storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
        await storage.open()
        try:
            assert await records_read_now(storage) == records_read_then(schema)
        finally:
            await storage.close()
        assert schema_of(db_path) == [(LATEST,)]


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_a_migrated_database_takes_every_kind_of_write(schema: int, db_path: Path) -> None:
    copy_old_database(schema, db_path)
    before = {r.id: r for r in records_read_then(schema) if isinstance(r, SessionRecord)}
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        reply = Message("chat-1", 10, Role.ASSISTANT, (Text("Sunny."),), usage=Usage(2, 3, 1, 0.5))
        await storage.append_messages("default", "chat-1", [reply])
        await storage.set_message_status("default", "chat-1", 7, MessageStatus.OK)
        session = await storage.get_session("default", "chat-1")
        assert session.message_count == 10
        assert session.usage == before["chat-1"].usage + Usage(2, 3, 1, 0.5)
        last_two = await storage.get_messages("default", "chat-1", after_seq=6, last=2)
        assert [(m.seq, m.text) for m in last_two] == [(9, ""), (10, "Sunny.")]
        assert (await storage.get_messages("default", "chat-1", after_seq=6, last=4))[0].status == MessageStatus.OK

        newest_first = await storage.list_sessions(SessionQuery(tenant="default"))
        assert newest_first.items[0].id == "chat-1"
        assert {s.id for s in newest_first.items} == {r.id for r in before.values() if r.tenant == "default"}
        archived = await storage.list_sessions(SessionQuery(tenant="default", status=SessionStatus.ARCHIVED))
        assert [s.id for s in archived.items] == ["old one"]

        assert await storage.take_turn("default", "s3", "a later process", 5.0)  # an old lease has run out
        assert await storage.delete_user("acme", "ada") == DeletedCounts(sessions=1, messages=2)
        assert await records_read_now(storage) != records_read_then(schema)
    finally:
        await storage.close()


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_an_old_database_keeps_its_revisions_and_takes_edits(schema: int, db_path: Path) -> None:
    copy_old_database(schema, db_path)
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        kept = revisions_read_then(schema)
        assert await storage.get_revisions("default", "s0") == kept
        assert (schema >= 6) == bool(kept), "schema 6's file holds an edit: see old_databases/write.py"
        undone = await storage.replace_messages("default", "chat-1", 7, [], count=9)
        assert [(m.seq, m.role) for m in undone.replaced] == [(8, Role.USER), (9, Role.ASSISTANT)]
        assert (await storage.get_session("default", "chat-1")).message_count == 7
        assert await storage.get_revisions("default", "chat-1") == [undone]
    finally:
        await storage.close()


async def test_threadline_own_ids_and_utc_times_migrate_to_their_short_forms(db_path: Path) -> None:
    """Schema 5 keeps ids of 32 lowercase hex digits as 16 bytes and UTC times in ISO 8601's
    basic format; the rows schema 4 wrote (added here as it laid them out) migrate to both."""
    copy_old_database(4, db_path)
    session = SessionRecord(tenant="acme", user_id="ada")  # threadline's own ids: 32 hex digits
    message = Message(session.id, 1, Role.USER, (Text("hello"),), usage=Usage(1, 2))
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute(
            "INSERT INTO sessions (tenant, id, user_id, status, updated_us, version, record, messages_rev) "
            "VALUES (?, ?, ?, 'active', 1, 1, ?, 7)",
            (session.tenant, session.id, session.user_id, dumps(session)),
        )
        db.execute(
            "INSERT INTO messages (tenant, session_id, seq, id, kind, created_at, body, extra) "
            "VALUES (?, ?, 1, ?, 8, ?, 'hello', '{\"usage\":[1,2,0]}')",
            (session.tenant, session.id, message.id, message.created_at.isoformat()),
        )
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await storage.open()
    try:
        assert await storage.get_messages("acme", session.id) == [message]
        stored = await storage.get_session("acme", session.id)
        assert (stored.id, stored.user_id, stored.created_at, stored.usage) == (
            session.id, "ada", session.created_at, Usage(1, 2)
        )  # fmt: skip
    finally:
        await storage.close()
    with closing(sqlite3.connect(db_path)) as db:
        ((session_id, record),) = db.execute(
            "SELECT id, record FROM sessions WHERE tenant = 'acme' AND typeof(id) = 'blob'"
        ).fetchall()
        ((message_id, created_at),) = db.execute(
            "SELECT id, created_at FROM messages WHERE typeof(id) = 'blob'"
        ).fetchall()
    assert (session_id, message_id) == (bytes.fromhex(session.id), bytes.fromhex(message.id))
    assert created_at == message.created_at.strftime("%Y%m%dT%H%M%S.%fZ")
    assert '"id"' not in record and '"tenant"' not in record and '"usage"' not in record


async def test_a_lease_left_behind_by_a_session_deleted_with_foreign_keys_off_does_not_stop_the_migration(
    db_path: Path,
) -> None:
    copy_old_database(4, db_path)
    with closing(sqlite3.connect(db_path)) as db, db:  # the sqlite3 shell's default: foreign keys off
        db.execute("DELETE FROM sessions WHERE tenant = 'default' AND id = 's3'")
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        assert "s3" not in {s.id for s in (await storage.list_sessions(SessionQuery(tenant="default"))).items}
        assert await storage.take_turn("default", "s2", "someone", 5.0)
    finally:
        await storage.close()
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT count(*) FROM turn_leases WHERE session_id = 's3'").fetchone() == (0,)
