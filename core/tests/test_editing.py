"""Editing a session's history: add, undo, regenerate, edit, remove, clear. Nothing is lost
(each edit is a revision), what the model is sent next follows the edit, and a hook says
what changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

import threadline
from threadline import (
    Call,
    Config,
    HistoryError,
    Message,
    MessageStatus,
    Middleware,
    Response,
    Role,
    SessionArchived,
    SessionManager,
    Text,
    hookimpl,
)
from threadline.builtins.echo import EchoProvider, Reply, ScriptedToolCall
from threadline.builtins.memory import MemoryStorage
from threadline.middleware import CompleteNext
from threadline.testing import EventRecorder


class Sees(Middleware):
    """Keeps the history each provider call was sent."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        self.sent.append([m.text for m in call.request.messages])
        return await next(call)


class Shouts(Middleware):
    """A message stage: every stored text in capitals."""

    async def message(self, message: Message, session: Any) -> Message:
        return attrs.evolve(message, parts=tuple(Text(p.text.upper()) for p in message.parts if isinstance(p, Text)))


@threadline.tool
def clock() -> str:
    """The time."""
    return "noon"


def plugin_for(**layers: Middleware) -> tuple[Config, object]:
    class Plugin:
        @hookimpl
        def threadline_register_middleware(self, register: Any) -> None:
            for name, layer in layers.items():
                register(name, lambda _config, layer=layer: layer)

    return Config.from_dict({"middleware": {"chain": list(layers)}}), Plugin()


@pytest.fixture
async def manager() -> AsyncIterator[SessionManager]:
    async with SessionManager(storage=MemoryStorage()) as tl:
        yield tl


def texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages]


