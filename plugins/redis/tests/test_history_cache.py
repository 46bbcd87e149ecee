"""The history cache never serves what another writer changed (the kernel's shared-storage
contract, with the cache on, so small that a history is left out, and off; on a node and on
the cluster), reads only what is new, and data of key layout 1 is brought up to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis

from threadline import SessionRecord
from threadline.testing import SharedStorageContract
from threadline.testing.shared_storage_contract import SESSION, messages, started, texts
from threadline_redis import RedisConfig
from threadline_redis.storage import SCHEMA_VERSION, RedisStorage


async def opened(config: RedisConfig) -> RedisStorage:
    storage = RedisStorage(config)
    await storage.open()
    return storage


class TestSharedRedisStorage(SharedStorageContract):
    @pytest.fixture(params=[20_000, 3, 0], ids=["cache", "small-cache", "no-cache"])
    async def storage(self, redis_url: str, prefix: str, request: pytest.FixtureRequest) -> AsyncIterator[RedisStorage]:
        storage = await opened(RedisConfig(url=redis_url, prefix=prefix, history_cache=request.param))
        yield storage
        await storage.close()

    @pytest.fixture
    async def other(self, redis_url: str, prefix: str) -> AsyncIterator[RedisStorage]:
        other = await opened(RedisConfig(url=redis_url, prefix=prefix, history_cache=0))
        yield other
        await other.close()


class TestSharedRedisClusterStorage(SharedStorageContract):
    @pytest.fixture
    async def storage(self, redis_cluster: str, prefix: str) -> AsyncIterator[RedisStorage]:
        storage = await opened(RedisConfig(url=redis_cluster, prefix=prefix, cluster=True))
        yield storage
        await storage.close()

    @pytest.fixture
    async def other(self, redis_cluster: str, prefix: str) -> AsyncIterator[RedisStorage]:
        other = await opened(RedisConfig(url=redis_cluster, prefix=prefix, cluster=True, history_cache=0))
        yield other
        await other.close()


async def test_a_held_history_is_not_read_again_only_what_was_added(
    storage: RedisStorage, redis_url: str, prefix: str
) -> None:
    await started(storage, ["a", "b"])
    assert await texts(storage) == ["a", "b"]
    client = redis.Redis.from_url(redis_url)
    client.lset(f"{prefix}{{default}}m:{SESSION}", 0, "not a message")  # damaged after it was read
    client.close()
    await storage.append_messages("default", SESSION, messages(["c"], 3))
    assert await texts(storage) == ["a", "b", "c"]  # "a" came from memory, "c" from Redis
    fresh = await opened(RedisConfig(url=redis_url, prefix=prefix))
    try:
        with pytest.raises(Exception, match="damaged"):  # read whole, by a storage that holds nothing
            await texts(fresh)
    finally:
        await fresh.close()


async def test_data_of_key_layout_1_is_given_revisions_and_then_cached(redis_url: str, prefix: str) -> None:
    storage = await opened(RedisConfig(url=redis_url, prefix=prefix))
    await started(storage, ["a", "b"])
    client = redis.Redis.from_url(redis_url)
    try:
        client.hdel(f"{prefix}{{default}}s:{SESSION}", "rv")  # as layout 1 wrote it
        assert await texts(storage) == ["a", "b"]  # without a revision it is read, and not cached
        assert storage._cache is not None and storage._cache.peek(("default", SESSION)) is None
        await storage.close()
        client.set(f"{prefix}schema", 1)
        storage = await opened(RedisConfig(url=redis_url, prefix=prefix))
        assert int(client.get(f"{prefix}schema") or 0) == SCHEMA_VERSION
        assert client.hget(f"{prefix}{{default}}s:{SESSION}", "rv") is not None
        assert await texts(storage) == ["a", "b"]
        assert storage._cache is not None and storage._cache.peek(("default", SESSION)) is not None
    finally:
        await storage.close()
        client.close()


async def test_a_history_held_through_a_rollback_of_the_data_is_read_again(redis_url: str, prefix: str) -> None:
    """A restart from a snapshot, or a failover that lost writes, rolls the session back; the
    changes made after it must not be taken for the lost ones the held history saw."""
    storage = await opened(RedisConfig(url=redis_url, prefix=prefix))
    other = await opened(RedisConfig(url=redis_url, prefix=prefix, history_cache=0))
    client = redis.Redis.from_url(redis_url)
    try:
        await started(storage, ["a", "b"])
        keys = [f"{prefix}{{default}}{kind}" for kind in (f"s:{SESSION}", f"x:{SESSION}", "rv")]
        snapshot = {key: client.dump(key) for key in keys}
        await other.set_message_status("default", SESSION, 1, "failed")
        assert [m.status.value for m in await storage.get_messages("default", SESSION)] == ["failed", "ok"]
        for key, value in snapshot.items():  # back to before the status change
            client.delete(key)
            if value is not None:
                client.restore(key, 0, value)
        await other.set_message_status("default", SESSION, 2, "failed")
        assert [m.status.value for m in await storage.get_messages("default", SESSION)] == ["ok", "failed"]
    finally:
        client.close()
        await storage.close()
        await other.close()


async def test_two_processes_opening_data_of_layout_1_at_once_both_upgrade_it(redis_url: str, prefix: str) -> None:
    storage = await opened(RedisConfig(url=redis_url, prefix=prefix))
    sessions = [await storage.create_session(SessionRecord(tenant=tenant)) for tenant in ("", "", "t")]
    await storage.close()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}{{%}}*"):  # where layout 1 put the tenant ""
        client.rename(key, key.replace(b"{%}", b"{}"))
    client.set(f"{prefix}schema", 1)
    client.close()
    first, second = (
        RedisStorage(RedisConfig(url=redis_url, prefix=prefix)),
        RedisStorage(RedisConfig(url=redis_url, prefix=prefix)),
    )
    await asyncio.gather(first.open(), second.open())
    try:
        for session in sessions:
            assert (await second.get_session(session.tenant, session.id)).id == session.id
    finally:
        await first.close()
        await second.close()
