"""Group commit: writes that arrive together share one transaction, and each caller is
answered only after the commit that holds its write."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite
from attrs import define, field

from threadline.plugin import settled

# One write: run inside a savepoint, so its failure undoes only itself.
Write = Callable[[aiosqlite.Connection], Awaitable[Any]]
# The statements that do writes of one kind (appends) together, as (sql, parameters).
Statements = Callable[[Sequence[Any]], list[tuple[str, Sequence[Any]]]]
# Why one batched write failed, in threadline's terms.
Explain = Callable[[aiosqlite.Connection, Any, BaseException], Awaitable[BaseException]]


# Writes are done from their callers' tasks only after this many transactions in a row held
# one write each: a caller that skipped the queue while others were queueing would split
# their group.
_ALONE_BEFORE_FAST = 8


# SQLite's primary error codes that say something of the database, not of one write
_DATABASE_ERRORS = frozenset(
    (
        sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PROTOCOL,
    )
)  # fmt: skip


def _of_the_database(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _DATABASE_ERRORS


@define
class _Pending:
    future: asyncio.Future[Any]
    write: Write | None = None
    batched: Any = None
    once: bool = False  # the write cannot be done again (it consumes its input): its own transaction


@define
class GroupCommit:
    """Owns the one write connection, opened in autocommit mode (``isolation_level=None``).
    ``write(fn)`` and ``batch(payload)`` queue work; one task commits what is queued, up to
    ``max_batch`` writes a transaction.

    While writes come one at a time, a batched write that finds the writer idle is done at
    once from its caller's task, with no hand-off to the writer task; as one statement it runs in autocommit
    mode, a transaction by itself, so an uncontended append costs one round trip to SQLite's
    thread. Once writes come together they all go through the queue, so that they keep
    sharing transactions. A transaction of batched writes alone is also one statement when
    it can be; batched writes queued with other writes are one statement in their transaction.
    If a group fails, each write is done again in its own savepoint of one transaction, so
    only the bad one fails.
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
    _busy: asyncio.Lock = field(factory=asyncio.Lock)
    _alone_in_a_row: int = _ALONE_BEFORE_FAST  # transactions of one write since the last group

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="threadline-sqlite-group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        async with self._busy:  # a write from a caller's task may still be under way
            pass

    async def write(self, write: Write, *, once: bool = False) -> Any:
        """Do ``write`` in a transaction shared with whatever else is queued. A group that fails
        is done again write by write, so ``write`` may run twice: pass ``once=True`` for one
        that cannot (an import reading its records), and it gets a transaction of its own."""
        return await self._submit(_Pending(asyncio.get_running_loop().create_future(), write=write, once=once))

    async def batch(self, payload: Any) -> None:
        idle = not self._busy.locked() and self._queue.empty()
        if self._task is not None and idle and self._alone_in_a_row >= _ALONE_BEFORE_FAST:
            async with self._busy:  # taken at once: nothing waits for it
                try:
                    await self._batch_alone(payload)
                except asyncio.CancelledError:  # SQLite's thread may still be at it: let it finish
                    await settled(asyncio.ensure_future(self.db.execute_fetchall("SELECT 1")))
                    raise
        else:
            await self._submit(_Pending(asyncio.get_running_loop().create_future(), batched=payload))

    async def alone(self, work: Write) -> Any:
        """``work`` with the connection to itself, outside any transaction (a VACUUM): every
        other write waits until it ends. Cancelled, it is waited out before the next write."""
        if self._task is None:
            raise RuntimeError("the SQLite storage is not open")
        async with self._busy:
            task = asyncio.ensure_future(work(self.db))
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                await settled(task)
                raise

    async def _batch_alone(self, payload: Any) -> None:
        try:
            await self._together([payload])
        except sqlite3.OperationalError as exc:
            raise self.translate(exc) from None
        except Exception as exc:
            raise self.translate(await self.explain(self.db, payload, exc)) from None

    async def _submit(self, pending: _Pending) -> Any:
        if self._task is None:
            raise RuntimeError("the SQLite storage is not open")
        self._queue.put_nowait(pending)
        try:
            return await asyncio.shield(pending.future)
        except asyncio.CancelledError:  # queued, it will be done: wait for it, then say cancelled
            await settled(pending.future)
            raise

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Pending] = []
            item = await self._queue.get()
            await asyncio.sleep(0)  # writers woken by the last commit are queueing: take them too
            while item is not None:
                batch.append(item)
                if len(batch) >= self.max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if batch:
                async with self._busy:
                    await self._commit(batch)
                self._alone_in_a_row = self._alone_in_a_row + 1 if len(batch) == 1 else 0

    async def _commit(self, batch: list[_Pending]) -> None:
        for pending in batch:
            if pending.once:
                await self._commit_group([pending])
        if shared := [pending for pending in batch if not pending.once]:
            await self._commit_group(shared)

    async def _commit_group(self, batch: list[_Pending]) -> None:
        try:
            try:
                results = await self._at_once(batch)
            except Exception as exc:
                if _of_the_database(exc):
                    raise  # locked, full, I/O: doing it again one by one would not help
                alone = len(batch) == 1 and batch[0].write is not None
                results = [self.translate(exc)] if alone else await self._one_by_one(batch)
        except Exception as exc:
            results = [self.translate(exc)] * len(batch)
        for pending, outcome in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _at_once(self, batch: list[_Pending]) -> list[Any]:
        """The whole group in one transaction with no savepoints: the batched writes' statements
        together, then each write in the order queued. If any fails, all of it is undone (and
        the caller does each write again in a savepoint of its own)."""
        payloads = [pending.batched for pending in batch if pending.write is None]
        writes = [pending.write for pending in batch if pending.write is not None]
        if not writes:
            await self._together(payloads)
            return [None] * len(batch)

        async def all_of_it() -> list[Any]:
            if payloads:
                await self._execute_all(self.statements(payloads))
            return [await write(self.db) for write in writes]

        outcomes = iter(await self._transaction(all_of_it))
        return [None if pending.write is None else next(outcomes) for pending in batch]

    async def _together(self, payloads: list[Any]) -> None:
        statements = self.statements(payloads)
        if len(statements) == 1:
            sql, parameters = statements[0]
            await self.db.execute(sql, parameters)  # its own transaction: all of it or none
            self.commits += 1
        else:
            await self._transaction(lambda: self._execute_all(statements))

    async def _execute_all(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        for sql, parameters in statements:
            await self.db.execute(sql, parameters)

    async def _transaction(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """``work`` in one transaction, run as a task of its own: a caller cancelled half way
        (a big append from its own task) must not leave the writer inside an open transaction."""
        task = asyncio.ensure_future(self._in_transaction(work))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await settled(task)
            raise

    async def _in_transaction(self, work: Callable[[], Awaitable[Any]]) -> Any:
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            result = await work()
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        self.commits += 1
        return result

    async def _one_by_one(self, batch: list[_Pending]) -> list[Any]:
        async def each() -> list[Any]:
            return [await self._alone(pending) for pending in batch]

        results: list[Any] = await self._transaction(each)
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
