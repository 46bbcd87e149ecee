"""Group commit: writes that arrive together share one transaction, and each caller is
answered only after the commit that holds its write."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite
from attrs import define, field

# One write: run inside a savepoint, so its failure undoes only itself.
Write = Callable[[aiosqlite.Connection], Awaitable[Any]]
# The statements that do writes of one kind (appends) together, as (sql, parameters).
Statements = Callable[[Sequence[Any]], list[tuple[str, Sequence[Any]]]]
# Why one batched write failed, in threadline's terms.
Explain = Callable[[aiosqlite.Connection, Any, BaseException], Awaitable[BaseException]]


@define
class _Pending:
    future: asyncio.Future[Any]
    write: Write | None = None
    batched: Any = None


@define
class GroupCommit:
    """Owns the one write connection (opened with ``isolation_level="IMMEDIATE"``).
    ``write(fn)`` and ``batch(payload)`` queue work; one task commits what is queued, up to
    ``max_batch`` writes a transaction.

    A transaction of batched writes alone is the fast path. When their statements are one
    statement (atomic by itself), it is sent together with the COMMIT, without waiting for
    the answer in between; the statement opens the transaction itself. So one append costs
    one round trip to SQLite's thread. If the group fails, it is rolled back and each write
    is done again in its own savepoint, so only the bad one fails.
    """

    db: aiosqlite.Connection
    statements: Statements
    explain: Explain
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
        stopping = False
        while not stopping:
            batch: list[_Pending] = []
            item = await self._queue.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= self.max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            if all(pending.write is None for pending in batch):
                try:
                    await self._together([p.batched for p in batch])
                    results: list[Any] = [None] * len(batch)
                except sqlite3.OperationalError:
                    raise  # locked or I/O: doing it again one by one would not help
                except Exception:
                    results = await self._one_by_one(batch)
            else:
                results = await self._one_by_one(batch)
        except Exception as exc:
            results = [self.translate(exc)] * len(batch)
        for pending, outcome in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _together(self, payloads: list[Any]) -> None:
        statements = self.statements(payloads)
        if len(statements) == 1:
            # queued back to back on the connection's thread: one round trip, not two
            sql, parameters = statements[0]
            done = await asyncio.gather(self.db.execute(sql, parameters), self.db.commit(), return_exceptions=True)
            failure = next((outcome for outcome in done if isinstance(outcome, BaseException)), None)
            if failure is not None:
                await self.db.rollback()
                raise failure
            self.commits += 1
        else:
            await self._transaction(self._execute_all(statements))

    async def _execute_all(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        for sql, parameters in statements:
            await self.db.execute(sql, parameters)

    async def _transaction(self, work: Awaitable[Any]) -> Any:
        try:
            result = await work
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        self.commits += 1
        return result

    async def _one_by_one(self, batch: list[_Pending]) -> list[Any]:
        async def each() -> list[Any]:
            await self.db.execute("BEGIN IMMEDIATE")
            return [await self._alone(pending) for pending in batch]

        results: list[Any] = await self._transaction(each())
        return results

    async def _alone(self, pending: _Pending) -> Any:
        await self.db.execute("SAVEPOINT one_write")
        try:
            if pending.write is not None:
                result = await pending.write(self.db)
            else:
                await self._execute_all(self.statements([pending.batched]))
                result = None
        except Exception as exc:
            await self.db.execute("ROLLBACK TO one_write")
            await self.db.execute("RELEASE one_write")
            if pending.write is None:
                return self.translate(await self.explain(self.db, pending.batched, exc))
            return self.translate(exc)
        await self.db.execute("RELEASE one_write")
        return result
