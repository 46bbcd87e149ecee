"""What threadline-postgres adds to the contract: the password never shown, migrations (once
when two processes open at once; a newer schema refused untouched), damaged rows named,
connections killed under it, and a conversation through the SessionManager."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import attrs
import pytest

import threadline
from threadline.plugin import (
    DataFormatError,
    Message,
    Role,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    StorageUnavailable,
    Text,
)
from threadline.testing.storage_contract import make_messages, make_session
from threadline_postgres import PostgresConfig
from threadline_postgres.schema import MIGRATIONS, VERSION
from threadline_postgres.storage import PostgresStorage


@pytest.mark.parametrize("password", ["p@ss/w#rd?x", "pa ss:w0rd", "Xk9/a+b=="])
async def test_a_password_that_is_not_percent_encoded_is_still_never_shown(password: str) -> None:
    config = PostgresConfig(dsn=f"postgresql://ann:{password}@127.0.0.1:1/threadline")
    storage = PostgresStorage(config)
    assert password not in repr(config) and password not in repr(storage)
    with pytest.raises(StorageUnavailable) as caught:
        await storage.open()
    shown = str(caught.value)
    assert not any(piece in shown for piece in password.replace("/", " ").replace(":", " ").split() if len(piece) > 2)
    assert "ann:***@" in shown


def test_a_dsn_that_is_not_a_url_is_a_config_error() -> None:
    config = threadline.Config.from_dict({"storage": {"backend": "postgres", "dsn": "host=db password=secret"}})
    with pytest.raises(threadline.ConfigError, match=r"dsn must be a postgresql://user:password@host") as caught:
        threadline.SessionManager(config)
    assert "secret" not in str(caught.value)


async def test_the_password_is_never_shown() -> None:
    config = PostgresConfig(dsn="postgresql://ann:s3cret-pw@127.0.0.1:1/threadline")
    storage = PostgresStorage(config)
    assert "s3cret-pw" not in repr(config) and "s3cret-pw" not in repr(storage)
    assert "postgresql://ann:***@127.0.0.1:1/threadline" in repr(config)
    with pytest.raises(StorageUnavailable) as caught:
        await storage.open()
    assert "s3cret-pw" not in str(caught.value) and "ann:***@127.0.0.1:1" in str(caught.value)


@pytest.mark.parametrize("query", ["?password=s3cret-pw", "?sslmode=disable&password=s3cret-pw&user=ann"])
async def test_a_password_given_as_a_parameter_is_never_shown(query: str) -> None:
    storage = PostgresStorage(PostgresConfig(dsn=f"postgresql://ann@127.0.0.1:1/threadline{query}"))
    with pytest.raises(StorageUnavailable) as caught:
        await storage.open()
    assert "s3cret-pw" not in repr(storage) + str(caught.value) and "password=***" in str(caught.value)


async def test_a_dsn_setting_the_server_refuses_is_storage_unavailable(postgres_dsn: str, schema: str) -> None:
    storage = PostgresStorage(PostgresConfig(dsn=f"{postgres_dsn}?no_such_setting=1", schema=schema))
    with pytest.raises(StorageUnavailable, match=r"could not open schema .*: unrecognized configuration parameter"):
        await storage.open()


def test_a_schema_that_is_not_a_plain_name_is_a_config_error() -> None:
    config = threadline.Config.from_dict({"storage": {"backend": "postgres", "schema": "a; DROP TABLE x"}})
    with pytest.raises(threadline.ConfigError, match=r"storage: schema 'a; DROP TABLE x' is not a plain name"):
        threadline.SessionManager(config)


async def test_two_storages_opening_at_once_migrate_once(postgres_dsn: str, schema: str) -> None:
    storages = [PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema)) for _ in range(4)]
    await asyncio.gather(*(storage.open() for storage in storages))
    try:
        versions = await storages[0].pool.fetch(f"SELECT version FROM {schema}.schema_version")
        assert [row["version"] for row in versions] == [VERSION]
    finally:
        await asyncio.gather(*(storage.close() for storage in storages))


async def test_a_newer_schema_is_refused_untouched(postgres_dsn: str, schema: str) -> None:
    storage = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema))
    await storage.open()
    session = await storage.create_session(make_session())
    await storage.pool.execute(f"UPDATE {schema}.schema_version SET version = {VERSION + 1}")
    await storage.close()
    with pytest.raises(DataFormatError, match=rf"at version {VERSION + 1}, newer than this threadline-postgres knows"):
        await storage.open()
    connection = await asyncpg.connect(postgres_dsn)
    try:
        assert await connection.fetchval(f"SELECT count(*) FROM {schema}.sessions WHERE id = $1", session.id) == 1
    finally:
        await connection.close()


async def test_a_damaged_row_is_named(storage: PostgresStorage, schema: str) -> None:
    session = await storage.create_session(make_session())
    await storage.append_messages(session.tenant, session.id, make_messages(session, ["a", "b"]))
    await storage.pool.execute(f"UPDATE {schema}.sessions SET record = '{{not json' WHERE id = $1", session.id)
    await storage.pool.execute(f"UPDATE {schema}.messages SET parts = $1, text = NULL", '[{"type": 7}]')
    with pytest.raises(DataFormatError, match=rf"session {session.id!r} of tenant 'default' is damaged"):
        await storage.get_session(session.tenant, session.id)
    with pytest.raises(DataFormatError, match=rf"a message of session {session.id!r} is damaged"):
        await storage.get_messages(session.tenant, session.id)


async def test_killed_connections_fail_only_while_gone_and_lose_nothing(
    postgres_dsn: str, new_schema: Callable[[], str]
) -> None:
    schema = new_schema()
    storage = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema, min_size=4, max_size=4))
    await storage.open()
    try:
        session = await storage.create_session(make_session())
        acknowledged: list[int] = []
        failures = 0

        async def write(seq: int) -> None:
            nonlocal failures
            messages = make_messages(session, [f"m{seq}"], start=seq)
            for _ in range(20):
                try:
                    await storage.append_messages(session.tenant, session.id, messages)
                except StorageUnavailable:
                    failures += 1
                    await asyncio.sleep(0.01)
                    continue
                acknowledged.append(seq)
                return

        admin = await asyncpg.connect(postgres_dsn)
        try:
            for seq in range(1, 61):
                if seq % 20 == 10:  # every backend of this storage's pool, gone at once
                    await admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                        f"threadline {schema}",
                    )
                await write(seq)
        finally:
            await admin.close()
        stored = await storage.get_messages(session.tenant, session.id)
    finally:
        await storage.close()
    assert acknowledged == list(range(1, 61))  # each write went through, at most after a retry
    assert [m.text for m in stored] == [f"m{seq}" for seq in range(1, 61)]
    assert failures <= 3 * 4  # only while the killed connections were found out


async def test_a_conversation_through_the_manager_is_kept(postgres_dsn: str, schema: str) -> None:
    config = threadline.Config.from_dict(
        {"storage": {"backend": "postgres", "dsn": postgres_dsn, "schema": schema}, "defaults": {"provider": "echo"}}
    )
    async with threadline.SessionManager(config) as manager:
        session = await manager.create_session(user_id="ann")
        await session.send("hello")
        async for _ in session.stream("and again"):
            pass
    async with threadline.SessionManager(config) as manager:
        again = await manager.get_session(session.id)
        history = await again.history()
        page = await manager.list_sessions(user_id="ann")
    assert [m.text for m in history] == ["hello", "hello", "and again", "and again"]
    assert [s.id for s in page.items] == [session.id] and page.items[0].message_count == 4


LISTINGS = {
    "tenant": ({}, "sessions_by_activity"),
    "user": ({"user_id": "u8"}, "sessions_by_user"),
    "status": ({"status": SessionStatus.ARCHIVED}, "sessions_by_status"),
    "user and status": ({"user_id": "u8", "status": SessionStatus.ACTIVE}, "sessions_by_user"),
    "updated after": ({"updated_after": datetime(2026, 1, 1, tzinfo=UTC)}, "sessions_by_activity"),
}


@pytest.mark.parametrize("paged", [False, True], ids=["first page", "next page"])
@pytest.mark.parametrize("name", list(LISTINGS))
async def test_every_listing_walks_an_index_in_order(
    storage: PostgresStorage, schema: str, name: str, paged: bool
) -> None:
    """On 5,000 sessions of two tenants (analyzed, so the planner knows), each listing's plan
    is one scan of the index for its filter, in the listing's order: no sort, no table scan."""
    await _sessions(storage, schema, 5_000)
    fields, index = LISTINGS[name]
    query = SessionQuery(tenant="t0", limit=20, **fields)  # type: ignore[arg-type]
    if paged:
        page = await storage.list_sessions(query)
        assert page.next_cursor is not None
        query = attrs.evolve(query, cursor=page.next_cursor)
    sql, parameters = storage.listing(query)
    plan = str(await storage.pool.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *parameters))
    assert f'"Index Name": "{index}"' in plan and '"Sort"' not in plan and '"Seq Scan"' not in plan, plan


