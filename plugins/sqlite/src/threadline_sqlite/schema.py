"""The database schema and its forward migrations, run when a storage opens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import aiosqlite

from threadline.plugin import DataFormatError, MessageStatus, Role, load_parts, message_text
from threadline_sqlite.compression import Codec

SEQ_DOES_NOT_FOLLOW_ON: Final = "threadline: seq does not follow on"

# A message's role, status and the form of its body are one integer, `kind`, since
# schema 3: role code * 8 + status code * 2 + (1 if `body` is parts JSON, 0 if it is
# one plain text). The codes are positions in these tuples; append only.
ROLE_CODES: Final = (Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL)
STATUS_CODES: Final = (MessageStatus.OK, MessageStatus.FAILED, MessageStatus.INCOMPLETE)
STATUS_BITS: Final = 6  # the bits of `kind` that hold the status code


_FOLLOW_ON: Final = f"""CREATE TRIGGER messages_follow_on BEFORE INSERT ON messages
        WHEN NEW.seq IS NOT (SELECT message_count + 1 FROM sessions WHERE tenant = NEW.tenant AND id = NEW.session_id)
        BEGIN SELECT RAISE(ABORT, '{SEQ_DOES_NOT_FOLLOW_ON}'); END"""


def _codes(values: tuple[str, ...], weight: int) -> str:  # pragma: no mutate block (used at import)
    return " ".join(f"WHEN '{value}' THEN {code * weight}" for code, value in enumerate(values))


EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
NOW_US: Final = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"  # SQLite's clock, in µs
# the SQL function (registered on the writer) that keeps a message id as migration 5 stores it
PACKED_ID: Final = "threadline_packed_id"
# the SQL function (registered on the writer) that gives the search index a message's text
# (schema 7), and the one (on every connection) that reads a message's time in µs
SEARCH_TEXT: Final = "threadline_search_text"
CREATED_US: Final = "threadline_created_us"
# a message's key is its session's sid * SEQ_SPAN + its seq (schema 5)
SEQ_SPAN: Final = 2**32
# a UTC time in ISO 8601's basic format, as storage._iso writes it: 2026-12-05T21:09:25.25+00:00 as 20261205T210925.25Z
_UTC_AS_Z: Final = (
    "CASE WHEN created_at LIKE '____-__-__T__:__:__%+00:00' THEN substr(created_at, 1, 4) || substr(created_at, 6, 2) "
    "|| substr(created_at, 9, 5) || substr(created_at, 15, 2) || substr(created_at, 18, length(created_at) - 23) "
    "|| 'Z' ELSE created_at END"
)
_SESSION_COLUMNS_5: Final = (
    "tenant, id, user_id, status, updated_us, version, message_count, "
    "input_tokens, output_tokens, cached_tokens, cost, messages_rev, record"
)
# what a session's columns hold, left out of its `record` since schema 5
COLUMN_FIELDS: Final = ("id", "tenant", "user_id", "status", "updated_at", "version", "message_count", "usage")
_COLUMN_FIELDS: Final = ", ".join(f"'$.{name}'" for name in COLUMN_FIELDS)


# Each entry moves the schema from version i to i + 1: its statements run in one
# transaction. Never edit a released entry: add one.
def _searched(row: str) -> str:  # pragma: no mutate block (SQL the migrations run)
    """The SQL of a stored message's searched text, ``row`` naming the row (``NEW.``)."""
    plain = f"typeof({row}body) = 'text' AND {row}kind & 1 = 0"
    return f"CASE WHEN {plain} THEN {row}body ELSE {SEARCH_TEXT}({row}kind, {row}body) END"


MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: sessions and messages
    (
        """CREATE TABLE sessions (
            tenant        TEXT    NOT NULL,
            id            TEXT    NOT NULL,
            user_id       TEXT,
            status        TEXT    NOT NULL,
            updated_us    INTEGER NOT NULL,
            version       INTEGER NOT NULL,
            message_count INTEGER NOT NULL DEFAULT 0,
            input_tokens  INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            record        TEXT    NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID""",
        "CREATE INDEX sessions_by_user ON sessions (tenant, user_id, updated_us, id)",
        """CREATE TABLE messages (
            tenant        TEXT    NOT NULL,
            session_id    TEXT    NOT NULL,
            seq           INTEGER NOT NULL,
            id            TEXT    NOT NULL,
            role          TEXT    NOT NULL,
            created_at    TEXT    NOT NULL,
            parts         TEXT    NOT NULL,
            status        TEXT    NOT NULL,
            error         TEXT,
            provider      TEXT,
            model         TEXT,
            input_tokens  INTEGER,
            output_tokens INTEGER,
            metadata      TEXT,
            PRIMARY KEY (tenant, session_id, seq),
            FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, id) ON DELETE CASCADE
        ) WITHOUT ROWID""",
    ),
    # 2: what a message rarely has (error, provider, model, usage, metadata) moves into one
    # JSON column, `extra`, and a message that is one plain text keeps it in `text`: most
    # rows are read with no JSON at all. The database itself refuses a message whose seq
    # does not follow on, and keeps the session's count, token totals (now with cached
    # tokens and cost) and activity time, so an append is one INSERT. Listing by status
    # and by activity walks an index. `messages_rev` lets readers cache decoded histories.
    (
        "ALTER TABLE sessions ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN cost REAL",
        # rises whenever a stored message changes (its status); starts at random for each
        # session, so a session deleted and made again under its id is never mistaken for it
        "ALTER TABLE sessions ADD COLUMN messages_rev INTEGER NOT NULL DEFAULT 0",
        "UPDATE sessions SET messages_rev = abs(random() % 1000000000000)",
        "CREATE INDEX sessions_by_status ON sessions (tenant, status, updated_us, id)",
        "CREATE INDEX sessions_by_activity ON sessions (tenant, updated_us, id)",
        "ALTER TABLE messages ADD COLUMN text TEXT",
        "ALTER TABLE messages ADD COLUMN extra TEXT",
        # a JSON merge patch drops the keys whose value is null: absent fields stay absent
        """UPDATE messages SET extra = json_patch('{}', json_object(
            'error', error,
            'provider', provider,
            'model', model,
            'usage', CASE WHEN input_tokens IS NULL THEN NULL ELSE json_array(input_tokens, output_tokens, 0) END,
            'metadata', CASE WHEN metadata IS NULL THEN NULL ELSE json(metadata) END))""",
        "UPDATE messages SET extra = NULL WHERE extra = '{}'",
        "ALTER TABLE messages DROP COLUMN error",
        "ALTER TABLE messages DROP COLUMN provider",
        "ALTER TABLE messages DROP COLUMN model",
        "ALTER TABLE messages DROP COLUMN input_tokens",
        "ALTER TABLE messages DROP COLUMN output_tokens",
        "ALTER TABLE messages DROP COLUMN metadata",
        _FOLLOW_ON,
        """CREATE TRIGGER messages_counted AFTER INSERT ON messages
        BEGIN
            UPDATE sessions SET
                message_count = message_count + 1,
                input_tokens = input_tokens + coalesce(json_extract(NEW.extra, '$.usage[0]'), 0),
                output_tokens = output_tokens + coalesce(json_extract(NEW.extra, '$.usage[1]'), 0),
                cached_tokens = cached_tokens + coalesce(json_extract(NEW.extra, '$.usage[2]'), 0),
                cost = CASE WHEN json_extract(NEW.extra, '$.usage[3]') IS NULL THEN cost
                            ELSE coalesce(cost, 0) + json_extract(NEW.extra, '$.usage[3]') END,
                updated_us = max(updated_us + 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))
            WHERE tenant = NEW.tenant AND id = NEW.session_id;
        END""",
    ),
    # 3: messages become a rowid table with a unique index on (tenant, session_id, seq):
    # appends to many sessions at once add to the end of the table instead of splitting
    # pages across it (W4: half the time a row). A row is read with fewer columns: `kind`
    # holds role, status and whether `body` is plain text or parts JSON. The session's
    # token totals are summed only for messages that carry usage. One index fewer moves
    # when an append changes a session's activity time.
    (
        """CREATE TABLE messages_3 (
            tenant     TEXT    NOT NULL,
            session_id TEXT    NOT NULL,
            seq        INTEGER NOT NULL,
            id         TEXT    NOT NULL,
            kind       INTEGER NOT NULL,
            created_at TEXT    NOT NULL,
            body       TEXT    NOT NULL,
            extra      TEXT,
            FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, id) ON DELETE CASCADE
        )""",
        f"""INSERT INTO messages_3
        SELECT tenant, session_id, seq, id,
            CASE role {_codes(ROLE_CODES, 8)} END + CASE status {_codes(STATUS_CODES, 2)} END + (text IS NULL),
            created_at, coalesce(text, parts), extra
        FROM messages ORDER BY tenant, session_id, seq""",
        "DROP TABLE messages",
        "ALTER TABLE messages_3 RENAME TO messages",
        "CREATE UNIQUE INDEX messages_by_session ON messages (tenant, session_id, seq)",
        # listing all of a tenant's sessions merges walks of sessions_by_status instead
        "DROP INDEX sessions_by_activity",
        _FOLLOW_ON,
        """CREATE TRIGGER messages_counted AFTER INSERT ON messages
        BEGIN
            UPDATE sessions SET
                message_count = message_count + 1,
                updated_us = max(updated_us + 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))
            WHERE tenant = NEW.tenant AND id = NEW.session_id;
        END""",
        """CREATE TRIGGER messages_usage_counted AFTER INSERT ON messages
        WHEN json_extract(NEW.extra, '$.usage') IS NOT NULL
        BEGIN
            UPDATE sessions SET
                input_tokens = input_tokens + json_extract(NEW.extra, '$.usage[0]'),
                output_tokens = output_tokens + json_extract(NEW.extra, '$.usage[1]'),
                cached_tokens = cached_tokens + json_extract(NEW.extra, '$.usage[2]'),
                cost = CASE WHEN json_extract(NEW.extra, '$.usage[3]') IS NULL THEN cost
                            ELSE coalesce(cost, 0) + json_extract(NEW.extra, '$.usage[3]') END
            WHERE tenant = NEW.tenant AND id = NEW.session_id;
        END""",
    ),
    # 4: a session's turn lease, shared by every process on the file; its expiry by SQLite's clock
    (
        """CREATE TABLE turn_leases (
            tenant          TEXT    NOT NULL,
            session_id      TEXT    NOT NULL,
            holder          TEXT,
            expires_us      INTEGER NOT NULL,
            waiter          TEXT,
            waiter_until_us INTEGER NOT NULL,
            PRIMARY KEY (tenant, session_id),
            FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, id) ON DELETE CASCADE
        ) WITHOUT ROWID""",
    ),
    # 5: less on disk, less work per append and per read. A session gets an integer key,
    # `sid`; a message's rowid, `key`, is its session's sid * 2^32 + its seq, so a session's
    # messages lie together in rowid order, read by one range of the table with no index to
    # keep (the tenant, session id and seq columns and the index on them go). A message id
    # of 32 lowercase hex digits (threadline's own) is kept as its 16 bytes, a UTC time in
    # ISO 8601's basic format, and a session's `record` no longer repeats what its columns
    # hold. Sessions with no user are not in the index by user. One trigger checks an
    # append's seq and counts it (three did); one deletes a session's messages. A body may
    # be a zstd frame (a BLOB), compressed with a dictionary kept in zstd_dictionaries.
    (
        """CREATE TABLE sessions_5 (
            sid           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a message key means one session
            tenant        TEXT    NOT NULL,
            id            TEXT    NOT NULL,
            user_id       TEXT,
            status        TEXT    NOT NULL,
            updated_us    INTEGER NOT NULL,
            version       INTEGER NOT NULL,
            message_count INTEGER NOT NULL DEFAULT 0,
            input_tokens  INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            cost          REAL,
            messages_rev  INTEGER NOT NULL,
            record        TEXT    NOT NULL,
            UNIQUE (tenant, id)
        )""",
        f"""INSERT INTO sessions_5 ({_SESSION_COLUMNS_5})
        SELECT {
            _SESSION_COLUMNS_5.replace("record", f"json_remove(record, {_COLUMN_FIELDS})").replace(
                "tenant, id,", f"tenant, {PACKED_ID}(id),"
            )
        } FROM sessions""",
        """CREATE TABLE messages_5 (
            key        INTEGER PRIMARY KEY,
            id                 NOT NULL,
            kind       INTEGER NOT NULL,
            created_at TEXT    NOT NULL,
            body               NOT NULL,
            extra      TEXT
        )""",
        f"""INSERT INTO messages_5
        SELECT sessions_5.sid * {SEQ_SPAN} + seq, {PACKED_ID}(messages.id), kind, {_UTC_AS_Z}, body, extra
        FROM messages JOIN sessions_5
            ON sessions_5.tenant = messages.tenant AND sessions_5.id = {PACKED_ID}(messages.session_id)
        ORDER BY 1""",
        """CREATE TABLE turn_leases_5 (
            tenant          TEXT    NOT NULL,
            session_id      TEXT    NOT NULL,
            holder          TEXT,
            expires_us      INTEGER NOT NULL,
            waiter          TEXT,
            waiter_until_us INTEGER NOT NULL,
            PRIMARY KEY (tenant, session_id),
            FOREIGN KEY (tenant, session_id) REFERENCES sessions_5 (tenant, id) ON DELETE CASCADE
        ) WITHOUT ROWID""",
        # a lease whose session is gone (deleted with foreign keys off) is left behind
        f"""INSERT INTO turn_leases_5
        SELECT tenant, {PACKED_ID}(session_id), holder, expires_us, waiter, waiter_until_us FROM turn_leases
        WHERE (tenant, {PACKED_ID}(session_id)) IN (SELECT tenant, id FROM sessions_5)""",
        # children first: with foreign keys on, dropping a parent deletes what refers to it
        "DROP TABLE messages",
        "DROP TABLE turn_leases",
        "DROP TABLE sessions",
        "ALTER TABLE sessions_5 RENAME TO sessions",  # also renames what refers to it
        "ALTER TABLE messages_5 RENAME TO messages",
        "ALTER TABLE turn_leases_5 RENAME TO turn_leases",
        # a listing by user (user_id = ?) can use it: the planner knows that implies NOT NULL
        "CREATE INDEX sessions_by_user ON sessions (tenant, user_id, updated_us, id) WHERE user_id IS NOT NULL",
        "CREATE INDEX sessions_by_status ON sessions (tenant, status, updated_us, id)",
        # changes() is the count of the trigger's own last statement; a key that is no
        # session's (sid 0) changes none
        f"""CREATE TRIGGER messages_appended BEFORE INSERT ON messages
        BEGIN
            UPDATE sessions SET message_count = NEW.key % {SEQ_SPAN}, updated_us = max(updated_us + 1, {NOW_US})
            WHERE sid = NEW.key / {SEQ_SPAN} AND message_count = NEW.key % {SEQ_SPAN} - 1;
            SELECT RAISE(ABORT, '{SEQ_DOES_NOT_FOLLOW_ON}') WHERE changes() = 0;
            UPDATE sessions SET
                input_tokens = input_tokens + (NEW.extra ->> '$.usage[0]'),
                output_tokens = output_tokens + (NEW.extra ->> '$.usage[1]'),
                cached_tokens = cached_tokens + (NEW.extra ->> '$.usage[2]'),
                cost = CASE WHEN NEW.extra ->> '$.usage[3]' IS NULL THEN cost
                            ELSE coalesce(cost, 0) + (NEW.extra ->> '$.usage[3]') END
            WHERE NEW.extra ->> '$.usage' IS NOT NULL AND sid = NEW.key / {SEQ_SPAN};
        END""",
        # the zstd dictionaries that compressed bodies name ([storage] compression = "zstd")
        # newest: highest n; `messages`: how many the database had when it was trained
        "CREATE TABLE zstd_dictionaries (n INTEGER PRIMARY KEY, dictionary BLOB NOT NULL, messages INTEGER NOT NULL)",
        f"""CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
        BEGIN
            DELETE FROM messages WHERE key > OLD.sid * {SEQ_SPAN} AND key < (OLD.sid + 1) * {SEQ_SPAN};
        END""",
    ),
    # 6: edits of a history (Storage.replace_messages) keep what they replaced: a revision
    # per edit, its messages as one JSON array (threadline.plugin.dump of each), read only
    # when asked for. Deleting a session deletes its revisions.
    (
        """CREATE TABLE revisions (
            sid        INTEGER NOT NULL,
            number     INTEGER NOT NULL,
            after_seq  INTEGER NOT NULL,
            added      INTEGER NOT NULL,
            created_us INTEGER NOT NULL,
            replaced   TEXT    NOT NULL,
            PRIMARY KEY (sid, number)
        ) WITHOUT ROWID""",
        "DROP TRIGGER sessions_deleted",
        f"""CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
        BEGIN
            DELETE FROM messages WHERE key > OLD.sid * {SEQ_SPAN} AND key < (OLD.sid + 1) * {SEQ_SPAN};
            DELETE FROM revisions WHERE sid = OLD.sid;
        END""",
    ),
    # 7: full-text search (Storage.search_messages). An FTS5 table whose rowid is the message's
    # key holds the text it is searched by (threadline.search.message_text); the table keeps
    # its own copy of the text, so snippet() works and a row goes by its rowid. An append only
    # notes the new key in search_pending, by trigger, in its own statement: indexing a row
    # in a transaction of its own costs SQLite about 90 µs (a new index segment), a
    # 20,000-row batch about 5 µs a row; a search indexes what is pending first, in one
    # transaction (INDEX_PENDING), so it always sees every message. A deleted message (an edit,
    # a deleted session or user) leaves both tables by trigger, in its own statement. A body of
    # plain text is its own text, in SQL; parts and compressed bodies go through the function
    # the writer registers. The messages already stored are indexed now.
    (
        "CREATE VIRTUAL TABLE message_search USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')",
        "CREATE TABLE search_pending (key INTEGER PRIMARY KEY)",
        f"INSERT INTO message_search (rowid, text) SELECT key, {_searched('')} FROM messages",
        """CREATE TRIGGER messages_searchable AFTER INSERT ON messages
        BEGIN
            INSERT INTO search_pending (key) VALUES (NEW.key);
        END""",
        """CREATE TRIGGER messages_unsearchable AFTER DELETE ON messages
        BEGIN
            DELETE FROM message_search WHERE rowid = OLD.key;
            DELETE FROM search_pending WHERE key = OLD.key;
        END""",
    ),
)
#: what a search runs first, on the writer: index the messages appended since the last
INDEX_PENDING: Final = (
    f"""INSERT INTO message_search (rowid, text)
    SELECT key, {_searched("")} FROM messages WHERE key IN (SELECT key FROM search_pending)""",
    "DELETE FROM search_pending",
)
LATEST: Final = len(MIGRATIONS)
REVISIONS_FROM: Final = 6  # the first schema that keeps revisions
SEARCH_FROM: Final = 7  # the first schema with the search index
READABLE_FROM: Final = 5  # the oldest schema a read-only storage reads as it is


