"""``compression = "zstd"``: bodies stored as zstd frames with a dictionary the database trains
on its own messages; every message reads back as it was; without zstandard, a clear error."""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest
import zstandard

from threadline import DataFormatError, Message, Role, SessionRecord, Text, ToolCall
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.compression import TRAIN_FROM
from threadline_sqlite.storage import SQLiteStorage

WORDS = ("the", "a", "model", "answer", "question", "session", "history", "reply", "token", "window", "storage")


def chat_text(n: int) -> str:
    """A sentence or three of chat-like English, different for every ``n``."""
    words = [WORDS[(n * 7 + i * i) % len(WORDS)] for i in range(12 + n % 30)]
    return f"Message {n}: {' '.join(words)}, and so on."


async def filled(db_path: Path, messages: int, *, compression: str = "none") -> tuple[SQLiteStorage, list[Message]]:
    storage = SQLiteStorage(SQLiteConfig(path=db_path, compression=compression, history_cache=0))  # type: ignore[arg-type]
    await storage.open()
    session = await storage.create_session(SessionRecord(id="chat"))
    history = [Message(session.id, seq, Role.USER, (Text(chat_text(seq)),)) for seq in range(1, messages + 1)]
    await storage.append_messages("default", session.id, history)
    return storage, history


def stored_bodies(db_path: Path) -> list[str | bytes]:
    with closing(sqlite3.connect(db_path)) as db:
        return [row[0] for row in db.execute("SELECT body FROM messages ORDER BY key")]


def dictionary_ids(db_path: Path) -> list[int]:
    with closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT dictionary FROM zstd_dictionaries ORDER BY n").fetchall()
    return [zstandard.ZstdCompressionDict(row[0]).dict_id() for row in rows]


async def test_a_dictionary_is_trained_at_open_and_every_message_reads_back(db_path: Path) -> None:
    storage, history = await filled(db_path, TRAIN_FROM)
    await storage.close()
    storage = SQLiteStorage(SQLiteConfig(path=db_path, compression="zstd", history_cache=0))
    await storage.open()
    try:
        (dictionary,) = dictionary_ids(db_path)
        later = [
            Message("chat", TRAIN_FROM + 1, Role.USER, (Text(chat_text(5)),)),
            Message("chat", TRAIN_FROM + 2, Role.ASSISTANT, (Text(chat_text(9)), ToolCall("c1", "look", {"q": 1}))),
            Message("chat", TRAIN_FROM + 3, Role.USER, (Text("hi"),)),  # too short to shrink: kept as text
        ]
        await storage.append_messages("default", "chat", later)
        assert await storage.get_messages("default", "chat") == [*history, *later]
        *_, compressed, with_parts, short = stored_bodies(db_path)
        assert zstandard.get_frame_parameters(compressed).dict_id == dictionary
        assert zstandard.get_frame_parameters(with_parts).dict_id == dictionary and short == "hi"
    finally:
        await storage.close()


async def test_vacuum_trains_again_and_compresses_every_message_into_less_space(db_path: Path) -> None:
    storage, history = await filled(db_path, 3 * TRAIN_FROM, compression="zstd")  # too few at open: no dictionary
    try:
        assert dictionary_ids(db_path) == []
        before = sum(len(body if isinstance(body, bytes) else body.encode()) for body in stored_bodies(db_path))
        await storage.vacuum()
        (dictionary,) = dictionary_ids(db_path)
        bodies = stored_bodies(db_path)
        assert all(zstandard.get_frame_parameters(body).dict_id == dictionary for body in bodies)
        assert sum(map(len, bodies)) < before / 2
        assert await storage.get_messages("default", "chat") == history
    finally:
        await storage.close()


async def test_without_zstandard_a_compressed_database_says_what_to_install(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage, _ = await filled(db_path, 3 * TRAIN_FROM, compression="zstd")
    await storage.vacuum()
    plain = await storage.create_session(SessionRecord(id="plain"))
    await storage.close()
    with closing(sqlite3.connect(db_path)) as db, db:  # a session written with compression off
        db.execute("UPDATE messages SET body = 'not compressed' WHERE key = (SELECT max(key) FROM messages)")

    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(DataFormatError, match=r"pip install 'threadline-sqlite\[zstd\]'"):
        await SQLiteStorage(SQLiteConfig(path=db_path, compression="zstd")).open()
    storage = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
    await storage.open()  # compression off: it opens, and reads what is not compressed
    try:
        assert (await storage.get_messages("default", "chat", last=1))[0].text == "not compressed"
        assert await storage.get_messages("default", plain.id) == []
        with pytest.raises(DataFormatError, match=r"needs the zstandard package: pip install"):
            await storage.get_messages("default", "chat")
    finally:
        await storage.close()


async def test_a_damaged_frame_is_a_clear_error_naming_the_session(db_path: Path) -> None:
    storage, _ = await filled(db_path, 3 * TRAIN_FROM, compression="zstd")
    try:
        await storage.vacuum()
        with closing(sqlite3.connect(db_path)) as db, db:
            db.execute("UPDATE messages SET body = substr(body, 1, 10) WHERE key = (SELECT min(key) FROM messages)")
            db.execute("DELETE FROM zstd_dictionaries")
        with pytest.raises(DataFormatError, match="a message of session 'chat' is damaged in the database: not a zstd"):
            await storage.get_messages("default", "chat", last=TRAIN_FROM * 3)
        reopened = SQLiteStorage(SQLiteConfig(path=db_path, history_cache=0))
        await reopened.open()
        try:
            with pytest.raises(DataFormatError, match=r"dictionary [0-9]+, which is missing"):
                await reopened.get_messages("default", "chat", last=1)
        finally:
            await reopened.close()
    finally:
        await storage.close()


async def test_a_dictionary_another_process_added_is_read_and_then_used(db_path: Path) -> None:
    server, history = await filled(db_path, 2 * TRAIN_FROM, compression="zstd")  # no dictionary when it opened
    try:
        other = SQLiteStorage(SQLiteConfig(path=db_path, compression="zstd"))
        await other.open()  # trains one: the database has enough messages now
        await other.vacuum()  # and compresses every message with it
        await other.close()
        (dictionary,) = dictionary_ids(db_path)
        assert await server.get_messages("default", "chat") == history
        later = Message("chat", len(history) + 1, Role.USER, (Text(chat_text(3)),))
        await server.append_messages("default", "chat", [later])  # compressed with the new dictionary too
        assert zstandard.get_frame_parameters(stored_bodies(db_path)[-1]).dict_id == dictionary
    finally:
        await server.close()


async def test_vacuum_trains_again_only_once_the_messages_have_doubled(db_path: Path) -> None:
    storage, _ = await filled(db_path, TRAIN_FROM, compression="zstd")
    try:
        await storage.vacuum()
        await storage.vacuum()
        assert len(dictionary_ids(db_path)) == 1
        more = [Message("chat", TRAIN_FROM + n, Role.USER, (Text(chat_text(n)),)) for n in range(1, TRAIN_FROM + 1)]
        await storage.append_messages("default", "chat", more)
        await storage.vacuum()
        assert len(dictionary_ids(db_path)) == 2
    finally:
        await storage.close()
