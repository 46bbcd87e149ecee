from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
from servers import start_cluster, start_server, stop

from threadline.testing import isolated_user_dirs, server_missing  # noqa: F401 (autouse: no real user dirs)
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage, glob_escape

#: the machine's own server; shared, so each test writes under a prefix of its own
REDIS_URL = os.environ.get("THREADLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        server_missing(f"no Redis server at {REDIS_URL} ({exc}); start one, or set THREADLINE_TEST_REDIS_URL")
    return REDIS_URL


@pytest.fixture
def new_prefix(redis_url: str) -> Iterator[Callable[[], str]]:
    """Makes key prefixes no other test uses; every key under them is deleted after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(f"threadline-test:{uuid.uuid4().hex}:")
        return made[-1]

    yield make
    client = redis.Redis.from_url(redis_url)
    for prefix in made:
        for key in client.scan_iter(match=f"{glob_escape(prefix)}*", count=1000):
            client.delete(key)
    client.close()


@pytest.fixture
def prefix(new_prefix: Callable[[], str]) -> str:
    return new_prefix()


@pytest.fixture
async def storage(redis_url: str, prefix: str) -> AsyncIterator[RedisStorage]:
    storage = RedisStorage(RedisConfig(url=redis_url, prefix=prefix))
    await storage.open()
    yield storage
    await storage.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own, stopped by pid after it: for what would disturb the
    machine's shared server (flushing scripts, restarts)."""
    server, url = start_server(tmp_path / "redis", "--appendonly", "no")
    yield url
    stop([server])


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis Cluster of three masters of the tests' own; the URL of one of its nodes."""
    servers, nodes = start_cluster(tmp_path_factory.mktemp("cluster"), 3, 0)
    yield nodes[0]
    stop(servers)
