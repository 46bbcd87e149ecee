"""An import that a cancellation (Ctrl-C) stops: its records end in an error, so that the
storage gives the whole import up, rather than finishing it before the cancellation goes on,
as a storage does with a write under way (see ``Storage.append_messages``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

from threadline.contracts import Storage
from threadline.model import Record
from threadline.settling import settled

#: records read between two chances for a cancellation to arrive
_CHECK_EVERY = 500


class ImportStopped(Exception):
    """Raised from the records of an import whose caller was cancelled."""


async def stoppable_import(storage: Storage, records: AsyncIterable[Record]) -> int:
    """``storage.import_records(records)``; cancelled, the records end at once in
    :class:`ImportStopped`, the storage gives the import up (all or nothing), and the
    cancellation goes on once it has. An import that committed before it could be stopped
    is not undone: its count is returned, and the cancellation is dropped."""
    stopped = asyncio.Event()

    async def until_stopped() -> AsyncIterator[Record]:
        count = 0
        async for record in records:
            count += 1
            if count % _CHECK_EVERY == 0:
                await asyncio.sleep(0)  # a storage that reads all before it writes: a cancellation gets in
            if stopped.is_set():
                raise ImportStopped("the import was cancelled")
            yield record

    importing = asyncio.ensure_future(storage.import_records(until_stopped()))
    try:
        return await asyncio.shield(importing)
    except asyncio.CancelledError:
        stopped.set()
        await settled(importing)
        if importing.cancelled() or importing.exception() is not None:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return importing.result()
