"""The database schema and its forward migrations, run when a storage opens."""

from __future__ import annotations

from typing import Final

import aiosqlite

from threadline.plugin import DataFormatError, MessageStatus, Role

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


# Each entry moves the schema from version i to i + 1: its statements run in one
# transaction. Never edit a released entry: add one.
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
)
LATEST: Final = len(MIGRATIONS)
READABLE_FROM: Final = 3  # the oldest schema a read-only storage reads as it is (4 added a write-side table)
NOW_US: Final = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"  # SQLite's clock, in µs


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
    await db.execute("BEGIN IMMEDIATE")
    try:
        found = await readable_version(db, path)
        if found == 0:
            await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            await db.execute("INSERT INTO schema_version VALUES (0)")
        for version in range(found, target):
            for statement in MIGRATIONS[version]:
                await db.execute(statement)
        await db.execute("UPDATE schema_version SET version = ?", (max(found, target),))
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    return found