async def _sessions(storage: PostgresStorage, schema: str, count: int) -> None:
    records = [
        make_session(
            tenant=f"t{n % 2}",
            user_id=f"u{n % 50}",
            status=SessionStatus.ARCHIVED if n % 10 == 0 else SessionStatus.ACTIVE,
            updated_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        )
        for n in range(count)
    ]

    async def replay() -> AsyncIterator[SessionRecord]:
        for record in records:
            yield record

    await storage.import_records(replay())
    await storage.pool.execute(f"ANALYZE {schema}.sessions")


async def test_a_schema_of_the_first_version_is_migrated_and_keeps_its_sessions(postgres_dsn: str, schema: str) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        await connection.execute(f"CREATE TABLE {schema}.schema_version (version integer NOT NULL)")
        for statement in MIGRATIONS[0]:
            await connection.execute(statement.format(s=schema))
        await connection.execute(f"INSERT INTO {schema}.schema_version VALUES (1)")
    finally:
        await connection.close()
    old = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema))
    old._pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1)  # the v1 tables, as they were
    session = await old.create_session(make_session())
    await old.close()

    storage = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema))
    await storage.open()
    try:
        assert await storage.pool.fetchval(f"SELECT version FROM {schema}.schema_version") == VERSION
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["a", "b"]))
        assert [m.text for m in await storage.get_messages(session.tenant, session.id)] == ["a", "b"]
        await storage.set_message_status(session.tenant, session.id, 1, "failed", "no reply")
        (first, _) = await storage.get_messages(session.tenant, session.id)  # the cached history, renewed
        assert first.status.value == "failed" and first.error == "no reply"
    finally:
        await storage.close()


