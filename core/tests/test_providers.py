"""What provider plugins share: error mapping, retry-after, the attachment check, the
body helper, the test wire server, and a stream's own parts in ``Done``."""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import json
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from attrs import frozen

from threadline import SessionManager, errors
from threadline.builtins.echo import EchoProvider
from threadline.builtins.memory import MemoryStorage
from threadline.config import Config
from threadline.hookspecs import hookimpl
from threadline.model import Capabilities, Done, Event, File, Image, Message, Request, Role, Text, TextDelta
from threadline.providers import (
    ProviderConfig,
    check_attachments,
    data_url,
    error_for_status,
    read_stream,
    retry_after,
    send_body,
    translating,
    transport_error,
)
from threadline.testing.wire_server import HTTPReply, ReceivedRequest, WireServer, sse


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "2500", "retry-after": "9"}, 2.5),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_reads_seconds_and_milliseconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds


def test_retry_after_reads_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after({"retry-after": later}) or 0) <= 31


@pytest.mark.parametrize(
    ("status", "context", "error"),
    [
        (401, False, errors.AuthenticationError),
        (403, False, errors.AuthenticationError),
        (429, False, errors.RateLimited),
        (400, True, errors.ContextTooLong),
        (413, False, errors.ContextTooLong),
        (500, False, errors.ProviderUnavailable),
        (529, False, errors.ProviderUnavailable),
        (400, False, errors.BadRequest),
        (404, False, errors.BadRequest),
    ],
)
def test_http_failures_map_onto_the_hierarchy(status: int, context: bool, error: type[Exception]) -> None:
    mapped = error_for_status(
        "acme", status, "it went wrong", headers={"retry-after": "3"}, credentials="ACME_KEY", context_too_long=context
    )
    assert type(mapped) is error and mapped.provider == "acme" and "it went wrong" in str(mapped)
    if status in (401, 403):
        assert "ACME_KEY" in str(mapped)
    if status == 429:
        assert mapped.retry_after == 3  # type: ignore[attr-defined]


def test_a_retry_delay_from_the_body_is_used_when_no_header_gives_one() -> None:
    mapped = error_for_status("acme", 429, "slow", headers={}, credentials="k", wait=7.0)
    assert isinstance(mapped, errors.RateLimited) and mapped.retry_after == 7.0


def test_attachments_a_model_cannot_take_are_refused() -> None:
    image = Message("s", 1, Role.USER, (Image("image/png", data=b"x"),))
    pdf = Message("s", 1, Role.USER, (File("application/pdf", data=b"%PDF"),))
    text_file = Message("s", 1, Role.USER, (File("text/plain", data=b"hi"),))
    check_attachments(Capabilities(vision=True, pdf=True), [image, pdf], model="m", provider="p")
    check_attachments(Capabilities(), [text_file], model="m", provider="p")
    with pytest.raises(errors.BadRequest, match="model m does not accept images"):
        check_attachments(Capabilities(pdf=True), [pdf, image], model="m", provider="p")
    with pytest.raises(errors.BadRequest, match="does not accept PDF"):
        check_attachments(Capabilities(vision=True), [pdf], model="m", provider="p")


def test_data_url() -> None:
    assert data_url("image/png", b"\x89PNG") == "data:image/png;base64,iVBORw=="


async def test_send_body_names_what_the_sdk_needs_and_passes_the_rest() -> None:
    seen: dict[str, Any] = {}

    async def create(**kwargs: Any) -> str:
        seen.update(kwargs)
        return "ok"

    payload = {"model": "m", "stream": True, "top_k": 3, "messages": []}
    assert await send_body(create, payload, named=("model", "messages", "stream")) == "ok"
    assert seen == {"model": "m", "messages": [], "stream": True, "extra_body": {"top_k": 3}}
    assert payload == {"model": "m", "stream": True, "top_k": 3, "messages": []}  # the caller's dict is left alone


# -- translating an SDK's errors -----------------------------------------------------------


