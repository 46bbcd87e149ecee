"""The Redis server goes away under load and comes back: sends fail with StorageUnavailable
only while it is down, the client reconnects by itself, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from servers import start_server, stop

from threadline import Message, Role, SessionRecord, StorageConflict, StorageUnavailable, Text
from threadline_redis import RedisConfig
from threadline_redis.storage import RedisStorage


async def test_a_restart_of_the_server_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    server, url = start_server(tmp_path / "redis", *durable)
    storage = RedisStorage(RedisConfig(url=url, socket_timeout=1))
    await storage.open()
    session = await storage.create_session(SessionRecord())
    acked: list[str] = []
    failures: list[float] = []
    stopping = asyncio.Event()

    async def write() -> None:
        n = 0
        while not stopping.is_set():
            n += 1  # a new text each try: one that failed may have been stored, its answer lost
            try:
                count = (await storage.get_session("default", session.id)).message_count
                text = f"m{n}"
                await storage.append_messages(
                    "default", session.id, [Message(session.id, count + 1, Role.USER, (Text(text),))]
                )
                acked.append(text)
            except StorageConflict:
                continue  # its last append was stored, but the answer was lost with the server
            except StorageUnavailable:
                failures.append(time.monotonic())
                await asyncio.sleep(0.02)

    writer = asyncio.create_task(write())
    try:
        await asyncio.sleep(0.5)
        stop([server])
        down_at = time.monotonic()
        await asyncio.sleep(1.0)
        before_restart = len(acked)
        server, _ = start_server(tmp_path / "redis", *durable, port=int(url.rsplit(":", 1)[1].split("/")[0]))
        back_at = time.monotonic()
        while len(acked) == before_restart:
            assert time.monotonic() - back_at < 5, "no append succeeded within 5 s of the server coming back"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    finally:
        stopping.set()
        await writer
        await storage.close()
    try:
        assert failures and all(down_at <= moment <= back_at + 5 for moment in failures)
        reopened = RedisStorage(RedisConfig(url=url))
        await reopened.open()
        stored = [m.text for m in await reopened.get_messages("default", session.id)]
        await reopened.close()
        assert not [text for text in acked if text not in stored]
        assert stored == sorted(set(stored), key=lambda text: int(text[1:]))  # in order, none twice
    finally:
        stop([server])
