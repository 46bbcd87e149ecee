"""Redis servers of the tests' own, on loopback ports, stopped by pid: for what would disturb
the machine's shared server (flushing scripts, restarts, a cluster)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from threadline.testing import server_missing


def free_port() -> int:
    """A free loopback port whose cluster bus port (10,000 above it) is free too."""
    while True:
        port = random.randrange(20_000, 40_000)
        with socket.socket() as probe, socket.socket() as bus:
            try:
                probe.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
            return port


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        server_missing("redis-server is not installed")
    return binary


def start_server(folder: Path, *options: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of the tests' own on loopback (a free port unless told), answering; and its URL."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder, *options],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    try:
        while not answers(client):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"redis-server on port {port} did not come up")
            time.sleep(0.05)
    except BaseException:
        stop([server])
        raise
    finally:
        client.close()
    return server, url


def answers(client: redis.Redis) -> bool:
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError):  # up, and asks for a password
        return True
    except redis.ConnectionError:
        return False
    return True


def stop(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        server.kill()
        server.wait()


def start_cluster(
    folder: Path, masters: int, replicas: int, *options: str
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """A Redis Cluster of the tests' own: ``masters`` masters with ``replicas`` replicas each;
    its servers and their URLs, answering and with every slot served."""
    servers: list[subprocess.Popen[bytes]] = []
    nodes: list[str] = []
    try:
        for n in range(masters * (1 + replicas)):
            server, url = start_server(folder / str(n), "--cluster-enabled", "yes", "--appendonly", "no", *options)
            servers.append(server)
            nodes.append(url)
        addresses = [url.removeprefix("redis://").removesuffix("/0") for url in nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_for_cluster(nodes)
    except BaseException:
        stop(servers)
        raise
    return servers, nodes


def wait_for_cluster(nodes: list[str], timeout: float = 30) -> None:
    """Until every node of ``nodes`` says the cluster is ok, and each master's replicas are
    online (with them all its writes)."""
    deadline = time.monotonic() + timeout
    for url in nodes:
        client = redis.Redis.from_url(url)
        try:
            while not cluster_ready(client):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not come up")
                time.sleep(0.1)
        finally:
            client.close()


def cluster_ready(client: redis.Redis) -> bool:
    return client.cluster("info")["cluster_state"] == "ok" and replicas_online(client)


def replicas_online(client: redis.Redis) -> bool:
    """A replica's link to its master is up; a master's replicas are all online."""
    replication = client.info("replication")
    if replication["role"] != "master":
        return bool(replication["master_link_status"] == "up")
    return all(replication[f"slave{n}"]["state"] == "online" for n in range(int(replication["connected_slaves"])))


def wait_for_replica(master_url: str, timeout: float = 30) -> None:
    client = redis.Redis.from_url(master_url)
    deadline = time.monotonic() + timeout
    try:
        while not (client.info("replication")["connected_slaves"] and replicas_online(client)):
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not come online")
            time.sleep(0.05)
    finally:
        client.close()