class SDKError(Exception):
    """What an SDK raises."""


def translate(exc: BaseException) -> BaseException:
    """SDKError as ProviderUnavailable; anything else unchanged, as a plugin's translate does."""
    return errors.ProviderUnavailable(str(exc), provider="acme") if isinstance(exc, SDKError) else exc


async def test_translating_raises_the_translated_error_from_the_original() -> None:
    with pytest.raises(errors.ProviderUnavailable, match="acme: boom") as raised, translating(translate):
        await asyncio.sleep(0)
        raise SDKError("boom")
    assert isinstance(raised.value.__cause__, SDKError)


@pytest.mark.parametrize(
    "original",
    [errors.RateLimited("slow down", provider="acme"), KeyError("not the SDK's"), asyncio.CancelledError()],
    ids=["a threadline error", "an error translate leaves alone", "a cancellation"],
)
def test_translating_passes_through_what_it_does_not_translate(original: BaseException) -> None:
    def translate_everything(exc: BaseException) -> BaseException:
        return exc if isinstance(exc, KeyError) else errors.BadRequest("translated")

    with pytest.raises(type(original)) as raised, translating(translate_everything):
        raise original
    assert raised.value is original and raised.value.__cause__ is None


async def test_a_translated_error_is_never_its_own_cause() -> None:
    chained = errors.ProviderUnavailable("once", provider="acme")

    def translate_to_one(exc: BaseException) -> BaseException:
        return chained

    for raised in (SDKError("first"), chained):
        with pytest.raises(errors.ProviderUnavailable) as caught, translating(translate_to_one):
            raise raised
        assert caught.value.__cause__ is not caught.value


class Chunks:
    """An SDK stream: two chunks, then a failure."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self.chunks()

    async def chunks(self) -> AsyncIterator[str]:
        yield "a"
        yield "b"
        raise SDKError("the connection broke")

    async def close(self) -> None:
        self.closed = True


class Reader:
    def feed(self, chunk: Any) -> list[Event]:
        return [TextDelta(chunk)]

    def finish(self) -> Done:
        return Done()


async def test_read_stream_translates_a_broken_stream_and_closes_it() -> None:
    source = Chunks()

    async def open_stream() -> Chunks:
        return source

    seen: list[Event] = []
    with pytest.raises(errors.ProviderUnavailable, match="the connection broke") as raised:
        async for event in read_stream(open_stream, Reader(), translate):
            seen.append(event)
    assert seen == [TextDelta("a"), TextDelta("b")] and source.closed
    assert isinstance(raised.value.__cause__, SDKError)


# -- the wire server ------------------------------------------------------------------


def fetch(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    host = url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=5)
    try:
        connection.request("POST", "/v1/things?x=1", body, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


async def test_the_wire_server_records_requests_and_answers_json() -> None:
    def answer(request: ReceivedRequest) -> HTTPReply:
        return HTTPReply.json({"echo": request.json()}, 201, {"x-request-id": "r1"})

    async with WireServer(answer) as server:
        status, headers, body = await asyncio.to_thread(fetch, server.url, b'{"a": 1}')
    assert (status, headers["x-request-id"], json.loads(body)) == (201, "r1", {"echo": {"a": 1}})
    (request,) = server.received
    assert (request.method, request.path, request.query, request.json()) == (
        "POST",
        "/v1/things",
        {"x": ["1"]},
        {"a": 1},
    )


async def test_the_wire_server_streams_events_and_can_drop_the_connection() -> None:
    events = [sse({"n": n}, event="tick") for n in range(4)]
    async with WireServer(lambda _: HTTPReply.stream(events)) as server:
        _, headers, body = await asyncio.to_thread(fetch, server.url, b"{}")
    assert headers["content-type"] == "text/event-stream"
    assert body == b"".join(events) and body.startswith(b'event: tick\ndata: {"n": 0}\n\n')

    async with WireServer(lambda _: HTTPReply.stream(events, drop_after=2)) as server:
        with pytest.raises(http.client.IncompleteRead) as broken:
            await asyncio.to_thread(fetch, server.url, b"{}")
    assert broken.value.partial == b"".join(events[:2])


# -- a stream's own parts -----------------------------------------------------------------


class SigningEcho(EchoProvider):
    """Streams like echo, then gives the reply's parts with data no delta carries."""

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        text = ""
        async for event in super().stream(request):
            if isinstance(event, TextDelta):
                text += event.text
                yield event
            elif isinstance(event, Done):
                yield Done(event.usage, parts=(Text(text, provider_data={"echo": {"signature": "s1"}}),))


