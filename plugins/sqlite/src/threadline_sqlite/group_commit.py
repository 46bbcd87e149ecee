"""Group commit: writes that arrive together share one transaction, and each caller is
answered only after the commit that holds its write."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite
from attrs import define, field

# One write: run alone inside a savepoint, so its failure undoes only itself.
Write = Callable[[aiosqlite.Connection], Awaitable[Any]]
# Writes of one kind run together: the handler returns a result or an exception for each.
BatchHandler = Callable[[aiosqlite.Connection, Sequence[Any]], Awaitable[list[Any]]]


@define
class _Pending:
    future: asyncio.Future[Any]
    write: Write | None = None
    batched: Any = None


@define
class GroupCommit:
    """Owns the one write connection. ``write(fn)`` and ``batch(payload)`` queue work; a
    single task commits whatever is queued, up to ``max_batch`` writes a transaction."""

    db: aiosqlite.Connection
    handler: BatchHandler
    translate: Callable[[BaseException], BaseException]
    max_batch: int = 512
    #: transactions committed so far (each may hold many writes)
    commits: int = 0
    _queue: asyncio.Queue[_Pending | None] = field(factory=asyncio.Queue)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="threadline-sqlite-group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def write(self, write: Write) -> Any:
        return await self._submit(_Pending(asyncio.get_running_loop().create_future(), write=write))

    async def batch(self, payload: Any) -> Any:
        return await self._submit(_Pending(asyncio.get_running_loop().create_future(), batched=payload))

    async def _submit(self, pending: _Pending) -> Any:
        if self._task is None:
            raise RuntimeError("the SQLite storage is not open")
        await self._queue.put(pending)
        # the write happens even if the caller is cancelled now: it is already queued
        return await asyncio.shield(pending.future)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    await self._commit(batch)
                    return
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        results: dict[int, Any] = {}
        try:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                await self._apply(batch, results)
                await self.db.commit()
                self.commits += 1
            except BaseException:
                await self.db.rollback()
                raise
        except Exception as exc:
            error = self.translate(exc)
            results = {id(pending): error for pending in batch}
        for pending in batch:
            outcome = results.get(id(pending))
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _apply(self, batch: list[_Pending], results: dict[int, Any]) -> None:
        """Run the writes in the order they came; consecutive batched writes run together."""
        run: list[_Pending] = []
        for pending in [*batch, None]:
            if pending is not None and pending.write is None:
                run.append(pending)
                continue
            if run:
                outcomes = await self.handler(self.db, [p.batched for p in run])
                results.update((id(p), outcome) for p, outcome in zip(run, outcomes, strict=True))
                run = []
            if pending is not None:
                results[id(pending)] = await self._alone(pending.write)  # type: ignore[arg-type]

    async def _alone(self, write: Write) -> Any:
        await self.db.execute("SAVEPOINT one_write")
        try:
            result = await write(self.db)
        except Exception as exc:
            await self.db.execute("ROLLBACK TO one_write")
            await self.db.execute("RELEASE one_write")
            return self.translate(exc)
        await self.db.execute("RELEASE one_write")
        return result
