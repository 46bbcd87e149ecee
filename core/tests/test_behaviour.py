"""What a user of threadline sees, run through both APIs: each test takes ``connect``, which opens
an async ``SessionManager`` or a ``threadline.sync.SessionManager``. The sync one is driven from
worker threads through :class:`Threaded`, which gives it the async API's shape, so that one test
body states the behaviour once for both."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import threadline
import threadline.sync
from threadline import (
    ConfigError,
    Done,
    HistoryError,
    MessageStatus,
    ProviderUnavailable,
    RateLimited,
    Role,
    SessionArchived,
    SessionManager,
    SessionNotFound,
    TextDelta,
)
from threadline.builtins.echo import EchoProvider, Reply, ScriptedToolCall
from threadline.builtins.memory import MemoryStorage

#: the methods of the async API that give an async iterator (the sync one's give a Stream)
STREAMS = frozenset({"stream", "regenerate_stream", "events"})
END = object()


class Threaded:
    """A ``threadline.sync`` object in the shape of its async counterpart ``shape``: what is a
    coroutine method there is called here in a worker thread and awaited; a stream there is
    iterated here a step per worker-thread call; anything else is read as it is. A sync
    ``Session`` that comes back is seen the same way."""

    def __init__(self, target: object, shape: type) -> None:
        self._target = target
        self._shape = shape

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in STREAMS:
            return lambda *args, **kwargs: ThreadedStream(value(*args, **kwargs))
        if inspect.iscoroutinefunction(getattr(self._shape, name)):
            return functools.partial(in_thread, value)
        return value


async def in_thread(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = await asyncio.to_thread(method, *args, **kwargs)
    return Threaded(result, threadline.Session) if isinstance(result, threadline.sync.Session) else result


class ThreadedStream:
    """A sync ``Stream`` as an async iterator, each step in a worker thread."""

    def __init__(self, stream: Iterator[Any]) -> None:
        self._stream = stream

    def __aiter__(self) -> ThreadedStream:
        return self

    async def __anext__(self) -> Any:
        event = await asyncio.to_thread(next, self._stream, END)
        if event is END:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        assert isinstance(self._stream, threadline.sync.Stream)
        await asyncio.to_thread(self._stream.close)


@contextlib.asynccontextmanager
async def open_sync(**arguments: Any) -> AsyncIterator[Any]:
    manager = await asyncio.to_thread(threadline.sync.SessionManager, **arguments)
    await asyncio.to_thread(manager.open)
    try:
        yield Threaded(manager, SessionManager)
    finally:
        await asyncio.to_thread(manager.close)


Connect = Callable[..., contextlib.AbstractAsyncContextManager[SessionManager]]


@pytest.fixture(params=["async", "sync"])
def connect(request: pytest.FixtureRequest) -> Connect:
    """Opens a manager of the API under test: ``async with connect(storage=...) as tl:``."""
    return SessionManager if request.param == "async" else open_sync


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def echo() -> EchoProvider:
    return EchoProvider()


@pytest.fixture
async def tl(connect: Connect, storage: MemoryStorage, echo: EchoProvider) -> AsyncIterator[SessionManager]:
    async with connect(storage=storage, providers={"echo": echo}) as manager:
        yield manager


# -- conversation -----------------------------------------------------------------------------


async def test_a_reply_is_stored_and_a_new_manager_reads_it_back(connect: Connect, storage: MemoryStorage) -> None:
    async with connect(storage=storage) as tl:
        session = await tl.create_session(user_id="ann", system_prompt="Be brief.")
        reply = await session.send("Hello there", max_tokens=200)
        assert (reply.role, reply.text, reply.seq, reply.provider) == (Role.ASSISTANT, "Hello there", 2, "echo")
        assert (await session.history())[-1] == reply
    async with connect(storage=storage) as tl:
        again = await tl.get_session(session.id)
        assert [m.text for m in await again.history()] == ["Hello there", "Hello there"]
        await again.send("still here")
        assert again.record.message_count == 4
        assert again.title == "Hello there"


async def test_a_stream_yields_deltas_then_done_with_the_stored_reply(tl: SessionManager) -> None:
    session = await tl.create_session()
    events = [event async for event in session.stream("a longer message to stream")]
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) > 1 and "".join(d.text for d in deltas) == "a longer message to stream"
    done = events[-1]
    assert isinstance(done, Done) and done.message is not None
    assert done.message == (await session.history())[-1]


async def test_a_stream_broken_off_stores_the_reply_so_far_as_incomplete(tl: SessionManager) -> None:
    session = await tl.create_session()
    async with contextlib.aclosing(session.stream("a long enough reply to come in pieces")) as events:
        async for event in events:
            first = event
            break
    assert isinstance(first, TextDelta)
    _, reply = await session.history()
    assert (reply.text, reply.status) == (first.text, MessageStatus.INCOMPLETE)
    assert (await session.send("next")).seq == 4  # the session is free for the next turn


async def test_options_reach_the_provider_from_each_kind_of_turn(tl: SessionManager, echo: EchoProvider) -> None:
    session = await tl.create_session()
    options: dict[str, Any] = {"max_tokens": 2, "temperature": 0.2, "stop": ["X"], "options": {"seed": 7}}
    await session.send("two three four", **options)
    assert (await session.history(limit=1))[0].text == "two three"
    _ = [event async for event in session.stream("five six seven", **options)]
    await session.regenerate(model="echo-2", **options)
    _ = [event async for event in session.regenerate_stream(model="echo-3", **options)]
    assert [request.model for request in echo.requests] == [None, None, "echo-2", "echo-3"]
    for request in echo.requests:
        assert (request.options.max_tokens, request.options.temperature, request.options.stop) == (2, 0.2, ("X",))
        assert dict(request.options.extra) == {"seed": 7}


@attrs.frozen
class City:
    name: str
    population: int


async def test_structured_output_is_read_into_the_type_asked_for(tl: SessionManager, echo: EchoProvider) -> None:
    session = await tl.create_session()
    echo.script([Reply(text='{"name": "Lisbon"}'), Reply(text='{"name": "Lisbon", "population": 545000}')])
    assert await session.send("The largest city of Portugal?", output=City) == City("Lisbon", 545000)
    assert len(await session.history()) == 4  # the reply that did not match, and what was wrong with it


async def test_search_finds_the_stored_messages(tl: SessionManager) -> None:
    session = await tl.create_session(user_id="ann")
    await session.send("The quick brown fox")
    hits = await tl.search("quick FOX", user_id="ann")
    assert sorted(hit.seq for hit in hits) == [1, 2] and {hit.session_id for hit in hits} == {session.id}
    with pytest.raises(ConfigError, match="nothing to search for"):
        await tl.search("***")


async def test_tools_run_between_calls(connect: Connect, echo: EchoProvider) -> None:
    @threadline.tool
    def get_weather(city: str) -> dict[str, Any]:
        """Current weather for a city."""
        return {"city": city, "temp_c": 21}

    async with connect(storage=MemoryStorage(), providers={"echo": echo}) as tl:
        session = await tl.create_session(tools=[get_weather])
        echo.script([Reply(tool_calls=(ScriptedToolCall("get_weather", {"city": "Lisbon"}),))])
        reply = await session.send("Weather in Lisbon?")
        assert reply.text == 'tool results: {"city": "Lisbon", "temp_c": 21}'
        assert [m.role for m in await session.history()] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]


# -- errors -----------------------------------------------------------------------------------


async def test_a_provider_error_comes_with_its_type_and_marks_the_message(
    tl: SessionManager, echo: EchoProvider
) -> None:
    session = await tl.create_session()
    echo.script([Reply(error="rate_limited", retry_after=3)])
    with pytest.raises(RateLimited) as raised:
        await session.send("first try")
    assert raised.value.retry_after == 3
    (stored,) = await session.history()
    assert (stored.text, stored.status) == ("first try", MessageStatus.FAILED)


async def test_a_stream_that_breaks_raises_while_iterated(tl: SessionManager, echo: EchoProvider) -> None:
    session = await tl.create_session()
    echo.script([Reply(text="a reply that breaks off half way", error="dropped")])
    seen = []
    with pytest.raises(ProviderUnavailable, match="broke off"):
        async for event in session.stream("hi"):
            seen.append(event)
    _, reply = await session.history()
    assert reply.status is MessageStatus.INCOMPLETE and reply.text == "".join(e.text for e in seen)


async def test_refusals_come_with_their_types(tl: SessionManager) -> None:
    with pytest.raises(SessionNotFound):
        await tl.get_session("nowhere")
    with pytest.raises(ConfigError, match="nowhere"):
        await tl.create_session(provider="nowhere")
    with pytest.raises(ConfigError, match="nothing to vacuum"):
        await tl.vacuum()
    with pytest.raises(ConfigError, match="gives no events"):
        tl.events()
    session = await tl.create_session()
    with pytest.raises(ConfigError, match="nowhere"):
        session.stream("hi", provider="nowhere")
    with pytest.raises(HistoryError):
        await session.undo()
    with pytest.raises(TypeError, match="cannot update status"):
        await session.update(status="archived")


async def test_an_archived_session_refuses_a_turn_and_lists_as_archived(tl: SessionManager) -> None:
    session = await tl.create_session(user_id="ann")
    await session.archive()
    with pytest.raises(SessionArchived):
        await session.send("hello")
    with pytest.raises(SessionArchived):
        async for _ in session.stream("hello"):
            pass
    assert [s.id for s in (await tl.list_sessions(status="archived")).items] == [session.id]
    assert (await tl.list_sessions(status="active")).items == ()


# -- sessions ---------------------------------------------------------------------------------


async def test_listing_pages_with_a_cursor(tl: SessionManager) -> None:
    created = {(await tl.create_session(user_id="ann")).id for _ in range(7)}
    await tl.create_session(user_id="bob")
    seen: list[str] = []
    cursor = None
    while True:
        page = await tl.list_sessions(user_id="ann", limit=3, cursor=cursor)
        seen += [s.id for s in page.items]
        if not (cursor := page.next_cursor):
            break
    assert sorted(seen) == sorted(created)


async def test_update_refresh_and_delete(tl: SessionManager) -> None:
    session = await tl.create_session(title="Trip")
    record = await session.update(title="Trip to Lisbon", metadata={"days": 3})
    assert session.title == record.title == "Trip to Lisbon"
    await (await tl.get_session(session.id)).update(title="Lisbon")
    assert (await session.refresh()).title == session.title == "Lisbon"
    await session.delete()
    with pytest.raises(SessionNotFound):
        await tl.get_session(session.id)


async def test_fork_copies_the_history_up_to_a_message(tl: SessionManager) -> None:
    session = await tl.create_session(user_id="ann")
    await session.send("one")
    await session.send("two")
    fork = await session.fork(at_message=2)
    assert fork.id != session.id and fork.record.metadata["forked_from"] == session.id
    assert [m.text for m in await fork.history()] == ["one", "one"]
    await fork.send("three")
    assert len(await session.history()) == 4


async def test_regenerate_edit_and_undo_keep_revisions(tl: SessionManager, echo: EchoProvider) -> None:
    session = await tl.create_session()
    await session.send("first")
    echo.script([Reply(text="another answer")])
    assert (await session.regenerate()).text == "another answer"
    events = [event async for event in session.regenerate_stream()]
    assert isinstance(events[-1], Done) and events[-1].message is not None
    assert events[-1].message.text == "first"
    assert (await session.edit(1, "second")).text == "second"
    assert [m.text for m in await session.undo()] == ["second", "first"]
    assert await session.history() == []
    assert len(await session.revisions()) == 4


async def test_add_remove_and_clear(tl: SessionManager) -> None:
    session = await tl.create_session()
    added = await session.add([("system", "Answer in French."), ("user", "Bonjour"), ("assistant", "Bonjour !")])
    assert [(m.seq, m.role) for m in added] == [(1, Role.SYSTEM), (2, Role.USER), (3, Role.ASSISTANT)]
    assert (await session.remove(1)).text == "Answer in French."
    assert [m.text for m in await session.clear()] == ["Bonjour", "Bonjour !"]
    assert await session.history() == []


async def test_export_delete_user_and_import(tl: SessionManager, connect: Connect, tmp_path: Path) -> None:
    await (await tl.create_session(user_id="ann")).send("keep me")
    await tl.create_session(user_id="bob")
    path = tmp_path / "export.jsonl"
    with path.open("w") as out:
        assert await tl.export_jsonl(out) == 4
    counts = await tl.delete_user("ann")
    assert (counts.sessions, counts.messages) == (1, 2)
    async with connect(storage=MemoryStorage()) as fresh:
        assert await fresh.import_jsonl(path) == 4
        assert len((await fresh.list_sessions()).items) == 2