async def test_nul_characters_and_lone_surrogates_are_stored_as_they_are(storage: PostgresStorage) -> None:
    odd = "pasted \x00 from a file \udc80 and on"
    session = await storage.create_session(make_session(title=odd, metadata={"note": odd}))
    messages = [
        Message(session.id, 1, Role.USER, (Text(odd),), metadata={"raw": odd}),
        Message(session.id, 2, Role.ASSISTANT, (Text("ok"), Text(odd)), error=odd),
    ]
    await storage.append_messages(session.tenant, session.id, messages)
    await storage.set_message_status(session.tenant, session.id, 1, "failed", odd)
    stored = await storage.get_messages(session.tenant, session.id)
    assert stored[0].text == odd and stored[0].metadata == {"raw": odd} and stored[0].error == odd
    assert stored[1] == messages[1]
    assert (await storage.get_session(session.tenant, session.id)).title == odd


@pytest.mark.parametrize("name", ["user", "select", "order"])
async def test_a_schema_named_like_a_keyword_works(postgres_dsn: str, new_schema: Callable[[], str], name: str) -> None:
    schema = name
    connection = await asyncpg.connect(postgres_dsn)
    try:
        if await connection.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema):
            pytest.skip(f"a schema {schema!r} exists on this server already; not ours to use")
    finally:
        await connection.close()
    storage = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema))
    await storage.open()
    try:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["a"]))
        assert len(await storage.get_messages(session.tenant, session.id)) == 1
    finally:
        await storage.close()
        connection = await asyncpg.connect(postgres_dsn)
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


