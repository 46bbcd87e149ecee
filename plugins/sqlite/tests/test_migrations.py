"""A database written at an older schema version opens, migrates forward and keeps every row."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from threadline import Message, MessageStatus, Role, SessionRecord, Text, Usage
from threadline.plugin import dump_parts, dumps
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.schema import LATEST, MIGRATIONS
from threadline_sqlite.storage import SESSION_COLUMNS, SQLiteStorage, _extra, _session_row, to_us


def write_version_1_database(path: Path, sessions: int, messages_each: int) -> None:
    """What threadline-sqlite 0.1 wrote: schema 1 and its rows, with sqlite3 alone."""
    db = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.executescript("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);")
    for index in range(sessions):
        record = SessionRecord(id=f"s{index}", user_id=f"u{index % 3}", title=f"Chat {index}")
        db.execute(
            "INSERT INTO sessions (tenant, id, user_id, status, updated_us, version, message_count, "
            "input_tokens, output_tokens, record) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            ("default", record.id, record.user_id, "active", to_us(record.updated_at), messages_each,
             5 * messages_each, 7 * messages_each, dumps(record)),
        )  # fmt: skip
        for seq in range(1, messages_each + 1):
            message = Message(record.id, seq, Role.USER if seq % 2 else Role.ASSISTANT, (Text(f"{index}/{seq}"),))
            db.execute(
                "INSERT INTO messages (tenant, session_id, seq, id, role, created_at, parts, status, "
                "input_tokens, output_tokens, metadata) VALUES ('default', ?, ?, ?, ?, ?, ?, 'ok', 5, 7, ?)",
                (record.id, seq, message.id, message.role.value, message.created_at.isoformat(),
                 dump_parts(message.parts), json.dumps({"n": seq})),
            )  # fmt: skip
    db.close()


async def test_version_1_migrates_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_version_1_database(path, sessions=30, messages_each=12)
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT version FROM schema_version").fetchone() == (LATEST,)
        for index in range(30):
            session = await storage.get_session("default", f"s{index}")
            assert (session.title, session.message_count) == (f"Chat {index}", 12)
            assert session.usage == Usage(60, 84, 0, None)
            messages = await storage.get_messages("default", session.id)
            assert [m.text for m in messages] == [f"{index}/{seq}" for seq in range(1, 13)]
            assert messages[0].usage == Usage(5, 7, 0, None) and messages[0].metadata == {"n": 1}
        # and the new columns work: appends with cached tokens and cost add up
        extra = Message("s0", 13, Role.ASSISTANT, (Text("new"),), usage=Usage(1, 1, 1, 0.5))
        await storage.append_messages("default", "s0", [extra])
        assert (await storage.get_session("default", "s0")).usage == Usage(61, 85, 1, 0.5)
    finally:
        await storage.close()


async def test_opening_twice_does_not_migrate_twice(tmp_path: Path) -> None:
    path = tmp_path / "db"
    for _ in range(2):
        storage = SQLiteStorage(SQLiteConfig(path=path))
        await storage.open()
        await storage.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(LATEST,)]


def write_version_2_database(path: Path) -> list[Message]:
    """What threadline-sqlite wrote at schema 2 (8 message columns, a WITHOUT ROWID table),
    with one message of each kind a row can hold; returns them."""
    session = SessionRecord(id="s2", title="Two")
    messages = [
        Message("s2", 1, Role.SYSTEM, (Text("be brief"),)),
        Message("s2", 2, Role.USER, (Text("hi", provider_data={"anthropic": {"k": 1}}), Text("there"))),
        Message("s2", 3, Role.ASSISTANT, (Text("cut"),), status=MessageStatus.INCOMPLETE, error="dropped"),
        Message("s2", 4, Role.USER, (Text("again"),), status=MessageStatus.FAILED, error="rate limited"),
        Message("s2", 5, Role.ASSISTANT, (Text("yes"),), usage=Usage(3, 4, 1, 0.25), provider="echo", model="m"),
        Message("s2", 6, Role.TOOL, (Text("42"),), metadata={"tool": "calc"}),
    ]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    for statement in MIGRATIONS[0] + MIGRATIONS[1]:
        db.execute(statement)
    db.executescript("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);")
    db.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}, messages_rev) VALUES ({', '.join('?' * 13)})",
        (*_session_row(session), 7),
    )
    for m in messages:
        plain = len(m.parts) == 1 and not m.parts[0].provider_data  # type: ignore[union-attr]
        db.execute(
            "INSERT INTO messages (tenant, session_id, seq, id, role, created_at, text, parts, status, extra) "
            "VALUES ('default', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (m.session_id, m.seq, m.id, m.role.value, m.created_at.isoformat(), m.text if plain else None,
             "" if plain else dump_parts(m.parts), m.status.value, _extra(m)),
        )  # fmt: skip
    db.close()
    return messages


async def test_version_2_migrates_every_kind_of_message(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    written = write_version_2_database(path)
    storage = SQLiteStorage(SQLiteConfig(path=path, history_cache=0))
    await storage.open()
    try:
        assert await storage.get_messages("default", "s2") == written
        session = await storage.get_session("default", "s2")
        assert (session.title, session.message_count, session.usage) == ("Two", 6, Usage(3, 4, 1, 0.25))
        await storage.set_message_status("default", "s2", 3, "ok")
        assert (await storage.get_messages("default", "s2", after_seq=2, last=1))[0].status == MessageStatus.OK
        await storage.append_messages("default", "s2", [Message("s2", 7, Role.USER, (Text("after"),))])
        assert [m.seq for m in await storage.get_messages("default", "s2")] == list(range(1, 8))
    finally:
        await storage.close()
