"""A database written at an older schema version opens, migrates forward and keeps every row."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from threadline import Message, Role, SessionRecord, Text, Usage
from threadline.model import dump_parts, dumps
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.schema import LATEST, MIGRATIONS
from threadline_sqlite.storage import SQLiteStorage, to_us


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