def packed_id(given: str) -> str | bytes:
    """A session or message id as schema 5 stores it: 32 lowercase hex digits (threadline's own
    ids) as their 16 bytes, any other id as it is. ``bytes.hex()`` gives it back. Sessions
    with the same activity time list in the order of their stored ids: each form in its own
    order, every id of 32 hex digits after (in descending order, before) the others."""
    if len(given) == 32:
        try:
            packed = bytes.fromhex(given)
        except ValueError:
            return given
        if packed.hex() == given:
            return packed
    return given


def search_text(unpack: Callable[[bytes], str]) -> Callable[[int, str | bytes], str]:
    """The SQL function :data:`SEARCH_TEXT`: a stored message's text to search, from its ``kind``
    and ``body`` (``unpack`` reads a compressed body); ``""`` for a body it cannot read, which
    is then not found by a search rather than failing the write."""

    def text(kind: int, body: str | bytes) -> str:
        try:
            if isinstance(body, bytes):
                body = unpack(body)
            return message_text(load_parts(body)) if kind & 1 else body
        except Exception:
            return ""

    return text


def created_us(created_at: str) -> int | None:
    """The SQL function :data:`CREATED_US`: a stored message time in µs since the epoch."""
    try:
        moment = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        return None
    return (moment - EPOCH) // timedelta(microseconds=1)