def test_a_schema_named_like_a_system_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not starting with a digit or pg_"):
        PostgresConfig(schema="pg_threadline")


async def test_a_statement_past_the_timeout_is_storage_unavailable(postgres_dsn: str, schema: str) -> None:
    storage = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema, statement_timeout=0.2))
    await storage.open()
    blocker = await asyncpg.connect(postgres_dsn)
    try:
        session = await storage.create_session(make_session())
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(f"SELECT 1 FROM {schema}.sessions WHERE id = $1 FOR UPDATE", session.id)
        with pytest.raises(StorageUnavailable, match=r"stopped a statement that ran past statement_timeout \(0.2 s\)"):
            await storage.update_session(attrs.evolve(session, title="waits for the lock"))
        await transaction.rollback()
        assert (await storage.update_session(attrs.evolve(session, title="now"))).title == "now"
    finally:
        await blocker.close()
        await storage.close()


async def test_damaged_rows_are_named_and_a_listing_leaves_them_out(storage: PostgresStorage, schema: str) -> None:
    kept, damaged, moved = [await storage.create_session(make_session()) for _ in range(3)]
    await storage.append_messages(damaged.tenant, damaged.id, make_messages(damaged, ["a"]))
    await storage.pool.execute(f"UPDATE {schema}.messages SET text = NULL WHERE session_id = $1", damaged.id)
    await storage.pool.execute(
        f"UPDATE {schema}.sessions SET record = (SELECT record FROM {schema}.sessions WHERE id = $1) WHERE id = $2",
        kept.id,
        moved.id,
    )  # a record that names another session
    with pytest.raises(DataFormatError, match=r"a message of session .* is damaged.*neither text nor parts"):
        await storage.get_messages(damaged.tenant, damaged.id)
    with pytest.raises(DataFormatError, match=rf"session {moved.id!r} of tenant 'default' is damaged"):
        await storage.get_session(moved.tenant, moved.id)
    listed = await storage.list_sessions(SessionQuery(limit=1))  # the damaged one logged by threadline.storage
    every = [listed.items]
    while listed.next_cursor:
        listed = await storage.list_sessions(SessionQuery(limit=1, cursor=listed.next_cursor))
        every.append(listed.items)
    assert sorted(s.id for items in every for s in items) == sorted([kept.id, damaged.id])


async def test_a_cancelled_write_that_then_fails_raises_the_cancellation(storage: PostgresStorage, schema: str) -> None:
    session = await storage.create_session(make_session())
    blocker = await asyncpg.connect(storage.config.dsn)
    try:
        deleting = blocker.transaction()
        await deleting.start()
        await blocker.execute(f"SELECT 1 FROM {schema}.sessions WHERE id = $1 FOR UPDATE", session.id)
        append = asyncio.ensure_future(storage.append_messages("default", session.id, make_messages(session, ["q"])))
        await asyncio.sleep(0.2)
        append.cancel()
        await asyncio.sleep(0.1)
        assert not append.done()  # it waits for the write to be settled
        await blocker.execute(f"DELETE FROM {schema}.sessions WHERE id = $1", session.id)
        await deleting.commit()  # the append then finds no session: SessionNotFound, in its own task
        with pytest.raises(asyncio.CancelledError):
            await append
    finally:
        await blocker.close()
