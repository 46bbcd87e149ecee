"""What threadline-redis promises beyond the storage contract: its keys, its errors, its secrets."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
import redis
from redis.crc import key_slot
from servers import start_server, stop

from threadline import (
    DeletedCounts,
    Message,
    Role,
    SessionNotFound,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    StorageEvent,
    StorageUnavailable,
    Text,
    Usage,
)
from threadline.plugin import DataFormatError, utcnow
from threadline_redis import RedisConfig
from threadline_redis.storage import SCHEMA_VERSION, RedisStorage


def keys_under(url: str, prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return sorted(client.scan_iter(match=f"{prefix}*", count=1000))
    finally:
        client.close()


def message(session: SessionRecord, seq: int, text: str = "hello") -> Message:
    return Message(session.id, seq, Role.USER if seq % 2 else Role.ASSISTANT, (Text(text),))


async def test_every_key_is_under_the_prefix_and_a_deleted_session_leaves_none(
    storage: RedisStorage, redis_url: str, prefix: str
) -> None:
    session = await storage.create_session(SessionRecord(user_id="ann"))
    await storage.append_messages("default", session.id, [message(session, 1), message(session, 2)])
    await storage.set_message_status("default", session.id, 1, "failed", "boom")
    assert await storage.take_turn("default", session.id, "me", 30)
    await storage.replace_messages("default", session.id, 1, [], count=2)  # a revision kept: e:ID
    written = keys_under(redis_url, prefix)
    assert len(written) > 5 and all(key.startswith(prefix.encode()) for key in written)
    await storage.delete_session("default", session.id)
    assert keys_under(redis_url, prefix) == [f"{prefix}schema".encode(), f"{prefix}{{default}}rv".encode()]


@pytest.mark.parametrize("tenant", ["default", "", "%", "a}b", "{x}", "100%", "c*?[d]", "ünï:cödé"])
async def test_all_keys_of_a_tenant_are_in_one_cluster_slot(
    storage: RedisStorage, redis_url: str, prefix: str, tenant: str
) -> None:
    sessions = [await storage.create_session(SessionRecord(tenant=tenant, user_id=f"u{n}")) for n in range(3)]
    for session in sessions:
        await storage.append_messages(tenant, session.id, [message(session, 1)])
        await storage.set_message_status(tenant, session.id, 1, "failed")
        await storage.take_turn(tenant, session.id, "me", 30)
        await storage.append_messages(tenant, session.id, [message(session, 2)])
        await storage.replace_messages(tenant, session.id, 1, [], count=2)
    tenant_keys = [key for key in keys_under(redis_url, prefix) if key != f"{prefix}schema".encode()]
    assert len(tenant_keys) == 3 * 5 + 2 + 3 + 1  # 5 per session; all, active; one per user; revisions
    assert len({key_slot(key) for key in tenant_keys}) == 1
    assert [r.tenant for r in await collect_sessions(storage)] == [tenant] * 3


async def collect_sessions(storage: RedisStorage) -> list[SessionRecord]:
    return [r async for r in storage.export_records(None) if isinstance(r, SessionRecord)]


async def test_tenants_with_any_characters_are_exported_and_kept_apart(storage: RedisStorage) -> None:
    tenants = ["a}b", "a", "a%7Db", "*", "{"]
    for tenant in tenants:
        await storage.create_session(SessionRecord(tenant=tenant, id="same"))
    assert sorted(r.tenant for r in await collect_sessions(storage)) == sorted(tenants)
    for tenant in tenants:
        assert [s.tenant for s in (await storage.list_sessions(SessionQuery(tenant=tenant))).items] == [tenant]


async def test_an_append_of_thousands_of_messages_is_stored_whole(storage: RedisStorage) -> None:
    session = await storage.create_session(SessionRecord())
    batch = [message(session, n, str(n)) for n in range(1, 10_002)]
    await storage.append_messages("default", session.id, batch)
    stored = await storage.get_messages("default", session.id)
    assert [m.text for m in stored] == [str(n) for n in range(1, 10_002)]
    assert (await storage.get_session("default", session.id)).message_count == 10_001


def test_the_password_is_never_shown() -> None:
    config = RedisConfig(url="redis://:sk-secret@127.0.0.1:1/0")
    assert "sk-secret" not in repr(config)
    assert "sk-secret" not in repr(RedisStorage(config))
    with pytest.raises(ValueError) as caught:
        RedisConfig(url="http://me:sk-secret@host/0")
    assert "sk-secret" not in str(caught.value) and "redis://" in str(caught.value)


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    storage = RedisStorage(RedisConfig(url="redis://me:sk-secret@127.0.0.1:1/0", socket_timeout=2))
    with pytest.raises(StorageUnavailable) as caught:
        await storage.open()
    assert str(caught.value).startswith("Redis at redis://127.0.0.1:1/0: ")
    assert "sk-secret" not in str(caught.value)


async def test_data_of_a_newer_key_layout_is_refused_and_left_alone(redis_url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    await client.set(f"{prefix}schema", SCHEMA_VERSION + 1)
    await client.aclose()
    storage = RedisStorage(RedisConfig(url=redis_url, prefix=prefix))
    with pytest.raises(StorageUnavailable, match=r"has key layout 3; this threadline-redis knows up to 2 \(upgrade"):
        await storage.open()
    assert keys_under(redis_url, prefix) == [f"{prefix}schema".encode()]


async def test_a_damaged_session_is_left_out_of_listings_and_named_when_read(
    storage: RedisStorage, redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = await storage.create_session(SessionRecord(id="good"))
    await storage.create_session(SessionRecord(id="bad"))
    client = redis.asyncio.Redis.from_url(redis_url)
    await client.hset(f"{prefix}{{default}}s:bad", "r", b"\xff not json")
    await client.aclose()
    assert (await storage.list_sessions(SessionQuery())).items == (good,)
    assert "damaged in Redis" in caplog.text
    with pytest.raises(DataFormatError, match=r"^session 'bad' of tenant 'default' is damaged in Redis: "):
        await storage.get_session("default", "bad")


async def test_two_storages_with_their_own_prefixes_do_not_see_each_other(
    storage: RedisStorage, redis_url: str, new_prefix: Callable[[], str]
) -> None:
    other = RedisStorage(RedisConfig(url=redis_url, prefix=new_prefix()))
    await other.open()
    try:
        await other.create_session(SessionRecord(id="theirs"))
        await storage.create_session(SessionRecord(id="mine"))
        assert [s.id for s in (await storage.list_sessions(SessionQuery())).items] == ["mine"]
        assert [s.id for s in (await other.list_sessions(SessionQuery())).items] == ["theirs"]
    finally:
        await other.close()


def test_a_chat_persists_and_another_process_lists_it(redis_url: str, prefix: str, tmp_path: Path) -> None:
    config = tmp_path / "threadline.toml"
    config.write_text(f'[storage]\nbackend = "redis"\nurl = "{redis_url}"\nprefix = "{prefix}"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}

    def threadline_command(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "threadline", "--config", str(config), *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=60)

    chat = threadline_command("chat", stdin="My name is Ann.\n")
    assert chat.returncode == 0, chat.stderr
    (session_id,) = re.findall(r"--session (\w+)", chat.stderr)
    listed = threadline_command("sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert session_id in listed.stdout and "My name is Ann." in listed.stdout and "2 msgs" in listed.stdout


async def test_scripts_are_loaded_again_after_the_server_forgets_them(own_redis: str) -> None:
    storage = RedisStorage(RedisConfig(url=own_redis))
    await storage.open()
    try:
        session = await storage.create_session(SessionRecord())
        await storage.append_messages("default", session.id, [message(session, 1)])
        client = redis.asyncio.Redis.from_url(own_redis)
        await client.script_flush()  # as a restart of the server does
        await client.aclose()
        await storage.append_messages("default", session.id, [message(session, 2)])
        assert [m.seq for m in await storage.get_messages("default", session.id)] == [1, 2]
    finally:
        await storage.close()


async def test_a_cancelled_append_lets_the_cancellation_out_only_once_it_is_stored(storage: RedisStorage) -> None:
    session = await storage.create_session(SessionRecord())
    batch = [message(session, n, "x" * 1000) for n in range(1, 5001)]
    task = asyncio.ensure_future(storage.append_messages("default", session.id, batch))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stored = await storage.get_session("default", session.id)
    assert stored.message_count in (0, 5000)
    assert len(await storage.get_messages("default", session.id)) == stored.message_count


async def first_events(storage: RedisStorage, tenant: str | None, count: int) -> list[StorageEvent]:
    heard = []
    async for event in storage.events(tenant):
        heard.append(event)
        if len(heard) == count:
            return heard
    raise AssertionError("the events ended")


async def test_events_of_one_tenant_leave_out_the_others(storage: RedisStorage) -> None:
    listener = asyncio.create_task(first_events(storage, "a}b", 2))
    await asyncio.sleep(0.2)
    await storage.create_session(SessionRecord(tenant="other", id="theirs"))
    await storage.create_session(SessionRecord(tenant="a}b", id="mine"))
    await storage.delete_session("a}b", "mine")
    heard = await asyncio.wait_for(listener, timeout=10)
    assert [(e.kind, e.tenant, e.session_id) for e in heard] == [("created", "a}b", "mine"), ("deleted", "a}b", "mine")]


async def test_on_a_cluster_one_node_hears_the_events_of_every_tenant(redis_cluster: str, prefix: str) -> None:
    storage = RedisStorage(RedisConfig(url=redis_cluster, prefix=prefix, cluster=True))
    await storage.open()
    try:
        tenants = [f"t{n}" for n in range(12)]  # their slots spread over the three nodes
        assert len({key_slot(f"{prefix}{{{t}}}s:x".encode()) * 3 // 16384 for t in tenants}) == 3
        listener = asyncio.create_task(first_events(storage, None, len(tenants)))
        await asyncio.sleep(0.2)
        for tenant in tenants:
            await storage.create_session(SessionRecord(tenant=tenant))
        heard = await asyncio.wait_for(listener, timeout=10)
        assert sorted(e.tenant for e in heard) == sorted(tenants)
    finally:
        await storage.close()


async def test_with_a_ttl_idle_sessions_expire_and_active_ones_stay(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = RedisStorage(RedisConfig(url=redis_url, prefix=prefix, ttl=1.0))
    await storage.open()
    try:
        idle = await storage.create_session(SessionRecord(user_id="ann"))
        active = await storage.create_session(SessionRecord(user_id="ann"))
        for session in (idle, active):
            await storage.append_messages("default", session.id, [message(session, 1)])
            await storage.set_message_status("default", session.id, 1, "failed")
            assert await storage.take_turn("default", session.id, "me", 30)
            await storage.replace_messages("default", session.id, 0, [message(session, 1)], count=1)
        for seq in range(2, 5):  # the active one is written every 0.4 s, the idle one not at all
            await asyncio.sleep(0.4)
            await storage.append_messages("default", active.id, [message(active, seq)])
        with pytest.raises(SessionNotFound):
            await storage.get_session("default", idle.id)
        assert (await storage.get_session("default", active.id)).message_count == 4
        assert [s.id for s in (await storage.list_sessions(SessionQuery(user_id="ann"))).items] == [active.id]
        assert [s.id for s in (await storage.list_sessions(SessionQuery())).items] == [active.id]
        assert await storage.delete_user("default", "ann") == DeletedCounts(1, 4)
        await storage.list_sessions(SessionQuery(status=SessionStatus.ACTIVE))  # meets the last stale entry
        left = [f"{prefix}schema".encode(), f"{prefix}{{default}}rv".encode()]  # the tenant's revision counter
        assert keys_under(redis_url, prefix) == left  # nothing of the sessions is left
    finally:
        await storage.close()


async def test_more_calls_at_once_than_connections_wait_their_turn(redis_url: str, prefix: str) -> None:
    storage = RedisStorage(RedisConfig(url=redis_url, prefix=prefix, max_connections=2))
    await storage.open()
    try:
        sessions = await asyncio.gather(*(storage.create_session(SessionRecord()) for _ in range(50)))
        await asyncio.gather(*(storage.append_messages("default", s.id, [message(s, 1)]) for s in sessions))
        assert {(await storage.get_session("default", s.id)).message_count for s in sessions} == {1}
    finally:
        await storage.close()


@pytest.mark.parametrize(
    "url", ["redis://:Zm9v/YmFy+c2VjcmV0@127.0.0.1:1/0", "redis://default:p#ss-c2VjcmV0@127.0.0.1:1/0"]
)
async def test_a_password_with_url_characters_in_it_is_never_shown(url: str) -> None:
    config = RedisConfig(url=url, socket_timeout=2)
    assert "c2VjcmV0" not in repr(config)
    with pytest.raises(StorageUnavailable) as caught:
        await RedisStorage(config).open()
    assert "c2VjcmV0" not in str(caught.value) and "Zm9v" not in str(caught.value)
    assert str(caught.value).startswith(("Redis at redis://127.0.0.1:1/0: ", "Redis URL redis://127.0.0.1:1/0 "))


def test_the_url_query_cannot_set_what_the_table_sets() -> None:
    with pytest.raises(ValueError, match=r"^set max_connections as a key of this table, not in the URL's query$"):
        RedisConfig(url="redis://:sk@127.0.0.1:6379/0?max_connections=2")
    with pytest.raises(ValueError, match=r"^ttl must be from 0\.001 to 1e9 seconds"):
        RedisConfig(ttl=1e16)


async def test_with_a_ttl_an_id_made_again_by_another_user_is_theirs_alone(redis_url: str, prefix: str) -> None:
    storage = RedisStorage(RedisConfig(url=redis_url, prefix=prefix, ttl=0.5))
    await storage.open()
    try:
        alices = await storage.create_session(SessionRecord(id="support", user_id="alice"))
        await storage.append_messages("default", "support", [message(alices, 1, "my card is 4111")])
        await asyncio.sleep(0.8)  # alice's session expires; bob's is made with the same id
        await storage.create_session(SessionRecord(id="support", user_id="bob", status=SessionStatus.ARCHIVED))
        assert (await storage.list_sessions(SessionQuery(user_id="alice"))).items == ()
        assert (await storage.list_sessions(SessionQuery(status=SessionStatus.ACTIVE))).items == ()
        assert await storage.delete_user("default", "alice") == DeletedCounts(0, 0)
        assert await storage.get_messages("default", "support") == []
        assert (await storage.get_session("default", "support")).user_id == "bob"
    finally:
        await storage.close()


async def test_sessions_the_kernel_allows_stay_readable(storage: RedisStorage) -> None:
    refunded = await storage.create_session(SessionRecord(id="refunded"))
    reply = attrs.evolve(message(refunded, 1), usage=Usage(cost=-0.25))  # a refund
    await storage.append_messages("default", "refunded", [reply])
    renamed = await storage.update_session(attrs.evolve(await storage.get_session("default", "refunded"), title="x"))
    assert renamed.usage.cost == -0.25
    ahead = utcnow() + timedelta(days=2)  # a client whose clock runs ahead
    await storage.create_session(SessionRecord(id="ahead", created_at=ahead, updated_at=ahead))
    assert [s.id for s in (await storage.list_sessions(SessionQuery())).items] == ["ahead", "refunded"]


async def test_a_listing_of_ids_with_equal_times_pages_through_each_once(storage: RedisStorage) -> None:
    moment = utcnow()
    ids = ["", ":", "z}", "é"]
    for session_id in ids:
        await storage.create_session(SessionRecord(id=session_id, created_at=moment, updated_at=moment))
    listed, query = [], SessionQuery(limit=1)
    for _ in range(10):
        page = await storage.list_sessions(query)
        listed += [s.id for s in page.items]
        if page.next_cursor is None:
            break
        query = attrs.evolve(query, cursor=page.next_cursor)
    assert listed == sorted(ids, reverse=True)


async def test_an_id_that_looks_like_a_listing_key_makes_no_tenant(storage: RedisStorage) -> None:
    await storage.create_session(SessionRecord(tenant="t", id="x}i:all"))
    assert [(r.tenant, r.id) for r in await collect_sessions(storage)] == [("t", "x}i:all")]


async def test_an_import_cancelled_while_a_session_is_stored_leaves_nothing(storage: RedisStorage) -> None:
    big = SessionRecord(id="big")
    records = [big, *(message(big, n, "x" * 200) for n in range(1, 20_001))]
    read_all = asyncio.Event()

    async def source() -> AsyncIterator[SessionRecord | Message]:
        for record in records:
            yield record
        read_all.set()  # the import now sends the session's one write: cancelled while it is under way

    importing = asyncio.ensure_future(storage.import_records(source()))
    await read_all.wait()
    importing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await importing
    with pytest.raises(SessionNotFound):
        await storage.get_session("default", "big")


async def test_a_message_on_the_events_channel_that_is_no_event_is_left_out(storage: RedisStorage) -> None:
    listener = asyncio.create_task(first_events(storage, "default", 1))
    await asyncio.sleep(0.2)
    client = redis.asyncio.Redis.from_url(storage.config.url)
    await client.publish(f"{storage.config.prefix}{{default}}events", b"\xff not json")
    await client.aclose()
    await storage.create_session(SessionRecord(id="after"))
    assert [(e.kind, e.session_id) for e in await asyncio.wait_for(listener, timeout=10)] == [("created", "after")]


async def test_a_user_who_may_not_publish_still_writes(own_redis: str) -> None:
    admin = redis.asyncio.Redis.from_url(own_redis)
    await admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "resetchannels")
    await admin.aclose()
    storage = RedisStorage(RedisConfig(url=own_redis.replace("redis://", "redis://app:pw@")))
    await storage.open()
    try:
        session = await storage.create_session(SessionRecord())
        await storage.append_messages("default", session.id, [message(session, 1)])
        assert (await storage.get_session("default", session.id)).message_count == 1
    finally:
        await storage.close()


async def test_a_key_of_another_kind_under_the_prefix_is_damage_not_an_outage(storage: RedisStorage) -> None:
    session = await storage.create_session(SessionRecord(id="s"))
    await storage.append_messages("default", "s", [message(session, 1)])
    client = redis.asyncio.Redis.from_url(storage.config.url)
    await client.delete(f"{storage.config.prefix}{{default}}m:s")
    await client.set(f"{storage.config.prefix}{{default}}m:s", "not a list")
    await client.aclose()
    with pytest.raises(DataFormatError, match="is damaged: a key holds another kind of value"):
        await storage.get_messages("default", "s")


async def test_cluster_mode_against_a_single_server_is_a_clear_error(own_redis: str) -> None:
    with pytest.raises(StorageUnavailable, match=r"^Redis at redis://127\.0\.0\.1:"):
        await RedisStorage(RedisConfig(url=own_redis, cluster=True, socket_timeout=2)).open()


async def test_a_user_with_the_rights_the_readme_lists_can_do_everything(own_redis: str) -> None:
    admin = redis.asyncio.Redis.from_url(own_redis)
    rights = ["~app:*", "&app:*", "+@read", "+@write", "+@scripting", "+@pubsub", "+info", "+time"]
    await admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "resetchannels", *rights)
    await admin.aclose()
    storage = RedisStorage(RedisConfig(url=own_redis.replace("redis://", "redis://app:pw@"), prefix="app:", ttl=60))
    await storage.open()
    try:
        heard = asyncio.ensure_future(first_events(storage, "default", 1))
        await asyncio.sleep(0.2)  # subscribed
        session = await storage.create_session(SessionRecord(user_id="ann"))
        assert (await heard)[0].kind == "created"
        await storage.append_messages("default", session.id, [message(session, 1), message(session, 2)])
        await storage.set_message_status("default", session.id, 2, "failed", "boom")
        assert await storage.take_turn("default", session.id, "me", 30)
        await storage.end_turn("default", session.id, "me")
        await storage.update_session(attrs.evolve(await storage.get_session("default", session.id), title="t"))
        assert [m.seq for m in await storage.get_messages("default", session.id, last=1)] == [2]
        assert [s.id for s in (await storage.list_sessions(SessionQuery(user_id="ann"))).items] == [session.id]
        exported = [r async for r in storage.export_records()]
        await storage.delete_session("default", session.id)
        assert await storage.import_records(replay(exported)) == 3
        assert await storage.delete_user("default", "ann") == DeletedCounts(1, 2)
    finally:
        await storage.close()


async def replay(records: list[object]) -> AsyncIterator[object]:
    for record in records:
        yield record


async def test_the_empty_tenant_of_key_layout_1_is_found_after_the_upgrade(redis_url: str, prefix: str) -> None:
    storage = RedisStorage(RedisConfig(url=redis_url, prefix=prefix))
    await storage.open()
    session = await storage.create_session(SessionRecord(tenant=""))
    await storage.append_messages("", session.id, [message(session, 1)])
    await storage.close()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}{{%}}*"):  # where layout 1 put the tenant ""
        client.rename(key, key.replace(b"{%}", b"{}"))
    client.hdel(f"{prefix}{{}}s:{session.id}", "rv")
    client.set(f"{prefix}schema", 1)
    client.close()
    await storage.open()
    try:
        assert [m.seq for m in await storage.get_messages("", session.id)] == [1]
        assert [s.id for s in (await storage.list_sessions(SessionQuery(tenant=""))).items] == [session.id]
        assert not [key for key in keys_under(redis_url, prefix) if b"{}" in key]
    finally:
        await storage.close()


@pytest.mark.parametrize("given", ["", ":wrong@"], ids=["none", "wrong"])
async def test_a_missing_or_wrong_password_says_where_the_password_goes(tmp_path: Path, given: str) -> None:
    server, url = start_server(tmp_path / "redis", "--requirepass", "c2VjcmV0")
    try:
        storage = RedisStorage(RedisConfig(url=url.replace("redis://", f"redis://{given}")))
        with pytest.raises(StorageUnavailable, match=r"refused the login .*redis://:PASSWORD@host:port/db") as caught:
            await storage.open()
        assert "wrong" not in str(caught.value)
    finally:
        stop([server])


@pytest.mark.parametrize(("field", "call"), [("rv", "read"), ("n", "read"), ("n", "append"), ("u", "append")])
async def test_a_session_field_of_another_kind_is_damage_named_not_an_outage(
    storage: RedisStorage, redis_url: str, prefix: str, field: str, call: str
) -> None:
    session = await storage.create_session(SessionRecord())
    await storage.append_messages("default", session.id, [message(session, 1)])
    client = redis.Redis.from_url(redis_url)
    client.hset(f"{prefix}{{default}}s:{session.id}", field, "garbage")
    client.close()
    with pytest.raises(DataFormatError, match="damaged"):
        if call == "read":
            await storage.get_messages("default", session.id)
        else:
            await storage.append_messages("default", session.id, [message(session, 2)])
