"""Scripts, pipelined: the Lua scripts a storage runs (every write, and the reads of messages
and listings) go to the server in batches, all that callers asked for while the previous
batch was on the wire in one round trip, in the order they were asked for. Redis runs each
script whole; a batch is not a transaction.

On one server the batches travel over a connection of their own, which skips redis-py's
per-command pool checks; on Redis Cluster over redis-py's cluster pipeline, which sends
each script to the node of its slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from attrs import define, field, frozen
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

from threadline.plugin import settled

T = TypeVar("T")

#: what a batch's command can end in besides a reply: the error the caller gets
Failure = RedisError | RedisClusterException


@define
class Command:
    """A script's call as it goes on the wire, the key it runs on, and whether it writes."""

    args: tuple[Any, ...]
    key: str
    writes: bool


class NotReplicated(RedisError):
    """A write the server ran, but fewer replicas than asked for confirmed having it."""


@define(eq=False)
class _Request:
    script: AsyncScript
    key: str
    args: Sequence[str | int | bytes]
    writes: bool
    reply: asyncio.Future[Any]
    #: NOSCRIPT came back: the server lost its scripts (a restart, SCRIPT FLUSH), so the
    #: script's whole text goes with it (EVAL caches it again for the EVALSHAs after)
    whole: bool = False
    #: done once the batch it went in has its replies
    settled: asyncio.Future[None] | None = field(default=None)

    def command(self) -> Command:
        return _command(self.script, self.key, self.args, self.writes, whole=self.whole)


def _command(
    script: AsyncScript, key: str, args: Sequence[str | int | bytes], writes: bool, *, whole: bool = False
) -> Command:
    """``script`` by its SHA, or (``whole``) by its text, which the server caches again."""
    call = ("EVAL", script.script) if whole else ("EVALSHA", script.sha)
    return Command((*call, 1, key, *args), key, writes)


class Transport(Protocol):
    async def send(self, commands: list[Command]) -> list[Any]:
        """A reply for each command, or the ``Failure`` it ended in, in order. Cancelled, it
        lets the cancellation out only once it is settled which commands ran."""

    async def close(self) -> None: ...


class ScriptQueue:
    """The script queue of one storage.

    A caller that finds no batch on the wire sends its own script at once, from its own task,
    the quickest way; those that come while a batch is on the wire wait in the queue, which
    a task of the queue's own sends as the next batch."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._queue: list[_Request] = []
        #: a batch is on the wire: a caller's own, or the flusher's
        self._busy = False
        #: set while no batch is on the wire and none waits
        self._idle = asyncio.Event()
        self._idle.set()
        #: the task sending the queue, held here: the loop keeps only a weak reference to it
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self, script: AsyncScript, key: str, args: Sequence[str | int | bytes], *, writes: bool) -> Any:
        """``script``'s reply, or the ``Failure`` it ended in, raised. A cancelled caller
        learns of its cancellation only once it is settled whether the script ran."""
        if self._closed:
            raise RuntimeError("the Redis storage is closed")
        whole = False
        if not self._busy:
            self._start()
            try:
                [reply] = await self._transport.send([_command(script, key, args, writes)])
            finally:
                self._next()
            if not isinstance(reply, NoScriptError):
                return _outcome(reply)
            whole = True
        future = asyncio.get_running_loop().create_future()
        return await self._queued(_Request(script, key, args, writes, future, whole))

    async def _queued(self, request: _Request) -> Any:
        """``request``'s reply, once a batch of the queue carried it: at once if it would have
        to wait for no other."""
        self._queue.append(request)
        if not self._busy:
            self._start()
            self._next()
        try:
            return await request.reply
        except asyncio.CancelledError:
            if request.settled is not None:
                await settled(request.settled)
            elif request in self._queue:  # still waiting its turn: it never will
                self._queue.remove(request)
            raise

    def _start(self) -> None:
        self._busy = True
        self._idle.clear()

    def _next(self) -> None:
        """After a batch: send the queue, if anything waits in it."""
        if self._queue:
            self._flusher = asyncio.ensure_future(self._flush())
        else:
            self._busy = False
            self._idle.set()

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                done = asyncio.get_running_loop().create_future()
                for request in batch:
                    request.settled = done
                try:
                    replies = await self._transport.send([r.command() for r in batch])
                except BaseException as exc:  # cancelled with the loop: no reply will come
                    for request in self._queue:
                        request.settled = done
                    batch += self._queue
                    self._queue = []
                    replies = [RedisConnectionError(f"the batch was cut off ({exc!r})")] * len(batch)
                    raise
                finally:
                    self._answer(batch, replies)
                    done.set_result(None)
        finally:
            self._busy, self._flusher = False, None
            self._idle.set()

    def _answer(self, batch: list[_Request], replies: list[Any]) -> None:
        for request, reply in zip(batch, replies, strict=True):
            if request.reply.done():  # its caller was cancelled; it waited for this batch
                continue
            if isinstance(reply, NoScriptError) and not request.whole:
                request.whole, request.settled = True, None
                self._queue.append(request)
            elif isinstance(reply, Exception):
                request.reply.set_exception(reply)
            else:
                request.reply.set_result(reply)

    async def close(self) -> None:
        """Take no more scripts; once those on the wire and queued have their replies, close
        the transport."""
        self._closed = True
        await self._idle.wait()
        await self._transport.close()


def _outcome(reply: Any) -> Any:
    if isinstance(reply, Exception):
        raise reply
    return reply


async def whole(work: Awaitable[T]) -> T:
    """``work``, which a cancellation does not cut short: the caller learns of the
    cancellation only once ``work`` is done."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await settled(task)
        raise


