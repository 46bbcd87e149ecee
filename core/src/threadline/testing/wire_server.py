"""A local HTTP/1.1 server for provider plugin tests: the real SDK talks to it over TCP on
127.0.0.1, it records every request, and it answers with what the test scripted, in the
provider's wire format (JSON bodies, SSE streams), or fails the way servers fail: an error
status, a body that is not JSON, a connection dropped mid-stream, an answer that never comes.

::

    async with WireServer(lambda request: HTTPReply.json({"ok": True})) as server:
        client = SomeSDK(base_url=server.url)
        ...
        assert server.received[0].json()["model"] == "m"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

import attrs
from attrs import define, field, frozen

from threadline.builtins.echo import Reply

__all__ = ["HTTPReply", "ReceivedRequest", "ScriptedAPI", "WireServer", "pieces", "sse"]


@frozen
class ReceivedRequest:
    """One request as it arrived: header names are lower-cased."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def json(self) -> Any:
        return json.loads(self.body)


@frozen
class HTTPReply:
    """What the server answers. ``chunks`` are written one at a time (chunked encoding),
    ``chunk_delay`` seconds apart; ``drop_after`` closes the connection abruptly after that
    many chunks; ``stall`` waits that long before answering at all."""

    status: int = 200
    headers: Mapping[str, str] = field(factory=dict)
    chunks: tuple[bytes, ...] = ()
    chunk_delay: float = 0.0
    drop_after: int | None = None
    stall: float = 0.0

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None, **options: Any) -> HTTPReply:
        body = json.dumps(data).encode()
        return cls(status, {"content-type": "application/json", **(headers or {})}, (body,), **options)

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type: str = "application/json") -> HTTPReply:
        return cls(status, {"content-type": content_type}, (body,))

    @classmethod
    def stream(cls, chunks: Iterable[bytes], **options: Any) -> HTTPReply:
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        return cls(200, headers, tuple(chunks), **options)


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: ``data`` as JSON (a ``str`` is sent as it is)."""
    payload = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


Responder = Callable[[ReceivedRequest], HTTPReply | Awaitable[HTTPReply]]
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


@define
class WireServer:
    """Serves ``responder(request)`` for every request, on 127.0.0.1 and a free port."""

    responder: Responder
    received: list[ReceivedRequest] = field(factory=list)
    _server: asyncio.Server | None = None
    _connections: set[asyncio.Task[None]] = field(factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> WireServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                self.received.append(request)
                reply = self.responder(request)
                if not isinstance(reply, HTTPReply):
                    reply = await reply
                if not await _write_reply(writer, reply):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is closing: this connection is done
        finally:
            self._connections.discard(task)
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head.strip():
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.readexactly(int(headers.get("content-length", 0)))
    return ReceivedRequest(method, target, headers, body)


async def _write_reply(writer: asyncio.StreamWriter, reply: HTTPReply) -> bool:
    """Write ``reply``; ``False`` when the connection was dropped on purpose."""
    if reply.stall:
        await asyncio.sleep(reply.stall)
    reason = _REASONS.get(reply.status, "Status")
    head = [f"HTTP/1.1 {reply.status} {reason}", "transfer-encoding: chunked"]
    head += [f"{name}: {value}" for name, value in reply.headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    for number, chunk in enumerate(reply.chunks):
        if reply.drop_after is not None and number >= reply.drop_after:
            break
        if not chunk:
            continue
        if number and reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
    if reply.drop_after is not None and reply.drop_after < len(reply.chunks) + 1:
        await writer.drain()
        writer.transport.abort()
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


def pieces(text: str, size: int) -> list[str]:
    """``text`` in pieces of ``size`` characters, as a stream sends it (one empty piece for "")."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@define
class ScriptedAPI:
    """A provider's API for tests, on a :class:`WireServer`: it answers each request with the
    next scripted :class:`~threadline.testing.Reply` (then ``default_reply``), in the wire
    format a subclass renders in :meth:`answer`. A raw :class:`HTTPReply` queued with
    :meth:`answer_next` comes first. The ``malformed`` and ``dropped`` errors are played
    here, for every API alike: a body cut off before it is JSON, and the reply rendered
    whole but the connection broken off half way through it."""

    #: what :attr:`url` adds to the server's address (``/v1``: where the SDK's base URL points)
    path: ClassVar[str] = ""
    #: characters a streamed text chunk carries
    chunk_size: int = 4
    default_reply: Reply = field(factory=lambda: Reply(text="Hello from the fake API."))
    replies: deque[Reply] = field(factory=deque)
    raw: deque[HTTPReply] = field(factory=deque)
    server: WireServer = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.server = WireServer(self.respond)

    async def __aenter__(self) -> Self:
        await self.server.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.server.close()

    @property
    def url(self) -> str:
        return self.server.url + self.path

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self.server.received

    def last_body(self) -> str:
        """The body of the last request, as text (a provider contract's ``received``)."""
        return self.requests[-1].body.decode("utf-8", "replace") if self.requests else ""

    def text_pieces(self, text: str) -> list[str]:
        """The pieces a streamed reply's text comes in: ``chunk_size`` characters each.
        Override to stream as a model's tokenizer would (a word and its space)."""
        return pieces(text, self.chunk_size)

    def script(self, replies: Iterable[Reply]) -> None:
        self.replies.extend(replies)

    def answer_next(self, reply: HTTPReply) -> None:
        self.raw.append(reply)

    def respond(self, request: ReceivedRequest) -> HTTPReply:
        if self.raw:
            return self.raw.popleft()
        if (refused := self.refuse(request)) is not None:
            return refused
        reply = self.replies.popleft() if self.replies else self.default_reply
        if reply.error == "malformed":
            return HTTPReply.raw(b'{"id": "cut-off", "object": ')
        if reply.error == "dropped":
            whole = self.answer(request, attrs.evolve(reply, error=None))
            return attrs.evolve(whole, drop_after=len(whole.chunks) // 2)
        return self.answer(request, reply)

    def refuse(self, request: ReceivedRequest) -> HTTPReply | None:
        """An error to answer before a scripted reply is taken (a resource the API does not
        have, say); ``None`` to go on."""
        return None

    def answer(self, request: ReceivedRequest, reply: Reply) -> HTTPReply:
        """``reply`` (text, tool calls, or one of the error kinds but ``malformed`` and
        ``dropped``) in the API's wire format, as JSON or as a stream as ``request`` asks."""
        raise NotImplementedError
