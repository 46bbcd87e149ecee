"""Write ``schema-N.db``, a database as the release at schema N wrote it, and ``schema-N.jsonl``,
every record in it as that release read it back. Run once per schema with that release's code
first on the path (README.md in this folder says how); the files are then kept as they are.

    python write.py N OUT_DIR
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from threadline.model import (
    File,
    Image,
    Message,
    MessageStatus,
    Revision,
    Role,
    SessionRecord,
    SessionStatus,
    Text,
    ToolCall,
    ToolResult,
    Usage,
    dump,
    dump_record,
)
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.schema import LATEST, MIGRATIONS
from threadline_sqlite.storage import SQLiteStorage

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
TENANTS = ("default", "acme")
ODD_ID = "'; DROP TABLE messages; --"


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def sessions() -> list[SessionRecord]:
    weather = SessionRecord(
        id="chat-1", user_id="ada", provider="anthropic", model="claude-x", system_prompt="be brief",
        title="Weather in Zürich", tools=("weather",), metadata={"topic": "weather", "nested": {"a": [1, 2]}},
        provider_state={"response_id": "resp_1", "through_seq": 5}, created_at=at(0), updated_at=at(0),
    )  # fmt: skip
    archived = SessionRecord(
        id="old one", user_id="bob", status=SessionStatus.ARCHIVED, title="Archived", created_at=at(1), updated_at=at(1)
    )
    odd = SessionRecord(id=ODD_ID, tenant="acme", user_id="ada", created_at=at(2), updated_at=at(2))
    small = [SessionRecord(id=f"s{n}", user_id="cy", created_at=at(3 + n), updated_at=at(3 + n)) for n in range(4)]
    return [weather, archived, odd, *small]


def messages() -> dict[str, list[Message]]:
    """Every kind of message a row holds, by session id."""

    def message(session_id: str, seq: int, role: Role, *parts: object, **fields: object) -> Message:
        return Message(session_id, seq, role, parts, id=f"{session_id}#{seq}", created_at=at(10 + seq), **fields)  # type: ignore[arg-type]

    chat = "chat-1"
    pdf = File("application/pdf", data=b"%PDF-1.4 tiny", name="forecast.pdf")
    signed = Text("Checking.", provider_data={"anthropic": {"signature": "sig=="}})
    call = ToolCall("call_1", "weather", {"city": "Zürich", "days": [1, 2]})
    return {
        chat: [
            message(chat, 1, Role.SYSTEM, Text("be brief")),
            message(chat, 2, Role.USER, Text("Weather? 🌤"), Image("image/png", data=PNG), pdf),
            message(
                chat, 3, Role.ASSISTANT, signed, call, usage=Usage(10, 5, 2, 0.0015), provider="anthropic", model="x"
            ),
            message(chat, 4, Role.TOOL, ToolResult("call_1", "12°C, clear"), metadata={"tool": "weather"}),
            message(chat, 5, Role.ASSISTANT, Text("It is 12°C."), usage=Usage(3, 4), provider="anthropic"),
            message(chat, 6, Role.USER, Text("And tomorrow?")),  # marked failed after the append
            message(chat, 7, Role.ASSISTANT, Text("Tomor"), status=MessageStatus.INCOMPLETE, error="stream dropped"),
            message(chat, 8, Role.USER, Image("image/jpeg", url="https://example.com/sky.jpg"), Text("this one")),
            message(chat, 9, Role.ASSISTANT, ToolResult("call_2", "no such tool", is_error=True)),
        ],
        ODD_ID: [
            message(ODD_ID, 1, Role.USER, Text('it\'s "quoted"\n\ttabbed\x00nul')),
            message(ODD_ID, 2, Role.ASSISTANT, Text(""), usage=Usage(0, 0, 0, 0.0)),
        ],
        **{
            f"s{n}": [
                message(f"s{n}", 1, Role.USER, Text(f"hello {n}")),
                message(f"s{n}", 2, Role.ASSISTANT, Text("hi")),
            ]
            for n in range(4)
        },
    }


async def write_with_storage(path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        by_session = messages()
        for session in sessions():
            await storage.create_session(session)
            for message in by_session.get(session.id, []):
                await storage.append_messages(session.tenant, session.id, [message])
        await storage.set_message_status("default", "chat-1", 6, "failed", "rate limited")
        if LATEST >= 4:
            assert await storage.take_turn("default", "s3", "writer-of-the-fixture", 30.0)
        if LATEST >= 6:  # an edit: "hi" of s0 replaced, kept as revision 1
            edited = Message("s0", 2, Role.ASSISTANT, (Text("hi, edited"),), id="s0#2b", created_at=at(30))
            await storage.replace_messages("default", "s0", 1, [edited], count=2)
    finally:
        await storage.close()


def write_schema_1(path: Path) -> None:
    """No release wrote schema 1 through the storage: it is the rows of threadline-sqlite 0.1,
    as they are laid out in MIGRATIONS[0], written with sqlite3."""
    from threadline.model import dump_parts, dumps

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.executescript("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);")
    by_session = messages()
    for session in sessions():
        written = by_session.get(session.id, [])
        used = [m.usage for m in written if m.usage]
        db.execute(
            "INSERT INTO sessions (tenant, id, user_id, status, updated_us, version, message_count, "
            "input_tokens, output_tokens, record) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (session.tenant, session.id, session.user_id, session.status.value,
             (session.updated_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1), len(written),
             sum(u.input_tokens for u in used), sum(u.output_tokens for u in used), dumps(session)),
        )  # fmt: skip
        for m in written:
            status = MessageStatus.FAILED if (session.id, m.seq) == ("chat-1", 6) else m.status
            db.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session.tenant, m.session_id, m.seq, m.id, m.role.value, m.created_at.isoformat(),
                 dump_parts(m.parts), status.value, "rate limited" if status != m.status else m.error, m.provider,
                 m.model, m.usage and m.usage.input_tokens, m.usage and m.usage.output_tokens,
                 dumps(dict(m.metadata)) if m.metadata else None),
            )  # fmt: skip
    db.close()


async def read_back(path: Path, out: Path) -> None:
    """Every record, as an export gives them; from schema 6, every session's revisions too."""
    storage = SQLiteStorage(SQLiteConfig(path=path))
    await storage.open()
    try:
        sessions: list[SessionRecord] = []
        with out.open("w", encoding="utf-8") as lines:
            for tenant in TENANTS:
                async for record in storage.export_records(tenant):
                    if isinstance(record, Revision):  # in the .revisions.jsonl file, below
                        continue
                    lines.write(dump_record(record) + "\n")
                    if isinstance(record, SessionRecord):
                        sessions.append(record)
        if LATEST >= 6:
            with out.with_suffix(".revisions.jsonl").open("w", encoding="utf-8") as lines:
                for session in sessions:
                    for revision in await storage.get_revisions(session.tenant, session.id):
                        lines.write(json.dumps(dump(revision), ensure_ascii=False) + "\n")
    finally:
        await storage.close()


def checkpointed(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not path.with_name(path.name + "-wal").exists() or not path.with_name(path.name + "-wal").stat().st_size


def main(schema: int, folder: Path) -> None:
    database, records = folder / f"schema-{schema}.db", folder / f"schema-{schema}.jsonl"
    database.unlink(missing_ok=True)
    if schema == 1:
        write_schema_1(database)
        with tempfile.TemporaryDirectory() as scratch:  # read back by the oldest release, migrating a copy
            copy = Path(scratch) / "copy.db"
            shutil.copyfile(database, copy)
            asyncio.run(read_back(copy, records))
    else:
        assert schema == LATEST, f"the code on the path writes schema {LATEST}, not {schema}"
        asyncio.run(write_with_storage(database))
        asyncio.run(read_back(database, records))
    checkpointed(database)
    for leftover in folder.glob(f"schema-{schema}.db-*"):
        leftover.unlink()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
