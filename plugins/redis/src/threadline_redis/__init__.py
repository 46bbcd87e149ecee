"""threadline-redis: sessions on Redis, shared by every process and machine that reaches it.

This module only registers the plugin; ``redis`` is imported when a storage is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit, urlunsplit

import attrs
from attrs import field, frozen

from threadline.plugin import finite, hookimpl

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_redis.storage import RedisStorage

__all__ = ["RedisConfig", "make_storage", "shown_url"]


def shown_url(url: str) -> str:
    """``url`` as it may be shown: without its password (or user), query or fragment."""
    scheme, _, rest = url.partition("://")
    parts = urlsplit(f"{scheme}://{rest.rpartition('@')[2]}")  # a password may hold /, # or ?: never parsed
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc += f":{port}" if port is not None else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _no_braces(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if "{" in value or "}" in value:
        raise ValueError(f"{attribute.name} cannot hold {{ or }}: Redis Cluster reads the tenant's hash tag from them")


#: settings of this table that redis-py would also take from the URL's query, silently winning
_SETTINGS_IN_QUERY = {"max_connections", "socket_timeout", "socket_connect_timeout"}


def _redis_url(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{attribute.name} must be a redis://, rediss:// or unix:// URL, got {shown_url(value)!r}")
    query = urlsplit(value.rpartition("@")[2]).query
    if clash := sorted(_SETTINGS_IN_QUERY & set(parse_qs(query))):
        raise ValueError(f"set {', '.join(clash)} as a key of this table, not in the URL's query")


@frozen
class RedisConfig:
    """``[storage]`` settings when ``backend = "redis"``.

    :param url: the server, as redis-py's ``from_url`` takes it (``rediss://`` for TLS); a
        password in it is never shown (``${REDIS_PASSWORD}`` keeps it out of the file).
    :param prefix: every key threadline writes starts with it: several applications (or
        tests) share one database by using different prefixes.
    :param max_connections: most connections open at once (on a cluster, to each node); on
        one server, one of them carries every write, pipelined.
    :param socket_timeout: seconds to wait for the server's answer before failing.
    :param ttl: seconds a session is kept after its last change (a message, an update, a
        turn); ``None`` (the default) keeps sessions until they are deleted.
    :param cluster: ``url`` is a node of a Redis Cluster: the client finds the others, and
        sends each script to the node that holds its tenant's slot.
    :param replicas: a write is acknowledged only once this many replicas of its master have
        it (Redis's WAIT, for half of ``socket_timeout`` at most; fewer confirming fail the
        write with ``StorageUnavailable``, though the master has it): with 1 or more, a
        failover to a replica loses no acknowledged write. 0 (the default): writes do not wait.
    :param history_cache: decoded messages kept in memory for histories read again (0: off);
        a cached history is reused only while the server says nothing in it changed, and
        then only the messages added since are read.
    """

    url: str = field(default="redis://127.0.0.1:6379/0", validator=_redis_url, repr=shown_url)
    prefix: str = field(default="threadline:", validator=_no_braces)
    max_connections: int = field(default=64, validator=attrs.validators.ge(2))
    socket_timeout: float = field(default=5.0, validator=[attrs.validators.gt(0), finite])
    ttl: float | None = field(default=None, validator=[finite, lambda _s, _a, ttl: _check_ttl(ttl)])
    cluster: bool = False
    history_cache: int = field(default=20_000, validator=attrs.validators.ge(0))
    replicas: int = field(default=0, validator=attrs.validators.ge(0))


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and not 0.001 <= ttl <= 1e9:
        raise ValueError(f"ttl must be from 0.001 to 1e9 seconds, or left out for none, got {ttl}")


def make_storage(config: RedisConfig) -> RedisStorage:
    from threadline_redis.storage import RedisStorage

    return RedisStorage(config)


@hookimpl
def threadline_register_storage(register: Register) -> None:
    register("redis", make_storage, config=RedisConfig)
