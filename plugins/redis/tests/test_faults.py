"""The Redis server goes away under load and comes back: sends fail with StorageUnavailable
only while it is down, the client reconnects by itself, and nothing acknowledged is lost;
a master of a cluster killed fails over to its replica, which has every acknowledged write."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis
from servers import start_cluster, start_server, stop, wait_for_replica

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


class Writers:
    """One task per session, appending until stopped, each text new (one whose answer was
    lost may have been stored): what was acknowledged, and when appends failed."""

    def __init__(self, storage: RedisStorage, sessions: list[SessionRecord]) -> None:
        self.storage = storage
        self.acked: dict[str, list[str]] = {s.id: [] for s in sessions}
        self.failures: list[float] = []
        self.stopping = asyncio.Event()
        self.tasks = [asyncio.create_task(self._write(s)) for s in sessions]

    async def _write(self, session: SessionRecord) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                count = (await self.storage.get_session(session.tenant, session.id)).message_count
                message = Message(session.id, count + 1, Role.USER, (Text(f"m{n}"),))
                await self.storage.append_messages(session.tenant, session.id, [message])
                self.acked[session.id].append(f"m{n}")
            except StorageConflict:
                continue  # its last append was stored, but the answer was lost
            except StorageUnavailable:
                self.failures.append(time.monotonic())
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.tasks)

    async def none_lost(self, storage: RedisStorage, sessions: list[SessionRecord]) -> None:
        for session in sessions:
            stored = [m.text for m in await storage.get_messages(session.tenant, session.id)]
            assert not [text for text in self.acked[session.id] if text not in stored], session.tenant
            assert stored == sorted(set(stored), key=lambda text: int(text[1:]))  # in order, none twice


def slot_owner(url: str, key: str) -> str:
    """The address (host:port) of the master serving ``key``'s slot."""
    client = redis.RedisCluster.from_url(url)
    try:
        node = client.get_node_from_key(key)
        return f"{node.host}:{node.port}"
    finally:
        client.close()


async def test_a_master_killed_under_load_fails_over_to_its_replica_losing_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    options = ("--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0")
    servers, nodes = start_cluster(tmp_path, 3, 1, *options)
    try:
        config = RedisConfig(url=nodes[0], cluster=True, replicas=1, socket_timeout=1)
        storage = RedisStorage(config)
        await storage.open()
        sessions = [await storage.create_session(SessionRecord(tenant=f"t{n}")) for n in range(12)]
        owners = {s.tenant: slot_owner(nodes[0], f"{config.prefix}{{{s.tenant}}}") for s in sessions}
        victim_address = next(a for a in owners.values() if a != nodes[0].removeprefix("redis://").removesuffix("/0"))
        victim = next(i for i, url in enumerate(nodes) if victim_address in url)
        on_victim = [s for s in sessions if owners[s.tenant] == victim_address]
        assert on_victim and len(on_victim) < len(sessions)  # the others go on meanwhile
        writers = Writers(storage, sessions)
        await asyncio.sleep(1.0)
        servers[victim].kill()
        servers[victim].wait()
        killed_at = time.monotonic()
        acked_before = {s.id: len(writers.acked[s.id]) for s in on_victim}
        while min(len(writers.acked[s.id]) - acked_before[s.id] for s in on_victim) == 0:
            assert time.monotonic() - killed_at < 20, "the killed master's tenants were not served again"
            await asyncio.sleep(0.05)
            if time.monotonic() - killed_at > 3 and servers[victim].poll() is not None:
                # its replica took over; back, the old master becomes that one's replica, so
                # that writes (which wait for one replica) are acknowledged again
                servers[victim], _ = start_server(tmp_path / str(victim), "--cluster-enabled", "yes",
                                                  "--appendonly", "no", *options,
                                                  port=int(victim_address.rsplit(":", 1)[1]))  # fmt: skip
        await asyncio.sleep(0.5)
        await writers.stop()
        assert writers.failures  # the killed master's tenants failed while it was down
        await writers.none_lost(storage, sessions)
        await storage.close()
    finally:
        stop(servers)


async def test_with_replicas_a_write_no_replica_confirms_fails_though_stored(own_redis: str) -> None:
    storage = RedisStorage(RedisConfig(url=own_redis, replicas=1, socket_timeout=0.4))
    await storage.open()
    try:
        with pytest.raises(StorageUnavailable, match=r"1 replicas were asked to confirm it within 0\.2 s and 0 did"):
            await storage.create_session(SessionRecord(id="s"))
        assert (await storage.get_session("default", "s")).id == "s"  # the master has it
    finally:
        await storage.close()


async def test_with_a_replica_writes_wait_for_it_and_it_has_them(tmp_path: Path) -> None:
    master, url = start_server(tmp_path / "master")
    replica, replica_url = start_server(tmp_path / "replica", "--replicaof", "127.0.0.1", url.rsplit(":", 1)[1][:-2])
    try:
        wait_for_replica(url)
        storage = RedisStorage(RedisConfig(url=url, replicas=1))
        await storage.open()
        session = await storage.create_session(SessionRecord())
        await storage.append_messages("default", session.id, [Message(session.id, 1, Role.USER, (Text("hi"),))])
        await storage.close()
        master.kill()  # what the replica has is all that was acknowledged
        master.wait()
        promoted = redis.Redis.from_url(replica_url)
        promoted.replicaof("NO", "ONE")  # as a failover (Sentinel's, say) would
        promoted.close()
        on_replica = RedisStorage(RedisConfig(url=replica_url))
        await on_replica.open()
        assert [m.text for m in await on_replica.get_messages("default", session.id)] == ["hi"]
        await on_replica.close()
    finally:
        stop([master, replica])
