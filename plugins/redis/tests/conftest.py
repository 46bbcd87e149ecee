from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage, glob_escape

#: the machine's own server; shared, so each test writes under a prefix of its own
REDIS_URL = os.environ.get("THREADLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"no Redis server at {REDIS_URL} ({exc}); start one, or set THREADLINE_TEST_REDIS_URL"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a missing server is a failure, never a skip
        pytest.skip(message)
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own, on a free loopback port, stopped by pid after it:
    for what would disturb the machine's shared server (flushing scripts, restarts)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp_path],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.05)
    client.close()
    yield url
    server.kill()
    server.wait()
