"""Lifecycle events across processes: what one process changes, another hears, through
LISTEN/NOTIFY on the schema's channel."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import attrs
import pytest

import threadline
from threadline import SessionRecord, StorageEvent
from threadline.plugin import StorageConflict, StorageUnavailable
from threadline.testing.storage_contract import make_messages, make_session
from threadline_postgres import PostgresConfig
from threadline_postgres.schema import events_channel
from threadline_postgres.storage import PostgresStorage

#: a writer in a process of its own: every kind of change to one session, then another user's deletion
WRITER = """
import asyncio, sys
import attrs
from threadline import SessionRecord, SessionStatus
from threadline.testing.storage_contract import make_messages
from threadline_postgres import PostgresConfig
from threadline_postgres.storage import PostgresStorage

async def main(dsn, schema):
    storage = PostgresStorage(PostgresConfig(dsn=dsn, schema=schema, notify=True))
    await storage.open()
    session = await storage.create_session(SessionRecord(id="s1", tenant="acme", user_id="ann"))
    await storage.append_messages("acme", "s1", make_messages(session, ["q", "a"]))
    await storage.set_message_status("acme", "s1", 1, "failed", "timed out")
    await storage.replace_messages("acme", "s1", 1, [], count=2)
    stored = await storage.get_session("acme", "s1")
    await storage.update_session(attrs.evolve(stored, status=SessionStatus.ARCHIVED))
    await storage.delete_user("acme", "ann")
    await storage.close()

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture
async def storage(postgres_dsn: str, schema: str) -> AsyncIterator[PostgresStorage]:
    """A storage whose writes notify (``notify`` is off by default)."""
    storage = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=schema, notify=True))
    await storage.open()
    yield storage
    await storage.close()


async def first_events(events: AsyncIterator[StorageEvent], count: int) -> list[StorageEvent]:
    heard = []
    async for event in events:
        heard.append(event)
        if len(heard) == count:
            return heard
    raise AssertionError("the events ended")


async def listening(
    storage: PostgresStorage, tenant: str | None, count: int, events: AsyncIterator[StorageEvent] | None = None
) -> asyncio.Task[list[StorageEvent]]:
    """The first ``count`` events (of ``storage.events(tenant)`` unless given), once the
    listener has its LISTEN in place: NOTIFY reaches only who listens already."""
    listener = asyncio.create_task(first_events(events or storage.events(tenant), count))
    for _ in range(200):
        await asyncio.sleep(0.01)
        rows = await storage.pool.fetch(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%' AND state = 'idle'",
            f"threadline events {storage.config.schema}",
        )
        if rows:
            return listener
    raise AssertionError("the listener never listened")


async def test_another_process_hears_every_kind_of_change(storage: PostgresStorage, postgres_dsn: str) -> None:
    listener = await listening(storage, "acme", 6)
    writer = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", WRITER, postgres_dsn, storage.config.schema],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert writer.returncode == 0, writer.stderr
    heard = await asyncio.wait_for(listener, timeout=10)
    assert [(e.kind, e.message_count, e.status, e.seq) for e in heard] == [
        ("created", 0, "active", None),
        ("appended", 2, None, None),
        ("message_status", None, None, 1),
        ("replaced", 1, None, None),
        ("updated", None, "archived", None),
        ("deleted", None, None, None),  # by delete_user
    ]
    assert {(e.tenant, e.session_id) for e in heard} == {("acme", "s1")}


async def test_events_of_one_tenant_leave_out_the_others(storage: PostgresStorage) -> None:
    listener = await listening(storage, "mine", 2)
    await storage.create_session(SessionRecord(tenant="other", id="theirs"))
    await storage.create_session(SessionRecord(tenant="mine", id="mine"))
    await storage.delete_session("mine", "mine")
    heard = await asyncio.wait_for(listener, timeout=10)
    assert [(e.kind, e.tenant, e.session_id) for e in heard] == [
        ("created", "mine", "mine"),
        ("deleted", "mine", "mine"),
    ]


