"""The FTS5 search index (schema 7): built for the messages an older database holds, compressed
bodies included; in step with the messages after a writer is killed mid-append; refused
clearly on a read-only database from before it. The contract suite checks the rest."""

from __future__ import annotations

import importlib.util
import signal
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from test_compression import chat_text, filled, stored_bodies
from test_migrations import SCHEMAS, TENANTS, copy_old_database, records_read_then
from test_processes import appender, make_sessions

import threadline.plugin
from threadline import Message, SearchQuery, SessionRecord, StorageUnavailable, Text
from threadline.plugin import search_terms
from threadline_sqlite import SQLiteConfig
from threadline_sqlite import storage as storage_module
from threadline_sqlite.compression import TRAIN_FROM
from threadline_sqlite.group_commit import GroupCommit
from threadline_sqlite.schema import SEARCH_FROM
from threadline_sqlite.storage import SQLiteStorage


def searchable_words(message: Message) -> list[str]:
    return [word for term in search_terms(message.text) for word in term if len(word) > 3]


def index_count(db_path: Path) -> int:
    with closing(sqlite3.connect(db_path)) as db:
        ((count,),) = db.execute("SELECT count(*) FROM message_search").fetchall()
    return int(count)


@pytest.mark.parametrize("schema", [schema for schema in SCHEMAS if schema < SEARCH_FROM])
async def test_the_messages_of_an_old_database_are_found_once_it_migrates(schema: int, db_path: Path) -> None:
    copy_old_database(schema, db_path)
    messages = [r for r in records_read_then(schema) if isinstance(r, Message) and searchable_words(r)]
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        for message in messages:
            word = searchable_words(message)[0]
            hits = [
                (hit.session_id, hit.seq)
                for tenant in TENANTS
                for hit in await storage.search_messages(SearchQuery(word, tenant=tenant, limit=1000))
            ]
            assert (message.session_id, message.seq) in hits, (schema, word)
    finally:
        await storage.close()


async def test_compressed_bodies_are_indexed_as_appended_and_by_the_migration(db_path: Path) -> None:
    storage, history = await filled(db_path, 2 * TRAIN_FROM, compression="zstd")
    try:
        await storage.close()
        await storage.open()  # trains a dictionary: what is appended now is compressed
        text = f"{chat_text(1)} A zebra crossing, compressed."
        later = [Message("chat", len(history) + 1, "user", (Text(text),))]
        await storage.append_messages("default", "chat", later)
        assert isinstance(stored_bodies(db_path)[-1], bytes)
        hits = await storage.search_messages(SearchQuery("zebra"))
        assert [hit.seq for hit in hits] == [len(history) + 1]
        assert hits[0].snippet.endswith("A [zebra] crossing, compressed.")
        await storage.vacuum()  # compresses every message
    finally:
        await storage.close()
    assert all(isinstance(body, bytes) for body in stored_bodies(db_path))
    with closing(sqlite3.connect(db_path)) as db, db:  # back to schema 6: no index
        db.execute("DROP TABLE message_search")
        db.execute("DROP TABLE search_pending")
        db.execute("DROP TRIGGER messages_searchable")
        db.execute("DROP TRIGGER messages_unsearchable")
        db.execute("UPDATE schema_version SET version = 6")
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        assert index_count(db_path) == len(history) + 1
        hits = await storage.search_messages(SearchQuery("zebra"))
        assert [hit.seq for hit in hits] == [len(history) + 1]
        word = searchable_words(history[7])[0]
        assert 8 in {hit.seq for hit in await storage.search_messages(SearchQuery(word, limit=1000))}
    finally:
        await storage.close()


@pytest.mark.parametrize("run", range(2))
async def test_a_writer_killed_mid_append_leaves_the_index_as_the_messages(db_path: Path, run: int) -> None:
    sessions = await make_sessions(db_path, 3)
    writer = appender(db_path, "w", 100_000, 3, sessions)
    assert writer.stdout is not None
    for acked, _ in enumerate(writer.stdout):
        if acked >= 40 + 97 * run:
            break
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    storage = SQLiteStorage(SQLiteConfig(path=db_path))
    await storage.open()
    try:
        for session_id in sessions:
            messages = await storage.get_messages("default", session_id)
            hits = await storage.search_messages(SearchQuery("w", limit=1000))
            assert {hit.seq for hit in hits if hit.session_id == session_id} == {m.seq for m in messages}
        with closing(sqlite3.connect(db_path)) as db:
            ((stored,),) = db.execute("SELECT count(*) FROM messages").fetchall()
        assert index_count(db_path) == stored
    finally:
        await storage.close()


