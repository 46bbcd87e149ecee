"""The one turn engine: ``send`` and ``stream`` fail, cancel and store alike; the message stage
sees every message before it is stored; the manager opens and closes exception-safely."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import attrs
import pytest

import threadline
import threadline.turn_lease
from threadline import (
    Call,
    Config,
    Event,
    Message,
    MessageStatus,
    Middleware,
    PluginError,
    Response,
    Role,
    SessionManager,
    SessionRecord,
    Text,
    ToolCall,
    ToolResult,
    Turn,
    hookimpl,
)
from threadline.builtins.echo import EchoConfig, EchoProvider, Reply, ScriptedToolCall
from threadline.builtins.memory import MemoryStorage
from threadline.middleware import CompleteNext, StreamNext, ToolNext, TurnNext
from threadline.testing import EventRecorder


def chain_of(*middleware: tuple[str, Middleware]) -> tuple[Config, object]:
    """A config naming ``middleware`` in order and the plugin that registers them."""

    class Plugin:
        @hookimpl
        def threadline_register_middleware(self, register: Any) -> None:
            for name, layer in middleware:
                register(name, lambda _config, layer=layer: layer)

    return Config.from_dict({"middleware": {"chain": [name for name, _ in middleware]}}), Plugin()


async def drive(session: threadline.Session, how: str, text: str) -> Message:
    if how == "send":
        return await session.send(text)
    events = [event async for event in session.stream(text)]
    done = events[-1]
    assert isinstance(done, threadline.Done) and done.message is not None
    return done.message


# -- send and stream behave alike ---------------------------------------------------------


class Refuses(Middleware):
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        raise self.error

    def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        raise self.error


@pytest.mark.parametrize("how", ["send", "stream"])
@pytest.mark.parametrize(
    ("error", "hook_fired"),
    [(threadline.RateLimited("slow down", provider="proxy"), True), (RuntimeError("middleware bug"), False)],
)
async def test_a_middleware_that_raises_fails_the_turn_the_same_way(
    how: str, error: Exception, hook_fired: bool
) -> None:
    config, plugin = chain_of(("refuses", Refuses(error)))
    recorder = EventRecorder()
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin, recorder]) as tl:
        session = await tl.create_session()
        with pytest.raises(type(error), match=str(error)):
            await drive(session, how, "hello")
        (user,) = await session.history()
        assert (user.status, user.error) == (MessageStatus.FAILED, str(error))
        assert ("provider_error" in recorder.names()) is hook_fired
        assert session.record.message_count == 1
        echo = tl.provider("echo")
        assert isinstance(echo, EchoProvider) and echo.requests == []


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_cancelling_either_before_the_first_chunk_marks_the_user_message_failed(how: str) -> None:
    async with SessionManager(storage=MemoryStorage(), providers={"echo": EchoProvider(EchoConfig(latency=5))}) as tl:
        session = await tl.create_session()
        task = asyncio.create_task(drive(session, how, "are you there?"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (stored,) = await session.history()
        assert (stored.status, stored.error) == (MessageStatus.FAILED, "cancelled")
        assert (await session.send("again")).text == "again"  # the lock was released


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_the_tool_step_limit_ends_either_the_same_way(how: str) -> None:
    @threadline.tool
    def again() -> str:
        """Call me again."""
        return "again"

    config = Config(defaults=threadline.Defaults(max_tool_steps=2))
    async with SessionManager(config, storage=MemoryStorage(), tools=[again]) as tl:
        session = await tl.create_session(tools=["again"])
        echo = tl.provider("echo")
        assert isinstance(echo, EchoProvider)
        echo.script([Reply(tool_calls=(ScriptedToolCall("again"),))] * 3)
        with pytest.raises(threadline.ToolError, match="after 2 steps"):
            await drive(session, how, "loop")
        assert [m.role for m in await session.history()] == [Role.USER, *[Role.ASSISTANT, Role.TOOL] * 2]


class RefuseReplies(Middleware):
    async def message(self, message: Message, session: SessionRecord) -> Message:
        if message.role is Role.ASSISTANT:
            raise threadline.BadRequest("moderation refused the reply", provider="moderation")
        return message


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_refused_reply_fails_the_turn_the_same_way(how: str) -> None:
    config, plugin = chain_of(("moderation", RefuseReplies()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        with pytest.raises(threadline.BadRequest, match="moderation refused the reply"):
            await drive(session, how, "hello")
        (user,) = await session.history()
        assert (user.status, user.error) == (MessageStatus.FAILED, "moderation: moderation refused the reply")
        assert session.record.message_count == 1 and not session._live.lock.locked()


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_cancelled_after_the_reply_is_stored_keeps_one_reply(how: str) -> None:
    stored = asyncio.Event()

    class SlowAudit:
        @hookimpl
        async def threadline_message_appended(self, message: Message) -> None:
            if message.role is Role.ASSISTANT:
                stored.set()
                await asyncio.sleep(10)

    async with SessionManager(storage=MemoryStorage(), plugins=[SlowAudit()]) as tl:
        session = await tl.create_session()
        task = asyncio.create_task(drive(session, how, "hello there"))
        await stored.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [(m.role, m.status) for m in await session.history()] == [
            (Role.USER, MessageStatus.OK),
            (Role.ASSISTANT, MessageStatus.OK),
        ]
        assert session.record.message_count == 2


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_critical_hook_failing_on_the_user_message_fails_the_turn(how: str) -> None:
    class Audit:
        @hookimpl
        @threadline.critical
        def threadline_message_appended(self, message: Message) -> None:
            if message.role is Role.USER:
                raise OSError("audit log down")

    async with SessionManager(storage=MemoryStorage(), plugins=[Audit()]) as tl:
        session = await tl.create_session()
        with pytest.raises(OSError, match="audit log down"):
            await drive(session, how, "first")
        (user,) = await session.history()
        assert (user.status, user.error) == (MessageStatus.FAILED, "audit log down")


async def test_a_user_message_that_could_not_be_stored_gives_no_title() -> None:
    class Full(MemoryStorage):
        async def append_messages(self, *args: Any, **kwargs: Any) -> None:
            raise threadline.StorageError("disk full")

    async with SessionManager(storage=Full()) as tl:
        session = await tl.create_session()
        with pytest.raises(threadline.StorageError, match="disk full"):
            await session.send("secret plan")
        assert (await tl.get_session(session.id)).title is None


class LateCommit(MemoryStorage):
    """Commits each append after a pause, in a task of its own, as a database thread or
    server does; as the contract asks, a cancelled append lets the cancellation out only once
    the write is done. ``writing`` is set when an append of ``role`` starts."""

    def __init__(self, role: Role) -> None:
        super().__init__()
        self.role, self.writing = role, asyncio.Event()

    async def append_messages(self, tenant: str, session_id: str, messages: Any) -> None:
        if messages[0].role is self.role:
            self.writing.set()
        write = asyncio.ensure_future(self._later(tenant, session_id, messages))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            raise

    async def _later(self, tenant: str, session_id: str, messages: Any) -> None:
        await asyncio.sleep(0.05)
        await super().append_messages(tenant, session_id, messages)


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_cancelled_while_the_reply_is_written_the_turn_stays_whole(how: str) -> None:
    storage = LateCommit(Role.ASSISTANT)
    async with SessionManager(storage=storage) as tl:
        session = await tl.create_session()
        task = asyncio.create_task(drive(session, how, "hello"))
        await storage.writing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        history = await session.history()
        assert [(m.role, m.status) for m in history] == [
            (Role.USER, MessageStatus.OK),
            (Role.ASSISTANT, MessageStatus.OK),
        ]
        assert session.record.message_count == 2
        await session.send("again")
        echo = tl.provider("echo")
        assert isinstance(echo, EchoProvider)
        assert [m.role for m in echo.requests[-1].messages] == [Role.USER, Role.ASSISTANT, Role.USER]


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_cancelled_while_the_user_message_is_written_it_is_marked_failed(how: str) -> None:
    storage = LateCommit(Role.USER)
    async with SessionManager(storage=storage) as tl:
        session = await tl.create_session()
        task = asyncio.create_task(drive(session, how, "hello"))
        await storage.writing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (user,) = await session.history()
        assert (user.status, user.error) == (MessageStatus.FAILED, "cancelled")
        assert session.record.message_count == 1
        storage.role = Role.TOOL  # no more pauses to wait for
        assert (await session.send("again")).seq == 3


async def test_turns_from_two_managers_on_one_storage_stay_whole() -> None:
    """Two managers sharing a storage are two processes sharing a database: the turn lease,
    not their own locks, keeps each user message followed by its own reply."""
    storage = MemoryStorage()
    slow = {"echo": EchoProvider(EchoConfig(latency=0.002))}
    async with (
        SessionManager(storage=storage, providers=slow) as first,
        SessionManager(storage=storage, providers={"echo": EchoProvider(EchoConfig(latency=0.002))}) as second,
    ):
        session = await first.create_session()
        other = await second.get_session(session.id)
        sends = [handle.send(f"{name} {n}") for n in range(15) for name, handle in (("a", session), ("b", other))]
        await asyncio.gather(*sends)
        history = await session.history()
    assert len(history) == 60
    for user, reply in zip(history[::2], history[1::2], strict=True):
        assert (user.role, reply.role, reply.text) == (Role.USER, Role.ASSISTANT, user.text)


async def test_a_long_turn_keeps_its_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    import threadline.turn

    monkeypatch.setattr(threadline.turn_lease, "LEASE_SECONDS", 0.1)  # renewed every 1/30 s
    storage = MemoryStorage()
    async with SessionManager(storage=storage, providers={"echo": EchoProvider(EchoConfig(latency=0.5))}) as tl:
        session = await tl.create_session()
        turn = asyncio.create_task(session.send("a long one"))
        for _ in range(8):  # long past the lease's own length: only renewal keeps it
            await asyncio.sleep(0.05)
            assert not await storage.take_turn(session.record.tenant, session.id, "another process", 30)
        await turn
        assert await storage.take_turn(session.record.tenant, session.id, "another process", 30)


async def test_a_process_with_many_turns_queued_lets_a_waiting_one_go_next() -> None:
    """A's 40 queued turns would take 4 s; B, waiting at most 1 s, gets the session after A's
    current turn, not after all of them."""
    storage = MemoryStorage()
    patient = Config(defaults=threadline.Defaults(turn_wait=1))
    async with (
        SessionManager(storage=storage, providers={"echo": EchoProvider(EchoConfig(latency=0.1))}) as a,
        SessionManager(patient, storage=storage, providers={"echo": EchoProvider(EchoConfig(latency=0.1))}) as b,
    ):
        session = await a.create_session()
        busy = asyncio.gather(*(session.send(f"a{n}") for n in range(40)))
        await asyncio.sleep(0.05)
        reply = await (await b.get_session(session.id)).send("b")
        assert reply.text == "b" and reply.seq < 10
        await busy


async def test_a_turn_waits_for_another_process_then_says_so() -> None:
    config = Config(defaults=threadline.Defaults(turn_wait=0.1))
    storage = MemoryStorage()
    async with SessionManager(config, storage=storage) as tl:
        session = await tl.create_session()
        assert await storage.take_turn(session.record.tenant, session.id, "another process", 30)
        with pytest.raises(threadline.StorageConflict, match=r"in a turn of another process.*turn_wait"):
            await session.send("hello")
        assert await session.history() == []
        await storage.end_turn(session.record.tenant, session.id, "another process")
        assert (await session.send("hello")).text == "hello"


# -- the message stage ---------------------------------------------------------------------

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def masked(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    def mask(part: Any) -> Any:
        if isinstance(part, Text):
            return Text(EMAIL.sub("[EMAIL]", part.text))
        if isinstance(part, ToolCall):
            return attrs.evolve(part, arguments={k: EMAIL.sub("[EMAIL]", str(v)) for k, v in part.arguments.items()})
        if isinstance(part, ToolResult):
            return attrs.evolve(part, content=EMAIL.sub("[EMAIL]", part.content))
        return part

    return tuple(mask(part) for part in parts)


class MaskEmails(Middleware):
    def __init__(self) -> None:
        self.seen: list[tuple[Role, str]] = []

    async def message(self, message: Message, session: SessionRecord) -> Message:
        self.seen.append((message.role, session.id))
        return attrs.evolve(message, parts=masked(message.parts))


@threadline.tool
def contact(name: str) -> str:
    """The e-mail address of a person."""
    return "carol@example.org"


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_the_message_stage_sees_every_message_before_it_is_stored(how: str) -> None:
    stage = MaskEmails()
    config, plugin = chain_of(("mask", stage))
    recorder = EventRecorder()
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin, recorder], tools=[contact]) as tl:
        session = await tl.create_session(tools=["contact"])
        echo = tl.provider("echo")
        assert isinstance(echo, EchoProvider)
        echo.script([Reply(tool_calls=(ScriptedToolCall("contact", {"name": "bob@example.com"}),))])
        reply = await drive(session, how, "write to ann@example.com please")
        history = await session.history()
        assert [m.role for m in history] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
        for message in history:
            assert "@example" not in repr(message.parts), message
        assert reply == history[-1] and "[EMAIL]" in reply.text
        assert session.title == "write to [EMAIL] please"
        appended = [args["message"] for name, args in recorder.events if name == "message_appended"]
        assert appended == history
        assert [role for role, _ in stage.seen] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
        assert "ann@example.com" not in repr(echo.requests[-1].messages)


async def test_a_cut_off_reply_passes_the_stage_too() -> None:
    config, plugin = chain_of(("mask", MaskEmails()))
    echo = EchoProvider(EchoConfig(chunk_size=4))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin], providers={"echo": echo}) as tl:
        session = await tl.create_session()
        echo.script([Reply(text="mail carol@example.net now and more and more", error="dropped")])
        with pytest.raises(threadline.ProviderUnavailable):
            async for _ in session.stream("hi"):
                pass
        _, partial = await session.history()
        assert partial.status is MessageStatus.INCOMPLETE and "@example" not in partial.text


async def test_stages_run_in_chain_order() -> None:
    order: list[str] = []

    class Tag(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def message(self, message: Message, session: SessionRecord) -> Message:
            order.append(self.name)
            tags = [*message.metadata.get("tags", []), self.name]
            return attrs.evolve(message, metadata={**message.metadata, "tags": tags})

    config, plugin = chain_of(("a", Tag("a")), ("plain", Middleware()), ("b", Tag("b")))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await session.send("hi")
        user, reply = await session.history()
    assert order == ["a", "b", "a", "b"]
    assert user.metadata["tags"] == reply.metadata["tags"] == ["a", "b"]


async def test_a_stage_that_refuses_a_message_stores_nothing() -> None:
    class Block(Middleware):
        async def message(self, message: Message, session: SessionRecord) -> Message:
            if "secret" in message.text:
                raise threadline.BadRequest("message refused: it contains a secret", provider="block")
            return message

    config, plugin = chain_of(("block", Block()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        with pytest.raises(threadline.BadRequest, match="contains a secret"):
            await session.send("the secret is 42")
        assert await session.history() == [] and session.title is None
        assert (await session.send("fine")).text == "fine"


async def test_a_stage_that_returns_no_message_is_a_plugin_error() -> None:
    class Broken(Middleware):
        async def message(self, message: Message, session: SessionRecord) -> Message:
            return message.text  # type: ignore[return-value]

    config, plugin = chain_of(("broken", Broken()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        with pytest.raises(PluginError, match=r"Broken\.message returned str; a message stage returns the Message"):
            await session.send("hi")
        assert await session.history() == []


# -- open and close ------------------------------------------------------------------------


class Tracked(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


async def test_a_failing_critical_startup_hook_closes_the_storage() -> None:
    class Fails:
        @hookimpl
        @threadline.critical
        def threadline_startup(self) -> None:
            raise OSError("audit log unwritable")

    storage = Tracked()
    manager = SessionManager(storage=storage, plugins=[Fails()])
    with pytest.raises(OSError, match="audit log unwritable"):
        async with manager:
            pass
    assert storage.closed == 1
    with pytest.raises(RuntimeError, match="not open"):
        _ = manager.storage


async def test_a_provider_whose_close_raises_still_lets_the_storage_close() -> None:
    class BadClose(EchoProvider):
        async def close(self) -> None:
            raise RuntimeError("close failed")

    class Plugin:
        @hookimpl
        def threadline_register_providers(self, register: Any) -> None:
            register("badclose", lambda _config: BadClose())

    given = BadClose()
    storage = Tracked()
    manager = SessionManager(storage=storage, plugins=[Plugin()], providers={"given": given})
    with pytest.raises(RuntimeError, match="close failed"):
        async with manager:
            await (await manager.create_session(provider="badclose")).send("hi")
            await (await manager.create_session(provider="given")).send("hi")
    assert storage.closed == 1
    assert given.requests  # used, but not the manager's to close: it was passed in


async def test_a_failed_renewal_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import threadline.turn

    monkeypatch.setattr(threadline.turn_lease, "LEASE_SECONDS", 0.3)

    class Flaky(MemoryStorage):
        calls = 0

        async def take_turn(self, *args: Any) -> bool:
            Flaky.calls += 1
            if Flaky.calls == 2:  # the first renewal: the database was busy
                raise threadline.StorageUnavailable("database is locked")
            return await super().take_turn(*args)

    storage = Flaky()
    async with SessionManager(storage=storage, providers={"echo": EchoProvider(EchoConfig(latency=0.8))}) as tl:
        session = await tl.create_session()
        turn = asyncio.create_task(session.send("hi"))
        await asyncio.sleep(0.5)  # past the lease's own length: only later renewals keep it
        assert not await storage.take_turn(session.record.tenant, session.id, "another process", 30)
        await turn


async def test_a_cancelled_append_whose_session_went_away_still_raises_the_cancellation() -> None:
    class Slow(MemoryStorage):
        async def append_messages(self, tenant: str, session_id: str, messages: Any) -> None:
            await super().append_messages(tenant, session_id, messages)
            await asyncio.sleep(0.2)  # written; the caller hears of it later

    storage = Slow()
    async with SessionManager(storage=storage) as tl:
        session = await tl.create_session()
        task = asyncio.create_task(session.send("hi"))
        await asyncio.sleep(0.05)
        await storage.delete_session(session.record.tenant, session.id)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_cancel_after_a_conflict_leaves_the_other_writers_message_alone() -> None:
    class Store(MemoryStorage):
        calls = 0

        async def append_messages(self, tenant: str, session_id: str, messages: Any) -> None:
            Store.calls += 1
            if Store.calls == 1:  # another writer took seq 1 first
                theirs = [Message(session_id, 1, Role.USER, (Text("theirs"),))]
                await super().append_messages(tenant, session_id, theirs)
                raise threadline.StorageConflict("seq 1 is taken")
            await asyncio.sleep(1)  # cancelled before anything of ours is written
            await super().append_messages(tenant, session_id, messages)

    async with SessionManager(storage=Store()) as tl:
        session = await tl.create_session()
        task = asyncio.create_task(session.send("mine"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (theirs,) = await session.history()
        assert (theirs.text, theirs.status) == ("theirs", MessageStatus.OK)


# -- the session stage ---------------------------------------------------------------------


class MaskSession(Middleware):
    """Masks addresses in what a session record holds: its system prompt, title, metadata."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    async def session(self, session: SessionRecord) -> SessionRecord:
        self.seen.append(session.title)
        prompt = None if session.system_prompt is None else EMAIL.sub("[EMAIL]", session.system_prompt)
        metadata = {k: EMAIL.sub("[EMAIL]", v) if isinstance(v, str) else v for k, v in session.metadata.items()}
        title = None if session.title is None else EMAIL.sub("[EMAIL]", session.title)
        return attrs.evolve(session, system_prompt=prompt, metadata=metadata, title=title)


