"""threadline-postgres: sessions on PostgreSQL, shared by every process, through a pool.

This module only registers the plugin; ``asyncpg`` is imported when a storage is made.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs
from attrs import field, frozen

from threadline.plugin import finite, hookimpl

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_postgres.storage import PostgresStorage

__all__ = ["PostgresConfig", "make_storage", "password_of", "redacted"]

#: PostgreSQL's longest statement_timeout (its milliseconds are a 32-bit integer)
MOST_SECONDS = 2_147_483.0
#: a schema name threadline writes into its statements (quoted): lower case, digits, _
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


#: the password of a URL DSN: all between the user's ``:`` and the last ``@`` before the host
_URL_PASSWORD = re.compile(r"^(?P<start>[a-z]+://[^:/@]*):(?P<password>.*)@(?=[^@]*$)", re.DOTALL)
#: a password given as a parameter of the URL: ``?password=...`` or ``&password=...``
_QUERY_PASSWORD = re.compile(r"(?P<start>[?&]password=)(?P<password>[^&#]*)", re.IGNORECASE)


def redacted(dsn: str) -> str:
    """``dsn`` with its password, if any, as ``***``: what errors and logs may show. Read
    as text, not parsed: a password with ``/``, ``#``, ``?`` or ``@`` that is not
    percent-encoded is hidden too, and one given as a ``password=`` parameter."""
    return _QUERY_PASSWORD.sub(r"\g<start>***", _URL_PASSWORD.sub(r"\g<start>:***@", dsn, count=1))


def password_of(dsn: str) -> str | None:
    """The password of ``dsn`` as written in it (after the user, else as a ``password=``
    parameter), to take out of a driver's error text."""
    for pattern in (_URL_PASSWORD, _QUERY_PASSWORD):
        match = pattern.search(dsn)
        if match and match["password"]:
            return match["password"]
    return None


def _url(_instance: object, _attribute: object, dsn: str) -> None:
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError(
            "dsn must be a postgresql://user:password@host:port/database URL (asyncpg reads no key=value form)"
        )


def _schema_name(_instance: object, _attribute: object, schema: str) -> None:
    if not SCHEMA_NAME.fullmatch(schema) or schema.startswith("pg_"):
        raise ValueError(
            f"schema {schema!r} is not a plain name; use lower-case letters, digits and _ "
            "(at most 63, not starting with a digit or pg_)"
        )


@frozen
class PostgresConfig:
    """``[storage]`` settings when ``backend = "postgres"``.

    :param dsn: the server, as a ``postgresql://user:password@host:port/database`` URL
        (percent-encode a password with ``/``, ``#``, ``?``, ``@`` or ``:`` in it); its
        password is never shown in a repr, an error or a log.
    :param schema: the PostgreSQL schema threadline's tables live in, made when missing.
    :param min_size: connections the pool keeps open.
    :param max_size: connections the pool opens at most: how many operations run at once.
    :param statement_timeout: seconds a statement may run before the server stops it (0:
        no limit).
    :param history_cache: decoded messages kept in memory for histories read again (0:
        off); a cached history is reused only while the server says nothing in it changed,
        and only the messages added since are read.
    :param notify: each change this process makes to a session is NOTIFYed, for the
        ``events`` of any process listening on this schema (``StorageEvent``). Off by
        default: PostgreSQL commits the writes that NOTIFY one at a time, which costs
        concurrent writers (bench/README.md).
    """

    dsn: str = field(default="postgresql://127.0.0.1:5432/threadline", repr=False, validator=_url)
    schema: str = field(default="threadline", validator=_schema_name)
    min_size: int = field(default=2, validator=[attrs.validators.ge(0), attrs.validators.le(1000)])
    max_size: int = field(default=10, validator=[attrs.validators.ge(1), attrs.validators.le(1000)])
    statement_timeout: float = field(
        default=30.0, validator=[finite, attrs.validators.ge(0), attrs.validators.le(MOST_SECONDS)]
    )
    history_cache: int = field(default=20_000, validator=attrs.validators.ge(0))
    notify: bool = False

    def __attrs_post_init__(self) -> None:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is above max_size {self.max_size}; make it at most that")

    def __repr__(self) -> str:
        return (
            f"PostgresConfig(dsn={redacted(self.dsn)!r}, schema={self.schema!r}, min_size={self.min_size}, "
            f"max_size={self.max_size}, statement_timeout={self.statement_timeout}, "
            f"history_cache={self.history_cache}, notify={self.notify})"
        )


def make_storage(config: PostgresConfig) -> PostgresStorage:
    from threadline_postgres.storage import PostgresStorage

    return PostgresStorage(config)


@hookimpl
def threadline_register_storage(register: Register) -> None:
    register("postgres", make_storage, config=PostgresConfig)
