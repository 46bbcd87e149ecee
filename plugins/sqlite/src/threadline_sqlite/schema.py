"""The database schema and its forward migrations, run when a storage opens."""

from __future__ import annotations

from typing import Final

import aiosqlite

from threadline.errors import DataFormatError

# Each entry moves the schema from version i to i + 1. Never edit a released entry: add one.
MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: sessions and messages
    """
    CREATE TABLE sessions (
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
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_user ON sessions (tenant, user_id, updated_us, id);
    CREATE TABLE messages (
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
    ) WITHOUT ROWID;
    """,
    # 2: cached tokens and cost, kept per message and summed per session; listing by
    # status and by activity without a scan
    """
    ALTER TABLE sessions ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN cost REAL;
    ALTER TABLE messages ADD COLUMN cached_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN cost REAL;
    CREATE INDEX sessions_by_status ON sessions (tenant, status, updated_us, id);
    CREATE INDEX sessions_by_activity ON sessions (tenant, updated_us, id);
    """,
)
LATEST: Final = len(MIGRATIONS)


async def current_version(db: aiosqlite.Connection) -> int:
    rows = await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    if not list(rows):
        return 0
    (row,) = await db.execute_fetchall("SELECT version FROM schema_version")
    return int(row[0])


async def migrate(db: aiosqlite.Connection, path: str, target: int = LATEST) -> int:
    """Bring the schema up to ``target`` in one transaction; return the version found.

    A database written by a newer threadline-sqlite is refused, untouched.
    """
    await db.execute("BEGIN IMMEDIATE")
    try:
        found = await current_version(db)
        if found > LATEST:
            raise DataFormatError(
                f"{path} has schema version {found}, newer than this threadline-sqlite reads ({LATEST}); "
                "upgrade threadline-sqlite to open it"
            )
        if found == 0:
            await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            await db.execute("INSERT INTO schema_version VALUES (0)")
        for version in range(found, target):
            for statement in _statements(MIGRATIONS[version]):
                await db.execute(statement)
        await db.execute("UPDATE schema_version SET version = ?", (max(found, target),))
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    return found


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