async def test_the_session_stage_sees_every_record_before_it_is_stored() -> None:
    stage = MaskSession()
    config, plugin = chain_of(("mask", stage))
    storage = MemoryStorage()
    async with SessionManager(config, storage=storage, plugins=[plugin]) as tl:
        session = await tl.create_session(system_prompt="Serve ann@example.com", metadata={"owner": "bo@example.org"})
        stored = await storage.get_session(session.record.tenant, session.id)
        assert (stored.system_prompt, stored.metadata["owner"]) == ("Serve [EMAIL]", "[EMAIL]")
        await session.update(title="about cy@example.net")
        assert (await storage.get_session(session.record.tenant, session.id)).title == "about [EMAIL]"
        await session.send("hi")
        echo = tl.provider("echo")
        assert isinstance(echo, EchoProvider) and echo.requests[-1].system_prompt == "Serve [EMAIL]"
        fork = await session.fork()
        await fork.update(system_prompt="now dee@example.com")
        assert (await storage.get_session(fork.record.tenant, fork.id)).system_prompt == "now [EMAIL]"
    assert "about cy@example.net" in stage.seen  # create, update, fork and update all passed it


async def test_a_session_stage_that_returns_no_record_is_a_plugin_error() -> None:
    class Broken(Middleware):
        async def session(self, session: SessionRecord) -> SessionRecord:
            return session.id  # type: ignore[return-value]

    config, plugin = chain_of(("broken", Broken()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        with pytest.raises(
            PluginError, match=r"Broken\.session returned str; a session stage returns the SessionRecord"
        ):
            await tl.create_session()


async def test_middleware_that_is_not_a_subclass_has_no_stages_and_still_wraps_calls() -> None:
    class Duck:  # complete and stream only, as a plugin may write it
        def __init__(self) -> None:
            self.calls = 0

        async def complete(self, call: Any, next: Any) -> Any:
            self.calls += 1
            return await next(call)

        def stream(self, call: Any, next: Any) -> Any:
            return next(call)

    duck = Duck()
    config, plugin = chain_of(("duck", duck))  # type: ignore[arg-type]
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session(system_prompt="plain")
        assert (await session.send("hi")).text == "hi"
    assert duck.calls == 1


async def test_the_stage_sees_the_seq_a_message_is_stored_with_when_turns_wait_for_each_other() -> None:
    seen: list[int] = []

    class Seqs(Middleware):
        async def message(self, message: Message, session: SessionRecord) -> Message:
            seen.append(message.seq)
            return message

    config, plugin = chain_of(("seqs", Seqs()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await asyncio.gather(session.send("one"), session.send("two"), session.send("three"))
        stored = [m.seq for m in await session.history()]
    assert seen == stored == [1, 2, 3, 4, 5, 6]


# -- what tools are given ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_tool_is_given_its_arguments_as_the_chain_returned_them_not_as_stored(how: str) -> None:
    given: list[str] = []

    @threadline.tool
    def write_to(address: str) -> str:
        """Write to an address."""
        given.append(address)
        return "sent"

    config, plugin = chain_of(("mask", MaskEmails()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin], tools=[write_to]) as tl:
        session = await tl.create_session(tools=["write_to"])
        echo = tl.provider("echo")
        assert isinstance(echo, EchoProvider)
        echo.script([Reply(tool_calls=(ScriptedToolCall("write_to", {"address": "bob@example.com"}),))])
        await drive(session, how, "go")
        _, call, _, _ = await session.history()
    assert given == ["bob@example.com"]
    assert call.tool_calls[0].arguments == {"address": "[EMAIL]"}


# -- the export stage ----------------------------------------------------------------------


class DropSecrets(Middleware):
    """Takes the metadata key ``secret`` out of every exported record."""

    async def export(self, record: SessionRecord | Message) -> SessionRecord | Message:
        metadata = {k: v for k, v in record.metadata.items() if k != "secret"}
        return attrs.evolve(record, metadata=metadata)


async def test_the_export_stage_sees_every_exported_record_and_raw_skips_it() -> None:
    stage = DropSecrets()

    class Keep(Middleware):
        async def message(self, message: Message, session: SessionRecord) -> Message:
            return attrs.evolve(message, metadata={"secret": "s3", "kept": 1})

    config, plugin = chain_of(("keep", Keep()), ("drop", stage))
    storage = MemoryStorage()
    async with SessionManager(config, storage=storage, plugins=[plugin]) as tl:
        assert list(tl.middleware) == ["keep", "drop"] and tl.middleware["drop"] is stage
        session = await tl.create_session(metadata={"secret": "s1", "kept": 2})
        await session.send("hi")
        staged, raw = io.StringIO(), io.StringIO()
        assert await tl.export_jsonl(staged) == await tl.export_jsonl(raw, raw=True) == 3
    assert staged.getvalue().count('"kept"') == raw.getvalue().count('"kept"') == 3
    assert '"secret"' not in staged.getvalue() and raw.getvalue().count('"secret"') == 3
    stored = await storage.get_messages("default", session.id)
    assert all(m.metadata["secret"] == "s3" for m in stored)  # what is stored stays


async def test_an_export_stage_that_returns_another_kind_of_record_is_a_plugin_error() -> None:
    class Broken(Middleware):
        async def export(self, record: SessionRecord | Message) -> SessionRecord | Message:
            return record.id  # type: ignore[return-value]

    config, plugin = chain_of(("broken", Broken()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        await tl.create_session()
        with pytest.raises(
            PluginError, match=r"Broken\.export returned str; an export stage returns the SessionRecord"
        ):
            await tl.export_jsonl(io.StringIO())


# -- the turn and tool stages ----------------------------------------------------------------


class Watch(Middleware):
    """Notes, under its name, each turn's start and end, what the turn's calls name as their
    turn, and the tool runs it passes."""

    def __init__(self, name: str, seen: list[Any]) -> None:
        self.name, self.seen = name, seen

    async def turn(self, turn: Turn, next: TurnNext) -> AsyncGenerator[Event, None]:
        self.seen.append((self.name, "start", turn))
        try:
            async for event in next(turn):
                yield event
        except BaseException as exc:
            self.seen.append((self.name, "failed", type(exc).__name__))
            raise
        self.seen.append((self.name, "end", event))

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        self.seen.append((self.name, "call", call.turn))
        return await next(call)

    def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        self.seen.append((self.name, "call", call.turn))
        return next(call)

    async def tool(self, call: ToolCall, turn: Turn, next: ToolNext) -> ToolResult:
        self.seen.append((self.name, "tool", call.name, turn))
        try:
            return await next(call)
        except Exception as exc:
            self.seen.append((self.name, "tool raised", type(exc).__name__))
            raise


def echo_of(tl: SessionManager) -> EchoProvider:
    echo = tl.provider("echo")
    assert isinstance(echo, EchoProvider)
    return echo


@threadline.tool
def lookup(key: str) -> str:
    """Look a key up."""
    if key == "missing":
        raise KeyError(key)
    return f"value of {key}"


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_the_turn_stage_wraps_a_whole_turn_and_its_calls_name_it(how: str) -> None:
    seen: list[Any] = []
    config, plugin = chain_of(("outer", Watch("outer", seen)), ("inner", Watch("inner", seen)))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin], tools=[lookup]) as tl:
        session = await tl.create_session(tools=["lookup"])
        echo_of(tl).script([Reply(tool_calls=(ScriptedToolCall("lookup", {"key": "k"}),))])
        reply = await drive(session, how, "look k up")
    turn = seen[0][2]
    assert isinstance(turn, Turn)
    assert (turn.content, turn.provider, turn.streaming) == ((Text("look k up"),), "echo", how == "stream")
    assert turn.session.id == session.id
    assert [entry[:2] for entry in seen] == [
        ("outer", "start"), ("inner", "start"),
        ("outer", "call"), ("inner", "call"),  # the model asks for the tool
        ("outer", "tool"), ("inner", "tool"),
        ("outer", "call"), ("inner", "call"),  # and answers with its result
        ("inner", "end"), ("outer", "end"),
    ]  # fmt: skip
    assert all(entry[-1] is turn for entry in seen if entry[1] in ("start", "call", "tool"))
    done = seen[-1][2]
    assert isinstance(done, threadline.Done) and done.message == reply
    assert reply.text == "tool results: value of k"


async def test_a_turn_stage_can_change_the_turn_which_keeps_its_id() -> None:
    seen: list[Any] = []

    class Upgrade(Middleware):
        def turn(self, turn: Turn, next: TurnNext) -> AsyncGenerator[Event, None]:
            seen.append(turn.id)
            return next(attrs.evolve(turn, model="echo-2"))

    config, plugin = chain_of(("upgrade", Upgrade()), ("watch", Watch("watch", seen)))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        reply = await session.send("hi")
        assert [request.model for request in echo_of(tl).requests] == ["echo-2"]
    assert reply.model == "echo-2"
    first, (_, _, changed), (_, _, called) = seen[:3]
    assert changed.model == "echo-2" and changed.id == first and called is changed


async def test_a_stage_closed_with_its_turn_finds_the_turn_cleaned_up_first() -> None:
    found: list[int] = []

    class Late(Middleware):
        async def turn(self, turn: Turn, next: TurnNext) -> AsyncGenerator[Event, None]:
            try:
                async for event in next(turn):
                    yield event
            finally:  # the caller left: the cut-off reply is stored and the lease given back by now
                stored = await tl.storage.get_messages("default", turn.session.id)
                found.append(len(stored))
                found.append(await tl.storage.take_turn("default", turn.session.id, "another", 5.0))

    config, plugin = chain_of(("late", Late()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        async with contextlib.aclosing(session.stream("a long enough reply to come in pieces")) as events:
            async for _ in events:
                break
    assert found == [2, True]


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_the_turn_stage_sees_a_turn_fail(how: str) -> None:
    seen: list[Any] = []
    config, plugin = chain_of(("watch", Watch("watch", seen)), ("refuse", Refuses(threadline.RateLimited("slow"))))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        with pytest.raises(threadline.RateLimited):
            await drive(session, how, "hi")
    assert seen[-1] == ("watch", "failed", "RateLimited")


async def test_the_turn_stage_sees_a_stream_the_caller_left() -> None:
    seen: list[Any] = []
    config, plugin = chain_of(("watch", Watch("watch", seen)))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        async with contextlib.aclosing(session.stream("a long enough reply to come in pieces")) as events:
            async for _ in events:
                break
        (_, reply) = await session.history()
    assert seen[-1] == ("watch", "failed", "GeneratorExit")
    assert reply.status is MessageStatus.INCOMPLETE


async def test_a_tool_stage_can_refuse_a_tool_run_and_sees_what_a_tool_raises() -> None:
    ran: list[str] = []

    @threadline.tool
    def delete_all(confirm: bool) -> str:
        """Delete everything."""
        ran.append("delete_all")
        return "deleted"

    class Guard(Middleware):
        async def tool(self, call: ToolCall, turn: Turn, next: ToolNext) -> ToolResult:
            if call.name == "delete_all":
                return ToolResult(call.id, "not allowed here", is_error=True)
            return await next(call)

    seen: list[Any] = []
    config, plugin = chain_of(("watch", Watch("watch", seen)), ("guard", Guard()))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin], tools=[lookup, delete_all]) as tl:
        session = await tl.create_session(tools=["lookup", "delete_all"])
        calls = (
            ScriptedToolCall("delete_all", {"confirm": True}),
            ScriptedToolCall("lookup", {"key": "missing"}),
            ScriptedToolCall("nowhere", {}),
        )
        echo_of(tl).script([Reply(tool_calls=calls)])
        await session.send("clean up")
        results = (await session.history())[2].parts
    assert ran == []
    assert [(r.content, r.is_error) for r in results if isinstance(r, ToolResult)] == [
        ("not allowed here", True),
        ("KeyError: 'missing'", True),
        ("ToolError: no tool named 'nowhere'; this session's tools: lookup, delete_all", True),
    ]
    assert [entry[2] for entry in seen if entry[1] == "tool raised"] == ["KeyError", "ToolError"]


class CountedStorage(Middleware):
    """Counts each storage operation, by name, through a wrapper of the storage."""

    def __init__(self, name: str, order: list[str]) -> None:
        self.name, self.order = name, order
        self.backend = ""

    def wrap_storage(self, storage: threadline.Storage, backend: str) -> threadline.Storage:
        self.backend = backend
        layer = self

        class Counting:
            def __getattr__(self, operation: str) -> Any:
                method = getattr(storage, operation)
                if not callable(method) or operation in ("open", "close"):
                    return method

                def counted(*args: Any, **kwargs: Any) -> Any:
                    layer.order.append(f"{layer.name}.{operation}")
                    return method(*args, **kwargs)

                return counted

        return Counting()  # type: ignore[return-value]


async def test_the_storage_stage_wraps_every_storage_operation_the_first_named_outermost(
    tmp_path: Any,
) -> None:
    order: list[str] = []
    outer, inner = CountedStorage("outer", order), CountedStorage("inner", order)
    config, plugin = chain_of(("outer", outer), ("inner", inner))
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        session = await tl.create_session()
        await session.send("hi")
    assert outer.backend == inner.backend == "MemoryStorage"
    assert order[:2] == ["outer.create_session", "inner.create_session"]
    assert {"outer.append_messages", "outer.take_turn", "outer.end_turn"} <= set(order)
    assert order.count("outer.append_messages") == order.count("inner.append_messages") == 2

    named = Config.from_dict({"middleware": {"chain": ["outer"]}, "storage": {"backend": "memory"}})
    async with SessionManager(named, plugins=[plugin]) as tl:
        await tl.create_session()
    assert outer.backend == "memory"


async def test_a_storage_stage_that_returns_nothing_is_a_plugin_error() -> None:
    class Broken(Middleware):
        def wrap_storage(self, storage: threadline.Storage, backend: str) -> threadline.Storage:
            return None  # type: ignore[return-value]

    config, plugin = chain_of(("broken", Broken()))
    with pytest.raises(PluginError, match=r"Broken\.wrap_storage returned None; a storage stage returns the storage"):
        async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]):
            pass
