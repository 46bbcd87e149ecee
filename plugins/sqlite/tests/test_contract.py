"""threadline-sqlite passes the kernel's storage contract in full (the `storage` fixture is in conftest)."""

from threadline.testing import StorageContract


class TestSQLiteStorage(StorageContract):
    pass
