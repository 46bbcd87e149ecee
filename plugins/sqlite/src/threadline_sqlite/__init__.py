"""threadline-sqlite: the embedded storage. Sessions and messages in one SQLite file.

This module only registers the plugin; ``aiosqlite`` is imported when a storage is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs
from attrs import field, frozen

from threadline.plugin import finite, hookimpl, user_data_dir

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_sqlite.storage import SQLiteStorage

__all__ = ["SQLiteConfig", "make_storage"]


def _expand(path: str | Path) -> Path:
    if "\x00" in str(path):
        raise ValueError("a path cannot hold a NUL character")
    return Path(path).expanduser()


@frozen
class SQLiteConfig:
    """``[storage]`` settings when ``backend = "sqlite"``.

    :param path: the database file; ``~`` is expanded and missing parent folders are made.
    :param synchronous: SQLite's ``synchronous`` pragma. ``NORMAL`` (the default, with WAL)
        never corrupts the file, but a power loss or OS crash can lose the last commits;
        ``FULL`` syncs every commit to disk, surviving power loss at a cost in speed.
        A process crash loses nothing at either level.
    :param busy_timeout: seconds to wait for another process's write lock before failing.
    :param readers: read connections; reads never wait behind writes.
    :param max_batch: most writes committed together in one transaction (group commit).
    :param history_cache: decoded messages kept in memory for histories read again (0: off);
        a cached history is reused only while the database says nothing in it changed.
    :param read_only: open the database read-only: nothing is written, not even a migration.
        A database whose file or folder has no write permission is opened read-only anyway.
    :param compression: ``"zstd"`` stores each message body as a zstd frame when that is
        smaller, with a dictionary trained on the database's own messages (at open, once it
        has 1,000, and again by ``threadline sessions vacuum``); needs
        ``pip install 'threadline-sqlite[zstd]'``. ``"none"``: bodies as text. Either way a
        compressed body already stored is read.
    """

    path: Path = field(factory=lambda: user_data_dir() / "threadline.db", converter=_expand)
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    busy_timeout: float = field(default=5.0, validator=[attrs.validators.ge(0), finite])
    readers: int = field(default=2, validator=[attrs.validators.ge(1), attrs.validators.le(64)])
    max_batch: int = field(default=512, validator=attrs.validators.ge(1))
    history_cache: int = field(default=20_000, validator=attrs.validators.ge(0))
    read_only: bool = False
    compression: Literal["none", "zstd"] = "none"


def make_storage(config: SQLiteConfig) -> SQLiteStorage:
    from threadline_sqlite.storage import SQLiteStorage

    return SQLiteStorage(config)


@hookimpl
def threadline_register_storage(register: Register) -> None:
    register("sqlite", make_storage, config=SQLiteConfig)
