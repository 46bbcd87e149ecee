"""The tables and their forward migrations, run when a storage opens: each in one
transaction, under an advisory lock, so that two processes opening at once migrate once."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

from threadline.plugin import DataFormatError

if TYPE_CHECKING:
    import asyncpg

# Each entry moves the schema from version i to i + 1; ``{s}`` is the schema's name, quoted, and
# ``{c}`` its events channel (:func:`events_channel`). Never edit a released entry: add one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: sessions, one row per message, turn leases. A session's counts and token totals are
    # columns the append keeps; the record's other fields are its JSON, which PostgreSQL
    # never looks inside. A message's rare fields (error, provider, model, usage,
    # metadata) are one JSONB value, NULL for most rows.
    (
        """CREATE TABLE {s}.sessions (
            tenant        text             NOT NULL,
            id            text             NOT NULL,
            user_id       text,
            status        text             NOT NULL,
            updated_at    timestamptz      NOT NULL,
            version       integer          NOT NULL,
            message_count integer          NOT NULL DEFAULT 0,
            input_tokens  bigint           NOT NULL DEFAULT 0,
            output_tokens bigint           NOT NULL DEFAULT 0,
            cached_tokens bigint           NOT NULL DEFAULT 0,
            cost          double precision,
            record        text             NOT NULL,
            PRIMARY KEY (tenant, id)
        )""",
        # each listing filter and cursor page is a seek on one of these
        "CREATE INDEX sessions_by_activity ON {s}.sessions (tenant, updated_at DESC, id DESC)",
        "CREATE INDEX sessions_by_user ON {s}.sessions (tenant, user_id, updated_at DESC, id DESC)",
        "CREATE INDEX sessions_by_status ON {s}.sessions (tenant, status, updated_at DESC, id DESC)",
        """CREATE TABLE {s}.messages (
            tenant     text        NOT NULL,
            session_id text        NOT NULL,
            seq        integer     NOT NULL,
            id         text        NOT NULL,
            role       text        NOT NULL,
            status     text        NOT NULL,
            created_at timestamptz NOT NULL,
            text       text,
            parts      text,
            extra      jsonb,
            PRIMARY KEY (tenant, session_id, seq),
            FOREIGN KEY (tenant, session_id) REFERENCES {s}.sessions (tenant, id) ON DELETE CASCADE
        )""",
        """CREATE TABLE {s}.turn_leases (
            tenant       text             NOT NULL,
            session_id   text             NOT NULL,
            holder       text,
            until        double precision NOT NULL DEFAULT 0,
            waiter       text,
            waiter_until double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant, session_id),
            FOREIGN KEY (tenant, session_id) REFERENCES {s}.sessions (tenant, id) ON DELETE CASCADE
        )""",
    ),
    # 2: a revision of each session's messages, which every status change raises, for the
    # decoded-history cache: a history read at revision R with N messages is still right
    # while the session is at R (only messages after N are new). It starts at random, so a
    # session deleted and made again under its id is never mistaken for the one before.
    (
        "ALTER TABLE {s}.sessions ADD COLUMN messages_rev bigint NOT NULL "
        "DEFAULT floor(random() * 1000000000000)::bigint",
    ),
    # 3: a message's rare fields are JSON text, as its parts are: JSONB cannot hold a NUL
    # character or a lone surrogate, which a pasted text or a tool's output may have
    ("ALTER TABLE {s}.messages ALTER COLUMN extra TYPE text USING extra::text",),
    # 4: lifecycle events across processes: each change to a session, or to a message's
    # status, NOTIFYs the schema's channel ({c}) with a StorageEvent's JSON when the writing
    # connection has threadline.notify on (the notify setting). NOTIFY is sent at commit,
    # and not at all on a rollback; one too long for NOTIFY (8,000 bytes) is not sent.
    (
        """CREATE FUNCTION {s}.notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            event text;
        BEGIN
            IF TG_TABLE_NAME = 'messages' THEN
                event := json_build_object('kind', 'message_status', 'tenant', NEW.tenant,
                    'session_id', NEW.session_id, 'seq', NEW.seq);
            ELSIF TG_OP = 'INSERT' THEN
                event := json_build_object('kind', 'created', 'tenant', NEW.tenant, 'session_id', NEW.id,
                    'message_count', NEW.message_count, 'status', NEW.status);
            ELSIF TG_OP = 'DELETE' THEN
                event := json_build_object('kind', 'deleted', 'tenant', OLD.tenant, 'session_id', OLD.id);
            ELSIF NEW.message_count <> OLD.message_count THEN
                event := json_build_object('kind', 'appended', 'tenant', NEW.tenant, 'session_id', NEW.id,
                    'message_count', NEW.message_count);
            ELSIF NEW.version <> OLD.version THEN
                event := json_build_object('kind', 'updated', 'tenant', NEW.tenant, 'session_id', NEW.id,
                    'status', NEW.status);
            ELSE
                RETURN NULL;  -- a revision moved with a message's status: that message's event says it
            END IF;
            IF octet_length(event) < 8000 THEN
                PERFORM pg_notify(TG_ARGV[0], event);
            END IF;
            RETURN NULL;
        END
        $$""",
        # the WHEN spares a connection with notify off the function call
        "CREATE TRIGGER sessions_notify AFTER INSERT OR UPDATE OR DELETE ON {s}.sessions FOR EACH ROW "
        "WHEN (current_setting('threadline.notify', true) = 'on') EXECUTE FUNCTION {s}.notify_change('{c}')",
        "CREATE TRIGGER messages_notify AFTER UPDATE OF status ON {s}.messages FOR EACH ROW "
        "WHEN (current_setting('threadline.notify', true) = 'on') EXECUTE FUNCTION {s}.notify_change('{c}')",
    ),
    # 5: edits of a history (Storage.replace_messages) keep what they replaced: a revision
    # per edit, its messages as one JSON array (threadline.plugin.dump of each). An edit
    # NOTIFYs 'replaced', from its revision's row; the session row it changes says nothing.
    (
        """CREATE TABLE {s}.revisions (
            tenant     text        NOT NULL,
            session_id text        NOT NULL,
            number     integer     NOT NULL,
            after_seq  integer     NOT NULL,
            added      integer     NOT NULL,
            created_at timestamptz NOT NULL,
            replaced   text        NOT NULL,
            PRIMARY KEY (tenant, session_id, number),
            FOREIGN KEY (tenant, session_id) REFERENCES {s}.sessions (tenant, id) ON DELETE CASCADE
        )""",
        """CREATE OR REPLACE FUNCTION {s}.notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            event text;
        BEGIN
            IF TG_TABLE_NAME = 'messages' THEN
                event := json_build_object('kind', 'message_status', 'tenant', NEW.tenant,
                    'session_id', NEW.session_id, 'seq', NEW.seq);
            ELSIF TG_TABLE_NAME = 'revisions' THEN
                event := json_build_object('kind', 'replaced', 'tenant', NEW.tenant,
                    'session_id', NEW.session_id, 'message_count', NEW.after_seq + NEW.added);
            ELSIF TG_OP = 'INSERT' THEN
                event := json_build_object('kind', 'created', 'tenant', NEW.tenant, 'session_id', NEW.id,
                    'message_count', NEW.message_count, 'status', NEW.status);
            ELSIF TG_OP = 'DELETE' THEN
                event := json_build_object('kind', 'deleted', 'tenant', OLD.tenant, 'session_id', OLD.id);
            ELSIF NEW.messages_rev <> OLD.messages_rev THEN
                RETURN NULL;  -- a message's status or an edit: their own rows' events say it
            ELSIF NEW.message_count <> OLD.message_count THEN
                event := json_build_object('kind', 'appended', 'tenant', NEW.tenant, 'session_id', NEW.id,
                    'message_count', NEW.message_count);
            ELSIF NEW.version <> OLD.version THEN
                event := json_build_object('kind', 'updated', 'tenant', NEW.tenant, 'session_id', NEW.id,
                    'status', NEW.status);
            ELSE
                RETURN NULL;
            END IF;
            IF octet_length(event) < 8000 THEN
                PERFORM pg_notify(TG_ARGV[0], event);
            END IF;
            RETURN NULL;
        END
        $$""",
        "CREATE TRIGGER revisions_notify AFTER INSERT ON {s}.revisions FOR EACH ROW "
        "WHEN (current_setting('threadline.notify', true) = 'on') EXECUTE FUNCTION {s}.notify_change('{c}')",
    ),
)
VERSION: Final = len(MIGRATIONS)


def events_channel(schema: str) -> str:
    """The channel a schema's changes are NOTIFYed on: ``<schema>_events``, the schema's
    name shortened, with a hash of it, when that would pass PostgreSQL's 63 bytes."""
    channel = f"{schema}_events"
    if len(channel) <= 63:
        return channel
    return f"{schema[:40]}_{hashlib.sha256(schema.encode()).hexdigest()[:12]}_events"


async def migrate(connection: asyncpg.Connection, schema: str) -> int:
    """Bring ``schema`` to :data:`VERSION`, making it when missing; return the version it
    was at. A schema of a newer threadline-postgres is refused untouched."""
    quoted = f'"{schema}"'  # a plain name (checked), quoted: a keyword is a name too
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"threadline_postgres:{schema}")
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await connection.execute(f"CREATE TABLE IF NOT EXISTS {quoted}.schema_version (version integer NOT NULL)")
        found = await connection.fetchval(f"SELECT max(version) FROM {quoted}.schema_version") or 0
        if found > VERSION:
            raise DataFormatError(
                f"schema {schema!r} is at version {found}, newer than this threadline-postgres knows ({VERSION}); "
                "upgrade threadline-postgres, or use another schema"
            )
        for version in range(found, VERSION):
            for statement in MIGRATIONS[version]:
                await connection.execute(statement.format(s=quoted, c=events_channel(schema)))
        if found < VERSION:
            await connection.execute(f"DELETE FROM {quoted}.schema_version")
            await connection.execute(f"INSERT INTO {quoted}.schema_version VALUES ($1)", VERSION)
    return int(found)
