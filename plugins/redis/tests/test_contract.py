"""threadline-redis passes the kernel's storage contract in full (but for the optional search),
on a single server and on a Redis Cluster of three masters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from threadline.testing import StorageContract
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage


class TestRedisStorage(StorageContract):
    pass


class TestRedisClusterStorage(StorageContract):
    @pytest.fixture
    async def storage(self, redis_cluster: str, prefix: str) -> AsyncIterator[RedisStorage]:
        storage = RedisStorage(RedisConfig(url=redis_cluster, prefix=prefix, cluster=True))
        await storage.open()
        yield storage
        await storage.close()