async def test_a_read_only_database_from_before_search_says_to_open_it_writable(db_path: Path) -> None:
    copy_old_database(6, db_path)
    storage = SQLiteStorage(SQLiteConfig(path=db_path, read_only=True))
    await storage.open()
    try:
        with pytest.raises(StorageUnavailable, match=r"from before search.*open it once with write access"):
            await storage.search_messages(SearchQuery("hello"))
    finally:
        await storage.close()


async def test_an_fts_query_the_user_could_not_write_is_what_runs(db_path: Path, storage: SQLiteStorage) -> None:
    """Each term goes in as a quoted phrase of its words: FTS5 operators in the text are words."""
    await storage.create_session(SessionRecord(id="s"))
    await storage.append_messages("default", "s", [Message("s", 1, "user", (Text("alpha beta"),))])
    assert await storage.search_messages(SearchQuery("alpha OR gamma")) == []  # OR is a word here
    assert [hit.seq for hit in await storage.search_messages(SearchQuery("ALPHA beta"))] == [1]


def test_the_kernel_takes_words_as_the_index_does_for_every_code_point() -> None:
    """threadline.search's words are unicode61's (remove_diacritics 2), checked against this
    SQLite: each code point between two letters is in the word (folded, or left out) or ends it."""
    code_points = [point for point in range(0x110000) if not 0xD800 <= point <= 0xDFFF]
    chunks = [code_points[start : start + 8192] for start in range(0, len(code_points), 8192)]
    texts = [" ".join(f"a{chr(point)}a" for point in chunk) for chunk in chunks]
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
        db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(t, 'instance')")
        db.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)", enumerate(texts))
        indexed: list[list[str]] = [[] for _ in texts]
        for row, term in db.execute("SELECT doc, term FROM tokens ORDER BY doc, offset"):
            indexed[row].append(term)
    for chunk, text, terms in zip(chunks, texts, indexed, strict=True):
        kernel = [word for term in search_terms(text) for word in term]
        if kernel != terms:
            wrong = next(p for p in chunk if [w for t in search_terms(f"a{chr(p)}a") for w in t] != terms_of(p))
            pytest.fail(f"U+{wrong:04X}: the kernel's words differ from SQLite's")


def terms_of(point: int) -> list[str]:
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
        db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(t, 'instance')")
        db.execute("INSERT INTO t (rowid, text) VALUES (1, ?)", (f"a{chr(point)}a",))
        return [term for (term,) in db.execute("SELECT term FROM tokens ORDER BY offset")]


async def test_a_search_with_nothing_to_index_writes_nothing(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexing what was appended is a write transaction (and an fsync): only when something is."""
    writes = 0
    write = GroupCommit.write

    async def counted(self: GroupCommit, work: Any, **options: Any) -> Any:
        nonlocal writes
        writes += 1
        return await write(self, work, **options)

    monkeypatch.setattr(GroupCommit, "write", counted)
    await storage.create_session(SessionRecord(id="s"))
    await storage.append_messages("default", "s", [Message("s", 1, "user", (Text("alpha beta"),))])
    before = writes
    assert [hit.seq for hit in await storage.search_messages(SearchQuery("alpha"))] == [1]
    assert writes == before + 1  # the appended message indexed
    assert [hit.seq for hit in await storage.search_messages(SearchQuery("beta"))] == [1]
    assert [hit.seq for hit in await storage.search_messages(SearchQuery("gamma"))] == []
    assert writes == before + 1  # nothing pending: no write
    await storage.append_messages("default", "s", [Message("s", 2, "assistant", (Text("gamma"),))])
    assert [hit.seq for hit in await storage.search_messages(SearchQuery("gamma"))] == [2]


def test_the_search_sql_marks_snippets_with_the_kernels_marks(monkeypatch: pytest.MonkeyPatch) -> None:
    """_SEARCH is made from threadline.plugin's MARK_START, MARK_END, ELLIPSIS and SNIPPET_WORDS."""
    for name, value in (("MARK_START", "<'"), ("MARK_END", ">"), ("ELLIPSIS", "..."), ("SNIPPET_WORDS", 9)):
        monkeypatch.setattr(threadline.plugin, name, value, raising=False)
    spec = importlib.util.spec_from_file_location("storage_with_other_marks", storage_module.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "snippet(message_search, 0, '<''', '>', '...', 9)" in module._SEARCH