async def test_every_tenant_and_an_import_are_heard(storage: PostgresStorage) -> None:
    listener = await listening(storage, None, 2)
    imported = make_session(tenant="b")

    async def records() -> AsyncIterator[SessionRecord | threadline.Message]:
        for record in [imported, *make_messages(imported, ["q", "a"])]:
            yield record

    await storage.create_session(make_session(tenant="a"))
    await storage.import_records(records())
    heard = await asyncio.wait_for(listener, timeout=10)
    assert [(e.kind, e.tenant) for e in heard] == [("created", "a"), ("created", "b")]


async def test_a_write_that_is_refused_or_rolled_back_sends_nothing(storage: PostgresStorage) -> None:
    session = await storage.create_session(make_session())
    listener = await listening(storage, None, 1)
    with pytest.raises(StorageConflict):
        await storage.append_messages("default", session.id, make_messages(session, ["q"], start=5))
    with pytest.raises(StorageConflict):
        await storage.update_session(attrs.evolve(session, version=7))

    async def clashing() -> AsyncIterator[SessionRecord]:
        yield make_session()
        yield session  # exists already: the whole import rolls back

    with pytest.raises(StorageConflict):
        await storage.import_records(clashing())
    await storage.delete_session("default", session.id)
    assert [(e.kind, e.session_id) for e in await asyncio.wait_for(listener, timeout=10)] == [("deleted", session.id)]


async def test_a_writer_with_notify_off_sends_nothing(storage: PostgresStorage, postgres_dsn: str) -> None:
    quiet = PostgresStorage(PostgresConfig(dsn=postgres_dsn, schema=storage.config.schema))  # notify off
    await quiet.open()
    try:
        listener = await listening(storage, None, 1)
        await quiet.create_session(make_session(id="unheard"))
        await storage.create_session(make_session(id="heard"))
        assert [e.session_id for e in await asyncio.wait_for(listener, timeout=10)] == ["heard"]
    finally:
        await quiet.close()


async def test_a_notification_that_is_no_event_is_left_out(storage: PostgresStorage) -> None:
    listener = await listening(storage, None, 1)
    await storage.pool.execute("SELECT pg_notify($1, 'not an event')", storage.channel)
    await storage.pool.execute('SELECT pg_notify($1, \'{"kind": "exploded", "session_id": "x"}\')', storage.channel)
    await storage.create_session(make_session(id="after"))
    assert [e.session_id for e in await asyncio.wait_for(listener, timeout=10)] == ["after"]


async def test_a_lost_events_connection_is_storage_unavailable(storage: PostgresStorage) -> None:
    listener = await listening(storage, None, 1)
    await storage.pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        f"threadline events {storage.config.schema}",
    )
    with pytest.raises(StorageUnavailable, match="closed the events connection"):
        await asyncio.wait_for(listener, timeout=10)


async def test_the_manager_passes_the_events_on(postgres_dsn: str, schema: str) -> None:
    config = threadline.Config.from_dict(
        {"storage": {"backend": "postgres", "dsn": postgres_dsn, "schema": schema, "notify": True}}
    )
    async with threadline.SessionManager(config) as tl:
        assert isinstance(tl.storage, PostgresStorage)
        listener = await listening(tl.storage, None, 3, tl.events())
        session = await tl.create_session(user_id="ann")
        await session.send("hello")
        heard = await asyncio.wait_for(listener, timeout=10)
        assert [e.kind for e in heard] == ["created", "appended", "updated"]  # the first message titles it
        assert {(e.tenant, e.session_id) for e in heard} == {("default", session.id)}


def test_a_long_schema_name_gets_a_channel_postgres_takes() -> None:
    assert events_channel("threadline") == "threadline_events"
    long_one, other = "a" * 63, "a" * 62 + "b"
    assert len(events_channel(long_one)) <= 63 and events_channel(long_one) != events_channel(other)