#: seconds without a batch after which the connection is checked before the next: less than
#: any restart of the server takes, so a script is never sent into a connection it closed
_IDLE = 0.05
#: asyncio's default high-water mark of a transport's write buffer: a write no larger, to
#: an empty buffer, is taken whole at once, so no cancellation can cut it
_BUFFER = 64 * 1024


@frozen
class Replicas:
    """Writes wait (WAIT) until ``count`` replicas have them, ``seconds`` at most; one that
    fewer confirm fails with :class:`NotReplicated`. ``count`` 0: writes do not wait."""

    count: int
    seconds: float

    def wait(self) -> tuple[Any, ...]:
        return ("WAIT", self.count, max(1, round(self.seconds * 1000)))

    def confirmed(self, commands: list[Command], replies: list[Any], waits: dict[str, Any]) -> list[Any]:
        """``replies``, each of a write whose key's WAIT (``waits``: key -> its reply) fell
        short made a ``NotReplicated``."""
        return [
            (command.writes and not isinstance(reply, Exception) and self._short(waits[command.key])) or reply
            for command, reply in zip(commands, replies, strict=True)
        ]

    def _short(self, reply: Any) -> NotReplicated | None:
        if isinstance(reply, int) and reply >= self.count:
            return None
        had = reply if isinstance(reply, int) else f"none answered ({reply})"
        return NotReplicated(
            f"written on the master, but {self.count} replicas were asked to confirm it within "
            f"{self.seconds:g} s and {had} did: a failover now could lose it"
        )


def _pack(commands: list[tuple[Any, ...]]) -> list[bytes]:
    """``commands`` in the protocol's form (RESP arrays of bulk strings), as hiredis packs
    them: redis-py's own packer, for any argument and any encoding, takes twice as long."""
    packed = []
    for command in commands:
        parts = [b"*%d\r\n" % len(command)]
        for argument in command:
            data = argument if type(argument) is bytes else str(argument).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        packed.append(b"".join(parts))
    return packed


