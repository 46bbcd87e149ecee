"""A storage whose every operation is timed: ``threadline_storage_operation_duration_seconds``
by backend and operation, what the ``metrics`` middleware's storage stage gives the manager."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from prometheus_client import Histogram

from threadline.plugin import Message, Revision, SessionRecord, Storage

#: the operations timed: every one of the Storage contract but opening, closing and the
#: export stream (timed as a whole it would time its reader)
OPERATIONS = (
    "create_session",
    "get_session",
    "update_session",
    "delete_session",
    "list_sessions",
    "append_messages",
    "get_messages",
    "set_message_status",
    "take_turn",
    "end_turn",
    "delete_user",
    "import_records",
    "replace_messages",  # optional, as the next: timed when the storage has it
    "get_revisions",
)


class TimedStorage:
    """``storage`` with each of :data:`OPERATIONS` timed; everything else is the storage's own."""

    def __init__(self, storage: Storage, backend: str, histogram: Histogram) -> None:
        self._storage = storage
        for operation in OPERATIONS:
            if (method := getattr(storage, operation, None)) is not None:
                setattr(self, operation, _timed(method, histogram.labels(backend, operation)))

    # named here, not only through __getattr__: a runtime-checkable Protocol looks them up
    # on the class (isinstance(storage, Storage) on Python 3.12 and later)
    async def open(self) -> None:
        await self._storage.open()

    async def close(self) -> None:
        await self._storage.close()

    def export_records(self, tenant: str | None = None) -> AsyncIterator[SessionRecord | Message | Revision]:
        return self._storage.export_records(tenant)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def __repr__(self) -> str:
        return f"TimedStorage({self._storage!r})"


def _timed(operation: Callable[..., Awaitable[Any]], histogram: Histogram) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await operation(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)

    return timed
