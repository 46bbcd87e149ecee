"""threadline-redis passes the kernel's storage contract in full."""

from __future__ import annotations

from threadline.testing import StorageContract


class TestRedisStorage(StorageContract):
    pass