async def test_a_streams_done_parts_are_what_is_stored() -> None:
    async with SessionManager(storage=MemoryStorage(), providers={"echo": SigningEcho()}) as manager:
        session = await manager.create_session()
        streamed = [event async for event in session.stream("Hello there")]
        reply = (await session.history())[-1]
    assert "".join(e.text for e in streamed if isinstance(e, TextDelta)) == "Hello there"
    assert reply.parts == (Text("Hello there", provider_data={"echo": {"signature": "s1"}}),)


# -- the default provider ----------------------------------------------------------------------


@frozen(kw_only=True)
class AcmeConfig(ProviderConfig):
    key_variables: ClassVar[tuple[str, ...]] = ("ACME_API_KEY",)

    default_model: str = "acme-1"


class Acme:
    """A provider plugin whose key comes from ACME_API_KEY (the echo provider does the talking)."""

    @hookimpl
    def threadline_register_providers(self, register: Any) -> None:
        register("acme", lambda config: EchoProvider(), config=AcmeConfig)


@pytest.mark.parametrize(
    ("environment", "config", "default"),
    [
        ({}, {}, "echo"),
        ({"ACME_API_KEY": "k"}, {}, "acme"),
        ({}, {"providers": {"acme": {"api_key": "k"}}}, "acme"),
        ({}, {"providers": {"acme": {"base_url": "http://localhost:11434/v1"}}}, "acme"),
        ({"ACME_API_KEY": "k"}, {"defaults": {"provider": "echo"}}, "echo"),
    ],
)
async def test_with_no_default_provider_the_first_with_a_key_is_used(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], config: dict[str, Any], default: str
) -> None:
    monkeypatch.setenv("THREADLINE_PLUGINS", "echo,memory")
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    async with SessionManager(Config.from_dict(config), storage=MemoryStorage(), plugins=[Acme()]) as manager:
        assert manager.default_provider == default
        assert (await manager.create_session()).record.provider == default


class _Request:
    def __init__(self, url: str) -> None:
        self.url = url


class _Broken(Exception):
    """A connection error as the SDKs raise one: the request it was for attached."""

    def __init__(self, url: str) -> None:
        super().__init__("All connection attempts failed")
        self.request = _Request(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://me:sk-secret@proxy.example:8443/v1/chat?key=sk-secret&x=1", "https://proxy.example:8443/v1/chat"),
        ("http://127.0.0.1:11434/v1/responses", "http://127.0.0.1:11434/v1/responses"),
    ],
)
def test_a_failed_connection_names_the_url_without_its_user_or_query(url: str, shown: str) -> None:
    error = transport_error(_Broken(url), "p", timeout=5, timeouts=(), broken=(_Broken,))
    assert str(error) == f"p: the connection to {shown} failed: All connection attempts failed"
    stalled = transport_error(_Broken(url), "p", timeout=5, timeouts=(_Broken,), broken=())
    assert str(stalled) == f"p: no reply from {shown} within 5s ([providers.p] timeout)"


def test_a_failed_connection_without_its_request_names_the_api() -> None:
    error = transport_error(ConnectionError("refused"), "p", timeout=5, timeouts=(), broken=(ConnectionError,))
    assert str(error) == "p: the connection to the API failed: refused"