class OwnConnection:
    """Batches over one connection, which is opened again after it fails.

    Each reply is waited for ``timeout`` seconds at most, as ``socket_timeout`` sets for the
    pool's connections (timed here, where redis-py would start a task for every write)."""

    def __init__(self, connection: AbstractConnection, timeout: float, replicas: Replicas) -> None:
        self._connection = connection
        self._timeout = timeout
        self._replicas = replicas
        #: the loop's time when the last batch was answered
        self._used = 0.0
        #: the read in progress took too long: its connection is being closed, by this task
        self._expired = False
        self._closing: asyncio.Future[None] | None = None
        self._pack: Callable[[list[tuple[Any, ...]]], list[bytes]] = _pack
        if HIREDIS_AVAILABLE:
            from hiredis import pack_command

            self._pack = lambda commands: [pack_command(command) for command in commands]

    async def send(self, commands: list[Command]) -> list[Any]:
        wire = [command.args for command in commands]
        if not (self._replicas.count and any(command.writes for command in commands)):
            return await self._send(wire)
        replies = await self._send([*wire, self._replicas.wait()])  # it covers every write before it
        waits = dict.fromkeys((command.key for command in commands), replies.pop())
        return self._replicas.confirmed(commands, replies, waits)

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        connection = self._connection
        try:
            if connection.is_connected and asyncio.get_running_loop().time() - self._used > _IDLE:
                await self._drop_if_closed()
            if not connection.is_connected:
                async with asyncio.timeout(self._timeout):  # its handshake too: this connection has no socket_timeout
                    await connection.connect()  # type: ignore[no-untyped-call]  # cancelled, it closes again: nothing sent
            packed = self._pack(commands)
            if sum(map(len, packed)) > _BUFFER:  # the write could wait for room, and be cut there
                return await whole(self._exchange(packed, len(commands)))
            await connection.send_packed_command(packed, check_health=False)
        except (RedisError, OSError, TimeoutError) as exc:
            return await self._lost(exc, len(commands))
        replies: list[Any] = []
        try:
            await self._read(replies, len(commands))
        except asyncio.CancelledError:  # the parser keeps what it has: read the rest, then go
            await settled(asyncio.ensure_future(self._read(replies, len(commands))))
            raise
        self._used = asyncio.get_running_loop().time()
        return replies

    async def _drop_if_closed(self) -> None:
        """Close the connection if the server closed its end since the last batch (its idle
        ``timeout``, a restart, a dropped NAT entry), or anything is waiting to be read on it:
        a script sent into it would fail though it never ran. It costs no system call."""
        connection = self._connection
        check = getattr(connection, "can_read", None) or connection.can_read_destructive  # redis-py < 8
        try:
            stale = await check()
        except (RedisError, OSError):
            stale = True
        if stale:
            await connection.disconnect(nowait=True)

    async def _exchange(self, packed: list[bytes], count: int) -> list[Any]:
        replies: list[Any] = []
        try:
            async with asyncio.timeout(self._timeout):  # a server that takes nothing in fails it
                await self._connection.send_packed_command(packed, check_health=False)
        except (RedisError, OSError, TimeoutError) as exc:
            return await self._lost(exc, count)
        await self._read(replies, count)
        return replies

    async def _read(self, replies: list[Any], count: int) -> None:
        """Read replies until there are ``count``; cancelled, it can be called again to go on.

        A reply that takes longer than the timeout closes the connection (a timer, cheaper
        than ``asyncio.timeout``'s cancellation of the task), which ends the read."""
        connection = self._connection
        loop = asyncio.get_running_loop()
        timer = loop.call_at(loop.time() + self._timeout, self._expire)
        try:
            while len(replies) < count:
                if replies:
                    timer.cancel()
                    timer = loop.call_at(loop.time() + self._timeout, self._expire)
                try:
                    replies.append(await connection.read_response(disconnect_on_error=False))
                except ResponseError as exc:  # a reply that is an error: the others follow
                    replies.append(exc)
        except (RedisError, OSError) as exc:
            lost = RedisTimeoutError(f"Timeout: no reply within {self._timeout:g} s") if self._expired else exc
            replies.extend(await self._lost(lost, count - len(replies)))
        finally:
            timer.cancel()
            self._expired = False

    def _expire(self) -> None:
        self._expired = True
        self._closing = asyncio.ensure_future(self._connection.disconnect(nowait=True))

    async def _lost(self, exc: BaseException, count: int) -> list[Failure]:
        """The connection failed: closed, so the next batch opens it anew; each of ``count``
        commands failed with ``exc``, whether they ran or not unknown."""
        await self._connection.disconnect(nowait=True)
        lost = exc if isinstance(exc, RedisError) else RedisConnectionError(f"{type(exc).__name__}: {exc}")
        return [lost] * count

    async def close(self) -> None:
        await self._connection.disconnect()


class ClusterPipeline:
    """Batches over redis-py's cluster pipeline: each script to its slot's node, and a WAIT
    after a node's writes."""

    def __init__(self, client: RedisCluster, replicas: Replicas) -> None:
        self._client = client
        self._replicas = replicas

    async def send(self, commands: list[Command]) -> list[Any]:
        pipeline = self._client.pipeline()
        for command in commands:
            pipeline.execute_command(*command.args)
        # each write's node as it is now: a write redirected to another (a failover, a slot
        # moved) is confirmed by this one's WAIT, which then fails or falls short
        node_of = {c.key: self._client.get_node_from_key(c.key) for c in commands if c.writes and self._replicas.count}
        nodes = {node.name: node for node in node_of.values() if node is not None}
        for node in nodes.values():
            pipeline.execute_command(*self._replicas.wait(), target_nodes=node)
        try:
            replies = [_answered(r) for r in await whole(pipeline.execute(raise_on_error=False))]
        except (RedisError, RedisClusterException) as exc:
            return [exc] * len(commands)
        if not node_of:
            return replies
        by_node = dict(zip(nodes, replies[len(commands) :], strict=True))
        waits = {key: None if node is None else by_node[node.name] for key, node in node_of.items()}
        return self._replicas.confirmed(commands, replies[: len(commands)], waits)

    async def close(self) -> None:
        """The client's pools are closed with it."""


def _answered(reply: Any) -> Any:
    """``reply``; none at all (every script returns something) if redis-py's cluster pipeline
    lost the command to a node that failed, and then a failure."""
    return RedisConnectionError("the command got no reply: its node failed") if reply is None else reply
