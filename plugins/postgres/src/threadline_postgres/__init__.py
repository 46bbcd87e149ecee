"""threadline-postgres: sessions on PostgreSQL, shared by every process, through a pool.

This module only registers the plugin; ``asyncpg`` is imported when a storage is made.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import attrs
from attrs import field, frozen

from threadline.plugin import finite, hookimpl

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_postgres.storage import PostgresStorage

__all__ = ["PostgresConfig", "make_storage", "redacted"]

#: a schema name threadline writes into its statements as it is: lower case, digits, _
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def redacted(dsn: str) -> str:
    """``dsn`` with its password, if any, as ``***``: what errors and logs may show."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)  # a key=value DSN
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _schema_name(_instance: object, _attribute: object, schema: str) -> None:
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            f"schema {schema!r} is not a plain name; use lower-case letters, digits and _ "
            "(at most 63, not starting with a digit)"
        )


@frozen
class PostgresConfig:
    """``[storage]`` settings when ``backend = "postgres"``.

    :param dsn: the server, as a ``postgresql://user:password@host:port/database`` URL (or
        ``key=value`` pairs); its password is never shown in a repr, an error or a log.
    :param schema: the PostgreSQL schema threadline's tables live in, made when missing.
    :param min_size: connections the pool keeps open.
    :param max_size: connections the pool opens at most: how many operations run at once.
    :param statement_timeout: seconds a statement may run before the server stops it (0:
        no limit).
    :param history_cache: decoded messages kept in memory for histories read again (0:
        off); a cached history is reused only while the server says nothing in it changed,
        and only the messages added since are read.
    """

    dsn: str = field(default="postgresql://127.0.0.1:5432/threadline", repr=False)
    schema: str = field(default="threadline", validator=_schema_name)
    min_size: int = field(default=2, validator=[attrs.validators.ge(0), attrs.validators.le(1000)])
    max_size: int = field(default=10, validator=[attrs.validators.ge(1), attrs.validators.le(1000)])
    statement_timeout: float = field(default=30.0, validator=[attrs.validators.ge(0), finite])
    history_cache: int = field(default=20_000, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is above max_size {self.max_size}; make it at most that")

    def __repr__(self) -> str:
        return (
            f"PostgresConfig(dsn={redacted(self.dsn)!r}, schema={self.schema!r}, min_size={self.min_size}, "
            f"max_size={self.max_size}, statement_timeout={self.statement_timeout}, "
            f"history_cache={self.history_cache})"
        )


def make_storage(config: PostgresConfig) -> PostgresStorage:
    from threadline_postgres.storage import PostgresStorage

    return PostgresStorage(config)


@hookimpl
def threadline_register_storage(register: Register) -> None:
    register("postgres", make_storage, config=PostgresConfig)