async def register_search_functions(db: aiosqlite.Connection, unpack: Callable[[bytes], str]) -> None:
    """Give the writer what the search index's triggers call (:data:`SEARCH_TEXT`)."""
    await db.create_function(SEARCH_TEXT, 2, search_text(unpack), deterministic=True)


async def current_version(db: aiosqlite.Connection) -> int:
    rows = await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    if not list(rows):
        return 0
    (row,) = await db.execute_fetchall("SELECT version FROM schema_version")
    return int(row[0])


async def readable_version(db: aiosqlite.Connection, path: str) -> int:
    """The schema version; ``DataFormatError`` if it is newer than this threadline-sqlite reads."""
    found = await current_version(db)
    if found > LATEST:
        raise DataFormatError(
            f"{path} has schema version {found}, newer than this threadline-sqlite reads ({LATEST}); "
            "upgrade threadline-sqlite to open it"
        )
    return found


async def migrate(db: aiosqlite.Connection, path: str, target: int = LATEST) -> int:
    """Bring the schema up to ``target`` in one transaction; return the version found.

    A database written by a newer threadline-sqlite is refused, untouched.
    """
    await db.create_function(PACKED_ID, 1, packed_id, deterministic=True)
    await db.execute("BEGIN IMMEDIATE")
    try:
        found = await readable_version(db, path)
        if found == 0:
            await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            await db.execute("INSERT INTO schema_version VALUES (0)")
        if found < SEARCH_FROM <= target:  # the backfill reads bodies compressed with any dictionary
            dictionaries = (
                [row[0] for row in await db.execute_fetchall("SELECT dictionary FROM zstd_dictionaries")]
                if found >= 5
                else []
            )
            await register_search_functions(db, Codec(dictionaries).unpack)
        for version in range(found, target):
            for statement in MIGRATIONS[version]:
                await db.execute(statement)
        await db.execute("UPDATE schema_version SET version = ?", (max(found, target),))
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    return found