async def test_undo_takes_back_the_last_turn_and_keeps_it(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.send("one")
    await session.send("two")
    undone = await session.undo()
    assert texts(undone) == ["two", "two"]  # the question and the echo
    assert texts(await session.history()) == ["one", "one"]
    await session.send("three")
    assert [(m.seq, m.text) for m in await session.history()] == [(1, "one"), (2, "one"), (3, "three"), (4, "three")]
    (revision,) = await session.revisions()
    assert (revision.number, revision.after_seq, texts(list(revision.replaced))) == (1, 2, ["two", "two"])
    assert (await manager.get_session(session.id)).record.message_count == 4


async def test_undo_with_no_turn_is_a_history_error_that_changes_nothing(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.add([("system", "Be brief.")])
    with pytest.raises(HistoryError, match="no user message"):
        await session.undo()
    assert texts(await session.history()) == ["Be brief."]
    assert await session.revisions() == []


async def test_regenerate_answers_the_last_user_message_again() -> None:
    seen = Sees()
    config, plugin = plugin_for(sees=seen)
    echo = EchoProvider()
    async with SessionManager(config, storage=MemoryStorage(), providers={"echo": echo}, plugins=[plugin]) as tl:
        session = await tl.create_session()
        echo.script([Reply("first answer"), Reply("second answer")])
        await session.send("question")
        reply = await session.regenerate()
        assert reply.text == "second answer"
        assert [(m.seq, m.text) for m in await session.history()] == [(1, "question"), (2, "second answer")]
        assert seen.sent[-1] == ["question"]  # the old answer is not sent again
        (revision,) = await session.revisions()
        assert texts(list(revision.replaced)) == ["first answer"]


async def test_regenerate_answers_a_failed_turn_and_clears_its_mark() -> None:
    echo = EchoProvider()
    async with SessionManager(storage=MemoryStorage(), providers={"echo": echo}) as tl:
        session = await tl.create_session()
        echo.script([Reply(error="unavailable")])
        with pytest.raises(threadline.ProviderUnavailable):
            await session.send("hello?")
        assert (await session.history())[0].status is MessageStatus.FAILED
        events = [event async for event in session.regenerate_stream()]
        assert events[-1].message is not None and events[-1].message.text == "hello?"
        history = await session.history()
        assert [(m.text, m.status) for m in history] == [("hello?", MessageStatus.OK), ("hello?", MessageStatus.OK)]
        assert await session.revisions() == []  # nothing followed the failed message: nothing replaced


async def test_regenerate_drops_a_tool_exchange_with_the_reply() -> None:
    echo = EchoProvider()

    async with SessionManager(storage=MemoryStorage(), providers={"echo": echo}, tools=[clock]) as tl:
        session = await tl.create_session(tools=["clock"])
        echo.script([Reply(tool_calls=(ScriptedToolCall("clock"),)), Reply("it is noon"), Reply("noon, again")])
        await session.send("time?")
        assert [m.role for m in await session.history()] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
        await session.regenerate()
        assert texts(await session.history()) == ["time?", "noon, again"]
        (revision,) = await session.revisions()
        assert len(revision.replaced) == 3


async def test_edit_replaces_one_message_and_the_model_sees_the_new_one() -> None:
    seen = Sees()
    config, plugin = plugin_for(sees=seen)
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await session.send("my name is Ann")
        await session.send("what is my name?")
        old = (await session.history())[0]
        new = await session.edit(1, "my name is Bob")
        assert (new.seq, new.text, new.role) == (1, "my name is Bob", Role.USER)
        assert new.id != old.id
        assert texts(await session.history()) == [
            "my name is Bob", "my name is Ann", "what is my name?", "what is my name?"
        ]  # fmt: skip
        await session.send("and now?")
        assert seen.sent[-1][0] == "my name is Bob"
        (revision,) = await session.revisions()
        assert revision.replaced[0] == old  # kept as it was, id and all
        assert [m.seq for m in await session.history()] == [1, 2, 3, 4, 5, 6]


async def test_an_edit_passes_the_message_stage() -> None:
    config, plugin = plugin_for(shouts=Shouts())
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await session.send("hi")
        assert (await session.edit(1, "quiet")).text == "QUIET"
        assert texts(await session.add([("user", "whisper")])) == ["WHISPER"]


async def test_remove_moves_later_messages_up(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.add([("user", "a"), ("assistant", "b"), ("user", "c")])
    removed = await session.remove(2)
    assert removed.text == "b"
    assert [(m.seq, m.text) for m in await session.history()] == [(1, "a"), (2, "c")]
    await session.send("d")
    assert [m.seq for m in await session.history()] == [1, 2, 3, 4]


@pytest.mark.parametrize("verb", ["edit", "remove"])
async def test_a_tool_call_cannot_be_parted_from_its_result(verb: str) -> None:
    echo = EchoProvider()

    async with SessionManager(storage=MemoryStorage(), providers={"echo": echo}, tools=[clock]) as tl:
        session = await tl.create_session(tools=["clock"])
        echo.script([Reply(tool_calls=(ScriptedToolCall("clock"),)), Reply("noon")])
        await session.send("time?")
        before = await session.history()
        for seq in (2, 3):  # the call, and its result
            with pytest.raises(HistoryError, match=f"message {seq} is part of a tool call.*undo"):
                await (session.edit(seq, "x") if verb == "edit" else session.remove(seq))
        with pytest.raises(HistoryError, match=r"no message 9 .* 1 to 4"):
            await (session.edit(9, "x") if verb == "edit" else session.remove(9))
        assert await session.history() == before
        assert await session.revisions() == []


async def test_clear_empties_the_history_and_keeps_it(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.send("one")
    cleared = await session.clear()
    assert texts(cleared) == ["one", "one"]
    assert await session.history() == []
    assert (await manager.get_session(session.id)).record.message_count == 0
    await session.send("fresh")
    assert texts(await session.history()) == ["fresh", "fresh"]


async def test_add_stores_without_a_model_and_announces_each(manager: SessionManager) -> None:
    recorder = EventRecorder()
    async with SessionManager(storage=MemoryStorage(), plugins=[recorder]) as tl:
        session = await tl.create_session()
        imported = Message("elsewhere", 7, Role.ASSISTANT, (Text("from before"),), metadata={"source": "x"})
        added = await session.add([("system", "Be brief."), ("user", "hi"), imported])
        assert [(m.seq, m.role, m.text) for m in added] == [
            (1, Role.SYSTEM, "Be brief."), (2, Role.USER, "hi"), (3, Role.ASSISTANT, "from before")
        ]  # fmt: skip
        assert (added[2].id, added[2].session_id, added[2].metadata) == (imported.id, session.id, {"source": "x"})
        assert await session.history() == added
        assert [e["message"].seq for name, e in recorder.events if name == "message_appended"] == [1, 2, 3]
        with pytest.raises(TypeError, match="Messages or \\(role, content\\) pairs"):
            await session.add(["just text"])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="'robot' is not a valid Role"):
            await session.add([("robot", "beep")])
        assert len(await session.history()) == 3


async def test_every_edit_fires_the_hook_with_what_changed() -> None:
    recorder = EventRecorder()
    async with SessionManager(storage=MemoryStorage(), plugins=[recorder]) as tl:
        session = await tl.create_session()
        await session.send("one")
        await session.edit(1, "uno")
        await session.remove(2)
        await session.regenerate()
        await session.undo()
        await session.clear()  # nothing left to clear: no edit
        edits = [e for name, e in recorder.events if name == "history_edited"]
        assert [(e["revision"].number, e["revision"].after_seq, texts(list(e["added"]))) for e in edits] == [
            (1, 0, ["uno", "one"]),
            (2, 1, []),
            (3, 0, []),
        ]
        assert edits[0]["session"].message_count == 2
        assert [r.number for r in await session.revisions()] == [1, 2, 3]


async def test_an_archived_session_takes_no_edit(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.send("one")
    await session.archive()
    for edit in (session.undo(), session.clear(), session.add([("user", "x")]), session.regenerate()):
        with pytest.raises(SessionArchived):
            await edit
    assert len(await session.history()) == 2


async def test_an_edit_sees_what_another_process_appended(tmp_path: Any) -> None:
    storage = MemoryStorage()  # one store, two managers: two processes sharing it
    async with SessionManager(storage=storage) as first, SessionManager(storage=storage) as second:
        mine = await first.create_session()
        await mine.send("one")
        theirs = await second.get_session(mine.id)
        await theirs.send("two")
        undone = await mine.undo()  # this process never saw "two": the edit reads it first
        assert texts(undone) == ["two", "two"]
        assert texts(await mine.history()) == ["one", "one"]


# -- what a review found: other processes, cancellation, storage stages, bad input ----------


async def test_an_edit_by_another_process_is_seen_by_the_next_turn_and_edit() -> None:
    """Two managers on one store are two processes: an edit that keeps the count the same
    still reaches the other, whose model hears it and whose own edit keeps it."""
    seen = Sees()
    config, plugin = plugin_for(sees=seen)
    storage = MemoryStorage()
    async with (
        SessionManager(config, storage=storage, plugins=[plugin]) as here,
        SessionManager(storage=storage) as there,
    ):
        mine = await here.create_session()
        await mine.send("one")
        await mine.send("two")
        theirs = await there.get_session(mine.id)
        await theirs.edit(1, "uno")  # four messages before and after
        await mine.send("three")
        assert seen.sent[-1][:2] == ["uno", "one"]
        await mine.remove(4)  # planned on the history as stored, not as this process last saw it
        assert texts(await theirs.history())[:2] == ["uno", "one"]


class SlowToSayDone(MemoryStorage):
    """A storage whose edit is stored at once, and answered only a while later: a
    cancellation then arrives once the edit is in, as the contract allows."""

    async def replace_messages(self, *args: Any, **kwargs: Any) -> Any:
        revision = await super().replace_messages(*args, **kwargs)
        await asyncio.sleep(0.05)
        return revision


async def test_an_edit_cancelled_after_it_was_stored_counts_and_is_told() -> None:
    recorder = EventRecorder()
    async with SessionManager(storage=SlowToSayDone(), plugins=[recorder]) as tl:
        session = await tl.create_session()
        await session.send("one")
        editing = asyncio.create_task(session.edit(1, "uno"))
        await asyncio.sleep(0.01)
        editing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await editing
        assert [name for name, _ in recorder.events].count("history_edited") == 1
        await session.send("two")
        sent = tl.provider("echo").requests[-1]  # type: ignore[attr-defined]
        assert [m.text for m in sent.messages][:2] == ["uno", "one"]


class Forgetful(Middleware):
    """A storage stage written before histories could be edited: it passes on only the
    methods it names."""

    def wrap_storage(self, storage: Any, backend: str) -> Any:
        class Watched:
            def __getattr__(self, name: str) -> Any:
                if name in ("replace_messages", "get_revisions"):
                    raise AttributeError(name)
                return getattr(storage, name)

        return Watched()


async def test_a_storage_stage_that_does_not_pass_edits_on_still_lets_them_through() -> None:
    config, plugin = plugin_for(forgetful=Forgetful())
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await session.send("one")
        await session.undo()
        assert [r.number for r in await session.revisions()] == [1]


async def test_a_seq_that_is_no_number_and_an_edit_to_nothing_are_refused(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.send("one")
    for seq in (True, "1", 1.0):
        with pytest.raises(TypeError, match="seq must be a message's number, a whole number"):
            await session.edit(seq, "x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="seq must be"):
            await session.remove(seq)  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="an edit needs the new content"):
        await session.edit(1, [])
    assert texts(await session.history()) == ["one", "one"]


async def test_a_regenerated_stream_broken_off_ends_its_turn_at_once() -> None:
    echo = EchoProvider()
    async with SessionManager(storage=MemoryStorage(), providers={"echo": echo}) as tl:
        session = await tl.create_session()
        await session.send("a long enough question")
        echo.script([Reply("a reply that arrives in many small pieces")])
        events = session.regenerate_stream()
        await anext(events)
        await events.aclose()
        assert not session._live.lock.locked()
        reply = (await session.history())[-1]
        assert reply.status is MessageStatus.INCOMPLETE and reply.error == "cancelled"


async def test_a_clear_and_a_regenerate_see_what_another_process_wrote_to_an_empty_session() -> None:
    storage = MemoryStorage()
    async with SessionManager(storage=storage) as here, SessionManager(storage=storage) as there:
        mine = await here.create_session()  # empty, as this process knows it
        await (await there.get_session(mine.id)).send("from there")
        assert texts(await mine.clear()) == ["from there", "from there"]
        await (await there.get_session(mine.id)).send("again")
        assert (await mine.regenerate()).text == "again"
        assert await mine.clear() != [] and await mine.clear() == []  # the second finds nothing: no revision
        assert [r.number for r in await mine.revisions()] == [1, 2, 3]


# -- a middleware changing the history during its turn -----------------------------------


class Condenses(Middleware):
    """On a call of a session with more than two messages before the one being answered,
    stores one note in place of all of them, then asks the provider (which may fail); keeps
    what ``call.capabilities()`` and ``call.count_tokens()`` said."""

    def __init__(self) -> None:
        self.stored: list[Message] = []
        self.asked: list[tuple[int | None, int | None]] = []

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        self.asked.append((call.capabilities().max_context, await call.count_tokens()))
        older = call.request.messages[:-1]
        if len(older) > 2 and call.turn is not None:
            note = Message("", 0, Role.SYSTEM, (Text(f"{len(older)} messages before"),))
            self.stored = await call.turn.replace_history(older[0], older[-1], [note])
            call = attrs.evolve(
                call, request=attrs.evolve(call.request, messages=(*self.stored, call.request.messages[-1]))
            )
        return await next(call)


async def condensing() -> tuple[SessionManager, Condenses, EventRecorder]:
    condenses, recorder = Condenses(), EventRecorder()
    config, plugin = plugin_for(condenses=condenses, shouts=Shouts())
    config = attrs.evolve(config, providers={"echo": {"context_windows": {"echo-*": 4_000}}})
    return SessionManager(config, storage=MemoryStorage(), plugins=[plugin, recorder]), condenses, recorder


async def test_a_middleware_stores_messages_in_place_of_older_ones_during_its_turn() -> None:
    manager, condenses, recorder = await condensing()
    async with manager as tl:
        session = await tl.create_session()
        await session.add([("user", "one"), ("assistant", "1"), ("user", "two"), ("assistant", "2")])
        reply = await session.send("three")
        assert texts(await session.history()) == ["4 MESSAGES BEFORE", "THREE", "THREE"]
        assert [m.seq for m in await session.history()] == [1, 2, 3] and reply.seq == 3
        assert texts(condenses.stored) == ["4 MESSAGES BEFORE"]  # as the message stage left it, and stored
        (revision,) = await session.revisions()
        assert (revision.after_seq, texts(list(revision.replaced))) == (0, ["ONE", "1", "TWO", "2", "THREE"])
        edited = [arguments["revision"] for name, arguments in recorder.events if name == "history_edited"]
        assert edited == [revision]
        assert condenses.asked[0] == (4_000, 5)  # the echo model's window; echo counts a word a token


async def test_a_turn_that_fails_after_its_history_was_changed_marks_its_own_message() -> None:
    manager, _, _ = await condensing()
    async with manager as tl:
        session = await tl.create_session()
        await session.add([("user", "one"), ("assistant", "1"), ("user", "two"), ("assistant", "2")])
        tl.provider("echo").script([Reply(error="unavailable")])
        with pytest.raises(threadline.ProviderUnavailable):
            await session.send("three")
        stored = await session.history()
        assert [(m.seq, m.text, m.status) for m in stored] == [
            (1, "4 MESSAGES BEFORE", MessageStatus.OK),
            (2, "THREE", MessageStatus.FAILED),
        ]


async def test_a_turns_history_is_changed_only_while_it_runs(manager: SessionManager) -> None:
    kept: list[Any] = []

    class Keeps(Middleware):
        async def complete(self, call: Call, next: CompleteNext) -> Response:
            kept.append(call)
            return await next(call)

    config, plugin = plugin_for(keeps=Keeps())
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await session.send("one")
        (call,) = kept
        first = (await session.history())[0]
        with pytest.raises(HistoryError, match="only while it runs"):
            await call.turn.replace_history(first, first, [])
        assert texts(await session.history()) == ["one", "one"]


async def test_an_edit_forgets_the_providers_copy_of_the_history(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.send("one")
    await session.update(provider_state={"response_id": "resp_1", "through_seq": 2})
    await session.edit(1, "uno")
    assert session.record.provider_state == {}
    assert (await manager.get_session(session.id)).record.provider_state == {}
    await session.send("two")
    echo = manager.provider("echo")
    assert isinstance(echo, EchoProvider) and echo.requests[-1].provider_state == {}
    assert [m.text for m in echo.requests[-1].messages] == ["uno", "one", "two"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("the message being answered", "reach message 5, the one the turn answers"),
        ("a message twice", "share an id"),
        ("a message kept", "share an id"),
    ],
)
async def test_a_turn_may_not_replace_its_own_question_or_store_an_id_twice(change: str, says: str) -> None:
    refused: list[Exception] = []

    class Misuses(Middleware):
        async def complete(self, call: Call, next: CompleteNext) -> Response:
            assert call.turn is not None
            first, second, *_, question = call.request.messages
            note = Message("", 0, Role.SYSTEM, (Text("note"),))
            attempts = {
                "the message being answered": (first, question, [note]),
                "a message twice": (first, first, [note, note]),
                "a message kept": (first, first, [second]),
            }
            try:
                await call.turn.replace_history(*attempts[change])
            except HistoryError as exc:
                refused.append(exc)
            return await next(call)

    config, plugin = plugin_for(misuses=Misuses())
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await session.add([("user", "one"), ("assistant", "1"), ("user", "two"), ("assistant", "2")])
        await session.send("three")
        (error,) = refused
        assert says in str(error)
        assert texts(await session.history()) == ["one", "1", "two", "2", "three", "three"]
        assert await session.revisions() == []


async def test_a_turn_reads_what_another_process_did_to_the_session() -> None:
    storage = MemoryStorage()
    async with SessionManager(storage=storage) as here, SessionManager(storage=storage) as there:
        session = await here.create_session()
        await session.send("one")
        await session.update(provider_state={"response_id": "resp_1", "through_seq": 2})
        other = await there.get_session(session.id)
        await other.edit(1, "uno")
        await session.send("two")
        echo = here.provider("echo")
        assert isinstance(echo, EchoProvider)
        assert echo.requests[-1].provider_state == {}
        assert [m.text for m in echo.requests[-1].messages] == ["uno", "one", "two"]
        await other.archive()
        with pytest.raises(SessionArchived):
            await session.send("three")
        assert len(await session.history()) == 4
