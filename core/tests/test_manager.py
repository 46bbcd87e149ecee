"""SessionManager and Session, end to end on the memory storage and the echo provider."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import attrs
import pytest

import threadline
from threadline import (
    BadRequest,
    Capabilities,
    Config,
    ConfigError,
    DataFormatError,
    Image,
    MessageStatus,
    RateLimited,
    Role,
    SessionManager,
    SessionNotFound,
    Text,
    TextDelta,
    ToolCallDelta,
    ToolError,
    ToolResult,
)
from threadline.builtins.echo import EchoConfig, EchoProvider, Reply, ScriptedToolCall
from threadline.builtins.memory import MemoryStorage
from threadline.config import Template
from threadline.testing import EventRecorder


def calls(*tool_calls: tuple[str, dict[str, Any]]) -> Reply:
    return Reply(tool_calls=tuple(ScriptedToolCall(name, args) for name, args in tool_calls))


# -- sending ------------------------------------------------------------------


async def test_send_stores_both_messages_and_returns_the_reply(manager: SessionManager) -> None:
    session = await manager.create_session(user_id="ann", system_prompt="Be brief.")
    reply = await session.send("Hello there")
    assert (reply.role, reply.text, reply.seq, reply.provider) == (Role.ASSISTANT, "Hello there", 2, "echo")
    assert reply.usage is not None and reply.usage.output_tokens == 2
    history = await session.history()
    assert [(m.seq, m.role, m.text) for m in history] == [
        (1, Role.USER, "Hello there"),
        (2, Role.ASSISTANT, "Hello there"),
    ]
    assert history[1] == reply


async def test_a_session_reads_back_from_a_fresh_manager_on_the_same_storage() -> None:
    storage = MemoryStorage()
    async with SessionManager(storage=storage) as first:
        session = await first.create_session()
        await session.send("remember me")
    async with SessionManager(storage=storage) as second:
        again = await second.get_session(session.id)
        assert [m.text for m in await again.history()] == ["remember me", "remember me"]
        await again.send("still here")
        assert again.record.message_count == 4


async def test_a_new_sessions_first_turn_replays_what_another_process_stored_meanwhile() -> None:
    """A session made with no messages starts with a known empty history (no read on its first
    turn), yet a turn still replays what another manager appended to it since."""
    storage = MemoryStorage()
    async with SessionManager(storage=storage) as here, SessionManager(storage=storage) as there:
        session = await here.create_session()
        await (await there.get_session(session.id)).send("from elsewhere")
        await session.send("mine")
        echo = here.provider("echo")
        assert isinstance(echo, EchoProvider)
        assert [m.text for m in echo.requests[-1].messages] == ["from elsewhere", "from elsewhere", "mine"]


async def test_vacuum_on_a_storage_that_gives_space_back_by_itself_says_so(manager: SessionManager) -> None:
    with pytest.raises(
        ConfigError, match="MemoryStorage storage gives space back by itself: there is nothing to vacuum"
    ):
        await manager.vacuum()


async def test_system_prompt_history_and_options_reach_the_provider(
    manager: SessionManager, echo: EchoProvider
) -> None:
    session = await manager.create_session(system_prompt="Be brief.")
    await session.send("one")
    await session.send("two three four", max_tokens=2, temperature=0.2, stop=["X"], options={"seed": 7})
    request = echo.requests[-1]
    assert request.system_prompt == "Be brief."
    assert [m.text for m in request.messages] == ["one", "one", "two three four"]
    assert (request.options.max_tokens, request.options.temperature) == (2, 0.2)
    assert (request.options.stop, dict(request.options.extra)) == (("X",), {"seed": 7})
    assert (await session.history(limit=1))[0].text == "two three"


async def test_listing_shows_title_counts_and_tokens(manager: SessionManager) -> None:
    session = await manager.create_session(user_id="ann")
    await session.send("What is the tallest mountain in Europe, and how tall is it exactly?")
    await manager.create_session(user_id="bob")
    page = await manager.list_sessions(user_id="ann")
    (listed,) = page.items
    assert listed.title == "What is the tallest mountain in Europe, and how tall is it…"
    assert listed.message_count == 2
    assert listed.usage.total_tokens == session.record.usage.total_tokens > 0


async def test_an_explicit_title_is_kept(manager: SessionManager) -> None:
    session = await manager.create_session(title="Trip planning")
    await session.send("Hello")
    assert (await manager.get_session(session.id)).title == "Trip planning"


async def test_stream_yields_deltas_then_done_with_the_stored_message(manager: SessionManager) -> None:
    session = await manager.create_session()
    events = [event async for event in session.stream("a longer message to stream")]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(d.text for d in deltas) == "a longer message to stream"
    done = events[-1]
    assert isinstance(done, threadline.Done) and done.message is not None
    assert done.message == (await session.history())[-1]
    assert done.usage == done.message.usage


async def test_100_concurrent_sends_leave_200_messages_in_pairs(manager: SessionManager) -> None:
    session = await manager.create_session()
    await asyncio.gather(*(session.send(f"message {i}") for i in range(100)))
    history = await session.history()
    assert len(history) == 200
    assert [m.seq for m in history] == list(range(1, 201))
    for user, reply in zip(history[::2], history[1::2], strict=True):
        assert (user.role, reply.role) == (Role.USER, Role.ASSISTANT)
        assert reply.text == user.text
    assert sorted(m.text for m in history[::2]) == sorted(f"message {i}" for i in range(100))


async def test_concurrent_sends_through_two_handles_are_serialised(manager: SessionManager) -> None:
    session = await manager.create_session()
    other = await manager.get_session(session.id)
    await asyncio.gather(*(handle.send(f"m{i}") for i in range(20) for handle in (session, other)))
    history = await session.history()
    assert len(history) == 80 and all(u.text == r.text for u, r in zip(history[::2], history[1::2], strict=True))


async def test_two_managers_on_one_storage_append_without_losing_messages() -> None:
    storage = MemoryStorage()
    async with SessionManager(storage=storage) as a, SessionManager(storage=storage) as b:
        session_a = await a.create_session()
        session_b = await b.get_session(session_a.id)
        await session_a.send("from a")
        await session_b.send("from b")  # b's view is stale: it must renumber, not overwrite
        await session_a.send("from a again")
        texts = [m.text for m in await session_a.history()]
        assert texts == ["from a", "from a", "from b", "from b", "from a again", "from a again"]


# -- failures -----------------------------------------------------------------


async def test_provider_error_keeps_the_user_message_marked_and_the_session_usable(
    manager: SessionManager, echo: EchoProvider, recorder: EventRecorder
) -> None:
    session = await manager.create_session()
    echo.script([Reply(error="rate_limited", retry_after=3)])
    with pytest.raises(RateLimited) as raised:
        await session.send("first try")
    assert raised.value.retry_after == 3
    (stored,) = await session.history()
    assert (stored.text, stored.status) == ("first try", MessageStatus.FAILED)
    assert "scripted rate_limited" in (stored.error or "")
    assert "provider_error" in recorder.names()

    reply = await session.send("second try")
    assert reply.text == "second try"
    assert [m.text for m in echo.requests[-1].messages] == ["second try"]  # the failed turn is not replayed


async def test_stream_error_before_any_text_marks_the_user_message(manager: SessionManager, echo: EchoProvider) -> None:
    session = await manager.create_session()
    echo.script([Reply(error="unavailable")])
    with pytest.raises(threadline.ProviderUnavailable):
        async for _ in session.stream("hello"):
            pass
    (stored,) = await session.history()
    assert stored.status == MessageStatus.FAILED


async def test_cancelling_a_send_keeps_the_user_message() -> None:
    async with SessionManager(
        storage=MemoryStorage(), providers={"echo": EchoProvider(EchoConfig(latency=5))}
    ) as manager:
        session = await manager.create_session()
        task = asyncio.create_task(session.send("are you there?"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (stored,) = await session.history()
        assert (stored.text, stored.status, stored.error) == ("are you there?", MessageStatus.FAILED, "cancelled")


async def test_breaking_off_a_stream_stores_the_reply_so_far_as_incomplete() -> None:
    async with SessionManager(
        storage=MemoryStorage(), providers={"echo": EchoProvider(EchoConfig(chunk_size=2))}
    ) as manager:
        session = await manager.create_session()
        stream = session.stream("abcdefghij")
        received = [await anext(stream), await anext(stream)]
        await stream.aclose()
        assert "".join(e.text for e in received if isinstance(e, TextDelta)) == "abcd"
        user, partial = await session.history()
        assert (user.status, partial.status, partial.text) == (MessageStatus.OK, MessageStatus.INCOMPLETE, "abcd")
        await session.send("next")  # the lock was released and the session goes on
        assert session.record.message_count == 4


async def test_cancelling_a_streaming_task_stores_the_reply_so_far() -> None:
    async with SessionManager(
        storage=MemoryStorage(), providers={"echo": EchoProvider(EchoConfig(chunk_size=1, chunk_delay=0.01))}
    ) as manager:
        session = await manager.create_session()
        received: list[str] = []
        five_received = asyncio.Event()

        async def consume() -> None:
            async for event in session.stream("x" * 500):
                if isinstance(event, TextDelta):
                    received.append(event.text)
                    if len(received) == 5:
                        five_received.set()

        task = asyncio.create_task(consume())
        await five_received.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _, partial = await session.history()
        assert partial.status == MessageStatus.INCOMPLETE and partial.error == "cancelled"
        assert len(received) <= len(partial.text) < 500


async def test_an_image_for_a_model_without_vision_is_refused_before_anything_is_stored() -> None:
    class TextOnly(EchoProvider):
        def capabilities(self, model: str | None) -> Capabilities:
            return Capabilities(vision=False)

    async with SessionManager(storage=MemoryStorage(), providers={"echo": TextOnly()}) as manager:
        session = await manager.create_session()
        with pytest.raises(BadRequest, match="does not accept images"):
            await session.send([Text("what is this?"), Image("image/png", data=b"\x89PNG")])
        assert await session.history() == []


# -- tools --------------------------------------------------------------------


@threadline.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@threadline.tool
async def lookup(city: str) -> dict[str, Any]:
    """Weather for a city."""
    await asyncio.sleep(0)
    return {"city": city, "temp": 21}


@threadline.tool
def explode() -> str:
    """Always fails."""
    raise ValueError("the tool broke")


async def test_tool_calls_run_and_the_model_continues(manager: SessionManager, echo: EchoProvider) -> None:
    session = await manager.create_session(tools=[add, lookup])
    echo.script([calls(("add", {"a": 2, "b": 3}), ("lookup", {"city": "Oslo"}))])
    reply = await session.send("compute")
    roles = [m.role for m in await session.history()]
    assert roles == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    tool_message = (await session.history())[2]
    assert [p.content for p in tool_message.parts if isinstance(p, ToolResult)] == ["5", '{"city": "Oslo", "temp": 21}']
    assert reply.text == 'tool results: 5; {"city": "Oslo", "temp": 21}'
    assert [t.name for t in echo.requests[0].tools] == ["add", "lookup"]


async def test_a_tool_that_raises_becomes_an_error_result_the_model_sees(
    manager: SessionManager, echo: EchoProvider
) -> None:
    session = await manager.create_session(tools=[explode])
    echo.script([calls(("explode", {}))])
    reply = await session.send("go")
    (result,) = (await session.history())[2].parts
    assert isinstance(result, ToolResult) and result.is_error
    assert reply.text == "tool results: ValueError: the tool broke"


async def test_an_unknown_tool_is_an_error_result(manager: SessionManager, echo: EchoProvider) -> None:
    session = await manager.create_session(tools=[add])
    echo.script([calls(("rm_rf", {}))])
    reply = await session.send("go")
    assert "no tool named 'rm_rf'" in reply.text


async def test_the_tool_loop_stops_at_the_step_limit() -> None:
    config = Config(defaults=threadline.Defaults(max_tool_steps=3))
    async with SessionManager(config, storage=MemoryStorage(), tools=[add]) as manager:
        session = await manager.create_session(tools=["add"])
        echo = manager.provider("echo")
        assert isinstance(echo, EchoProvider)
        echo.script([calls(("add", {"a": 1, "b": 1}))] * 5)
        with pytest.raises(ToolError, match="after 3 steps"):
            await session.send("loop")
        assert session.record.message_count == 1 + 3 * 2


async def test_streamed_tool_calls_run_and_the_stream_continues(manager: SessionManager, echo: EchoProvider) -> None:
    session = await manager.create_session(tools=[lookup])
    echo.script([calls(("lookup", {"city": "Rome"}))])
    events = [event async for event in session.stream("weather?")]
    assert any(isinstance(e, ToolCallDelta) and e.name == "lookup" for e in events)
    done = events[-1]
    assert isinstance(done, threadline.Done) and done.message is not None
    assert done.message.text.startswith("tool results:")
    assert done.usage.output_tokens > done.message.usage.output_tokens  # type: ignore[union-attr]


async def test_tool_schema_comes_from_type_hints_and_docstring() -> None:
    @threadline.tool
    def search(query: str, limit: int = 10, tags: list[str] | None = None) -> list[str]:
        """Search the notes.

        Args:
            query: what to look for
            limit: at most this many
        """
        return []

    assert search.description == "Search the notes."
    assert search.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to look for"},
            "limit": {"type": "integer", "description": "at most this many"},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        },
        "required": ["query"],
        "additionalProperties": False,
    }


async def test_a_tool_without_type_hints_is_refused() -> None:
    with pytest.raises(ToolError, match="needs a type hint"):

        @threadline.tool
        def untyped(x):  # type: ignore[no-untyped-def]
            return x


async def test_naming_an_unregistered_tool_is_an_error(manager: SessionManager) -> None:
    with pytest.raises(ToolError, match="no tool named 'nope'"):
        await manager.create_session(tools=["nope"])


# -- session management ---------------------------------------------------------


async def test_fork_copies_history_up_to_a_message(manager: SessionManager) -> None:
    session = await manager.create_session(system_prompt="S")
    for text in ("one", "two", "three"):
        await session.send(text)
    fork = await session.fork(at_message=4)
    assert fork.id != session.id
    assert [m.text for m in await fork.history()] == ["one", "one", "two", "two"]
    assert fork.record.system_prompt == "S" and fork.record.metadata["forked_from"] == session.id
    await fork.send("branch")
    assert session.record.message_count == 6 and fork.record.message_count == 6


async def test_archive_delete_and_lifecycle_hooks(manager: SessionManager, recorder: EventRecorder) -> None:
    session = await manager.create_session(user_id="ann")
    await session.send("hi")
    await session.archive()
    assert (await manager.get_session(session.id)).record.status.value == "archived"
    assert [s.id for s in (await manager.list_sessions(status="archived")).items] == [session.id]
    await session.delete()
    with pytest.raises(SessionNotFound):
        await manager.get_session(session.id)
    assert recorder.names() == [
        "startup", "session_created", "message_appended", "message_appended", "session_archived", "session_deleted",
    ]  # fmt: skip
    assert recorder.events[-1][1] == {"session_id": session.id, "user_id": "ann"}


async def test_update_changes_stored_fields_and_refuses_others(manager: SessionManager) -> None:
    session = await manager.create_session()
    await session.update(title="New", metadata={"k": 1})
    assert (await manager.get_session(session.id)).record.title == "New"
    with pytest.raises(TypeError, match="cannot update id"):
        await session.update(id="x")


async def test_delete_user_removes_their_sessions(manager: SessionManager) -> None:
    for _ in range(2):
        await (await manager.create_session(user_id="leaver")).send("bye")
    kept = await manager.create_session(user_id="stayer")
    counts = await manager.delete_user("leaver")
    assert (counts.sessions, counts.messages) == (2, 4)
    await manager.get_session(kept.id)


async def test_templates_set_provider_model_and_prompt() -> None:
    config = Config(templates={"support": Template(provider="echo", model="echo-2", system_prompt="Help.")})
    async with SessionManager(config, storage=MemoryStorage()) as manager:
        session = await manager.create_session(template="support", user_id="ann")
        assert (session.record.model, session.record.system_prompt, session.record.template) == (
            "echo-2",
            "Help.",
            "support",
        )
        with pytest.raises(ConfigError, match="no template named 'sales'; templates: support"):
            await manager.create_session(template="sales")


async def test_a_session_can_switch_provider_per_call_and_for_good() -> None:
    async with SessionManager(storage=MemoryStorage(), providers={"other": EchoProvider()}) as manager:
        session = await manager.create_session()
        await session.send("on echo")
        reply = await session.send("on other", provider="other")
        assert reply.provider == "other"
        other = manager.provider("other")
        assert isinstance(other, EchoProvider)
        assert [m.text for m in other.requests[-1].messages] == ["on echo", "on echo", "on other"]
        await session.update(provider="other")
        assert (await session.send("again")).provider == "other"
        with pytest.raises(ConfigError, match="no provider plugin named 'nope'"):
            await session.send("x", provider="nope")


# -- export and import ----------------------------------------------------------


async def test_export_and_import_jsonl(manager: SessionManager, tmp_path: Path) -> None:
    session = await manager.create_session(user_id="ann")
    await session.send("keep me")
    path = tmp_path / "export.jsonl"
    with path.open("w") as out:
        assert await manager.export_jsonl(out) == 3
    async with SessionManager(storage=MemoryStorage()) as other:
        assert await other.import_jsonl(path) == 3
        assert [m.text for m in await (await other.get_session(session.id)).history()] == ["keep me", "keep me"]


async def test_import_with_a_bad_line_names_it_and_imports_nothing(manager: SessionManager, tmp_path: Path) -> None:
    session = await manager.create_session()
    await session.send("hi")
    path = tmp_path / "export.jsonl"
    with path.open("w") as out:
        await manager.export_jsonl(out)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], '{"type": "message", "v": 1, "seq": "x"}', *lines[2:]]) + "\n")
    async with SessionManager(storage=MemoryStorage()) as other:
        with pytest.raises(DataFormatError, match="line 3"):
            await other.import_jsonl(path)
        assert (await other.list_sessions()).items == ()


# -- lifecycle hooks and middleware -----------------------------------------------


class Flaky:
    @threadline.hookimpl
    def threadline_message_appended(self, session: Any, message: Any) -> None:
        raise RuntimeError("metrics backend down")


class AsyncAudit:
    def __init__(self) -> None:
        self.seen: list[int] = []

    @threadline.hookimpl
    async def threadline_message_appended(self, session: Any, message: Any) -> None:
        await asyncio.sleep(0)
        self.seen.append(message.seq)


async def test_a_failing_hook_is_logged_by_plugin_name_and_does_not_break_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    audit = AsyncAudit()
    async with SessionManager(storage=MemoryStorage(), plugins=[Flaky(), audit]) as manager:
        session = await manager.create_session()
        with caplog.at_level(logging.ERROR, logger="threadline.plugins"):
            reply = await session.send("hi")
    assert reply.text == "hi"
    assert audit.seen == [1, 2]  # the async implementation was awaited, after the failing one
    assert "Flaky-0" in caplog.text and "metrics backend down" in caplog.text


async def test_a_failing_critical_hook_fails_the_call() -> None:
    class Audit:
        @threadline.hookimpl
        @threadline.critical
        def threadline_session_created(self, session: Any) -> None:
            raise OSError("audit log not writable")

    async with SessionManager(storage=MemoryStorage(), plugins=[Audit()]) as manager:
        with pytest.raises(OSError, match="audit log not writable"):
            await manager.create_session()


class Recording(threadline.Middleware):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def complete(self, call: threadline.Call, next: Any) -> threadline.Response:
        self.log.append(f"{self.name} in")
        response = await next(call)
        self.log.append(f"{self.name} out")
        return response

    async def stream(self, call: threadline.Call, next: Any) -> Any:
        self.log.append(f"{self.name} stream")
        async for event in next(call):
            if isinstance(event, TextDelta):
                event = TextDelta(event.text.upper())
            yield event


@attrs.frozen
class LogConfig:
    label: str = ""


def middleware_plugin(log: list[str]) -> object:
    class Plugin:
        @threadline.hookimpl
        def threadline_register_middleware(self, register: Any) -> None:
            register("outer", lambda config: Recording("outer" + config.label, log), config=LogConfig)
            register("inner", lambda config: Recording("inner", log))

    return Plugin()


async def test_middleware_wraps_calls_in_config_order() -> None:
    log: list[str] = []
    config = Config.from_dict({"middleware": {"chain": ["outer", "inner"], "outer": {"label": "!"}}})
    async with SessionManager(config, storage=MemoryStorage(), plugins=[middleware_plugin(log)]) as manager:
        session = await manager.create_session()
        await session.send("hi")
        assert log == ["outer! in", "inner in", "inner out", "outer! out"]
        events = [e async for e in session.stream("quiet")]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "QUIET"
        assert (await session.history())[-1].text == "QUIET"


async def test_middleware_can_redirect_a_call_to_another_provider() -> None:
    class Failover(threadline.Middleware):
        async def complete(self, call: threadline.Call, next: Any) -> threadline.Response:
            try:
                return await next(call)
            except threadline.ProviderUnavailable:
                return await next(attrs.evolve(call, provider="backup"))

    class Plugin:
        @threadline.hookimpl
        def threadline_register_middleware(self, register: Any) -> None:
            register("failover", lambda config: Failover())

    primary = EchoProvider(EchoConfig(replies=(Reply(error="unavailable"),)))
    config = Config.from_dict({"middleware": {"chain": ["failover"]}})
    async with SessionManager(
        config, plugins=[Plugin()], providers={"echo": primary, "backup": EchoProvider()}
    ) as manager:
        reply = await (await manager.create_session()).send("hello")
        assert reply.text == "hello"


async def test_export_is_of_the_configured_tenant_unless_all_are_asked_for(tmp_path: Path) -> None:
    config = Config(defaults=threadline.Defaults(tenant="acme"))
    async with SessionManager(config, storage=MemoryStorage()) as manager:
        ours = await manager.create_session()
        theirs = await manager.create_session(tenant="globex")
        exported: dict[str, set[str]] = {}
        for name, arguments in {"default": {}, "named": {"tenant": "globex"}, "all": {"all_tenants": True}}.items():
            path = tmp_path / f"{name}.jsonl"
            with path.open("w") as out:
                await manager.export_jsonl(out, **arguments)  # type: ignore[arg-type]
            exported[name] = {json.loads(line)["id"] for line in path.read_text().splitlines()}
        assert exported == {"default": {ours.id}, "named": {theirs.id}, "all": {ours.id, theirs.id}}
        with pytest.raises(ConfigError, match="not both"):
            await manager.export_jsonl(io.StringIO(), tenant="acme", all_tenants=True)


@pytest.mark.parametrize("call", ["create_session", "get_session", "list_sessions", "delete_user", "export_jsonl"])
async def test_an_empty_tenant_is_refused(manager: SessionManager, call: str) -> None:
    arguments: dict[str, Any] = {
        "create_session": {}, "get_session": {"session_id": "x"}, "list_sessions": {},
        "delete_user": {"user_id": "u"}, "export_jsonl": {"out": io.StringIO()},
    }[call]  # fmt: skip
    with pytest.raises(ConfigError, match="tenant must be a non-empty name, got ''"):
        await getattr(manager, call)(tenant="", **arguments)


@pytest.mark.parametrize(("limit", "expected"), [(None, 4), (0, 0), (1, 1), (3, 3), (10**9, 4)])
async def test_history_limits(manager: SessionManager, limit: int | None, expected: int) -> None:
    session = await manager.create_session()
    await session.send("one")
    await session.send("two")
    history = await session.history(limit=limit)
    assert [m.seq for m in history] == list(range(5 - expected, 5))


@pytest.mark.parametrize("limit", [-1, 1.5, True, "3"])
async def test_a_limit_that_is_no_count_is_refused(manager: SessionManager, limit: object) -> None:
    session = await manager.create_session()
    with pytest.raises(ValueError, match="limit must be a whole number of at least 0"):
        await session.history(limit=limit)  # type: ignore[arg-type]


def _exported_line(**changes: Any) -> str:
    record = {"type": "session", "v": 1, "id": "s1", "tenant": "default", "created_at": "2026-01-01T00:00:00+00:00"}
    return json.dumps({**record, **changes})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"\xff\xfe{}\n", "not UTF-8 text"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested too deeply"),
        (_exported_line(metadata={"k": "\\ud800"}).replace("\\\\ud800", "\\ud800").encode(), "lone surrogate"),
        (_exported_line(updated_at="2026-01-01T00:00:00").encode(), "has no UTC offset"),
        (_exported_line(updated_at="9999-12-31T00:00:00+00:00").encode(), "is in the future"),
        (_exported_line(usage={"input_tokens": -5}).encode(), "must not be negative"),
    ],
)
async def test_a_bad_import_line_is_named_and_nothing_is_imported(
    manager: SessionManager, tmp_path: Path, line: bytes, message: str
) -> None:
    path = tmp_path / "import.jsonl"
    path.write_bytes(_exported_line(id="good").encode() + b"\n" + line + b"\n")
    with pytest.raises(DataFormatError, match=f"import.jsonl, line 2: .*({message}).*; nothing was imported"):
        await manager.import_jsonl(path)
    assert (await manager.list_sessions()).items == ()


async def test_the_tenant_a_call_names_is_the_one_used(manager: SessionManager) -> None:
    ours = await manager.create_session(user_id="ann")
    theirs = await manager.create_session(user_id="ann", tenant="globex")
    assert (ours.record.tenant, theirs.record.tenant) == ("default", "globex")
    assert (await manager.get_session(theirs.id, tenant="globex")).id == theirs.id
    with pytest.raises(SessionNotFound):
        await manager.get_session(theirs.id)  # not in the configured tenant
    assert [s.id for s in (await manager.list_sessions(tenant="globex")).items] == [theirs.id]
    assert [s.id for s in (await manager.list_sessions()).items] == [ours.id]
    assert (await manager.delete_user("ann", tenant="globex")).sessions == 1
    assert (await manager.get_session(ours.id)).id == ours.id


# -- what the mutation run found untested (tasks.py mutate) --------------------------------


async def test_from_config_takes_the_managers_other_arguments(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text('[storage]\nbackend = "memory"\n')
    given = MemoryStorage()
    async with SessionManager.from_config(path, storage=given) as manager:
        session = await manager.create_session()
        assert await given.get_session("default", session.id) == session.record


async def test_settings_nobody_registered_is_an_error_naming_what_is(manager: SessionManager) -> None:
    with pytest.raises(threadline.PluginError) as caught:
        manager.settings("audit")
    assert str(caught.value) == "no plugin registered settings named 'audit'; registered: none"


async def test_a_tool_given_twice_under_one_name_names_where_it_came_from(manager: SessionManager) -> None:
    @threadline.tool
    def lookup(order: str) -> str:
        """Look an order up."""
        return order

    @threadline.tool(name="lookup")
    def other(order: str) -> str:
        """Another."""
        return order

    await manager.create_session(tools=[lookup])
    with pytest.raises(
        threadline.PluginError, match=r"'lookup' is registered by two plugins, .*'create_session\(tools=\.\.\.\)'"
    ):
        await manager.create_session(tools=[other])


async def test_session_created_hooks_get_the_stored_record(manager: SessionManager, recorder: EventRecorder) -> None:
    session = await manager.create_session(title="hello")
    created = [arguments for name, arguments in recorder.events if name == "session_created"]
    assert created == [{"session": session.record}]


async def test_handles_of_one_session_share_its_turns(manager: SessionManager, echo: EchoProvider) -> None:
    echo.config = attrs.evolve(echo.config, latency=0.01)
    first = await manager.create_session()
    second = await manager.get_session(first.id)
    await asyncio.gather(first.send("one"), second.send("two"), first.send("three"))
    history = await first.history()
    assert [m.role for m in history] == [Role.USER, Role.ASSISTANT] * 3
    assert all(q.text == a.text for q, a in zip(history[::2], history[1::2], strict=True))
    assert (first.record.message_count, second.record.message_count) == (6, 6)


async def test_list_sessions_filters_by_status_and_pages_by_limit(manager: SessionManager) -> None:
    sessions = [await manager.create_session() for _ in range(52)]
    await sessions[0].archive()
    assert [s.id for s in (await manager.list_sessions(status="archived")).items] == [sessions[0].id]
    assert len((await manager.list_sessions()).items) == 50
    assert len((await manager.list_sessions(limit=2)).items) == 2


async def test_export_refuses_a_tenant_and_all_tenants_together(manager: SessionManager) -> None:
    with pytest.raises(ConfigError) as caught:
        await manager.export_jsonl(io.StringIO(), tenant="acme", all_tenants=True)
    assert str(caught.value) == "name a tenant or ask for all tenants, not both"


async def test_import_skips_blank_lines_anywhere(manager: SessionManager, tmp_path: Path) -> None:
    first, second = await manager.create_session(), await manager.create_session()
    await first.send("hi")
    exported = io.StringIO()
    await manager.export_jsonl(exported)
    lines = exported.getvalue().splitlines()
    path = tmp_path / "spaced.jsonl"
    path.write_text("\n" + "\n\n".join(lines) + "\n  \n")
    async with SessionManager(storage=MemoryStorage()) as fresh:
        assert await fresh.import_jsonl(path) == len(lines) == 4
        assert [m.text for m in await (await fresh.get_session(first.id)).history()] == ["hi", "hi"]
        assert (await fresh.get_session(second.id)).record.message_count == 0


async def test_an_unset_variable_in_a_number_setting_waits_for_the_providers_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_DELAY", raising=False)
    path = tmp_path / "threadline.toml"
    path.write_text('[storage]\nbackend = "memory"\n[providers.echo]\nchunk_delay = "${NOPE_DELAY}"\n')
    async with SessionManager.from_config(path) as manager:
        session = await manager.create_session()  # listing, export and the like need no provider
        with pytest.raises(threadline.ConfigError, match="environment variable NOPE_DELAY is not set"):
            await session.send("hi", provider="echo")


async def test_settings_nobody_registered_lists_the_names_that_are() -> None:
    @attrs.frozen
    class Nothing:
        pass

    class Audit:
        @threadline.hookimpl
        def threadline_register_settings(self, register: Any) -> None:
            register("audit", Nothing)
            register("metrics", Nothing)

    async with SessionManager(storage=MemoryStorage(), plugins=[Audit()]) as manager:
        with pytest.raises(threadline.PluginError) as caught:
            manager.settings("audti")
    assert str(caught.value) == "no plugin registered settings named 'audti'; registered: audit, metrics"


async def test_naming_an_unregistered_tool_lists_the_registered_ones(manager: SessionManager) -> None:
    with pytest.raises(ToolError) as caught:
        await manager.create_session(tools=["nope"])
    assert str(caught.value) == "no tool named 'nope'; registered tools: none"

    @threadline.tool
    def lookup(order: str) -> str:
        """Look an order up."""
        return order

    @threadline.tool
    def cancel(order: str) -> str:
        """Cancel an order."""
        return order

    await manager.create_session(tools=[lookup, cancel])
    with pytest.raises(ToolError) as caught:
        await manager.create_session(tools=["nope"])
    assert str(caught.value) == "no tool named 'nope'; registered tools: cancel, lookup"


async def test_a_session_read_again_shows_what_another_writer_changed(manager: SessionManager) -> None:
    session = await manager.create_session()
    await manager.storage.update_session(attrs.evolve(session.record, title="renamed elsewhere"))
    again = await manager.get_session(session.id)
    assert again.record.title == "renamed elsewhere"


async def test_sessions_are_listed_page_by_page(manager: SessionManager) -> None:
    created = {(await manager.create_session()).id for _ in range(5)}
    first = await manager.list_sessions(limit=2)
    second = await manager.list_sessions(limit=2, cursor=first.next_cursor)
    third = await manager.list_sessions(limit=2, cursor=second.next_cursor)
    pages = [first.items, second.items, third.items]
    assert [len(page) for page in pages] == [2, 2, 1] and third.next_cursor is None
    assert {s.id for page in pages for s in page} == created


async def test_an_unknown_template_names_the_key_and_the_templates_there(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text('[storage]\nbackend = "memory"\n')
    async with SessionManager.from_config(path) as manager:
        with pytest.raises(ConfigError) as caught:
            await manager.create_session(template="sales")
    assert caught.value.key == "template"
    none = "none (add [templates.NAME] to the config; on the command line, `threadline templates save NAME`)"
    assert str(caught.value).endswith(f"template: no template named 'sales'; templates: {none}")
    path.write_text('[storage]\nbackend = "memory"\n[templates.support]\n[templates.billing]\n')
    async with SessionManager.from_config(path) as manager:
        with pytest.raises(ConfigError) as caught:
            await manager.create_session(template="sales")
    assert str(caught.value).endswith("no template named 'sales'; templates: billing, support")


async def test_a_template_and_the_call_give_metadata_together() -> None:
    config = Config(templates={"support": Template(metadata={"team": "care", "tier": 1})})
    async with SessionManager(config, storage=MemoryStorage()) as manager:
        session = await manager.create_session(template="support", metadata={"tier": 2, "ticket": "T-9"})
    assert session.record.metadata == {"team": "care", "tier": 2, "ticket": "T-9"}


def test_settings_of_a_middleware_the_chain_leaves_out_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text('[storage]\nbackend = "memory"\n[middleware.redact]\nmask = "*"\n')
    with pytest.raises(ConfigError) as caught:
        SessionManager.from_config(path)
    assert (caught.value.file, caught.value.key) == (str(path), "middleware.redact")
    assert str(caught.value).startswith(f"{path}: middleware.redact: settings for middleware 'redact', which chain")


async def test_a_tool_given_to_the_manager_and_by_a_plugin_names_both() -> None:
    @threadline.tool(name="lookup")
    def from_plugin(order: str) -> str:
        """Look an order up."""
        return order

    @threadline.tool(name="lookup")
    def given(order: str) -> str:
        """Another lookup."""
        return order

    class Tools:
        @threadline.hookimpl
        def threadline_register_tools(self, register: Any) -> None:
            register(from_plugin)

    with pytest.raises(threadline.PluginError) as caught:
        SessionManager(storage=MemoryStorage(), plugins=[Tools()], tools=[given])
    assert "'lookup' is registered by two plugins" in str(caught.value)
    assert str(caught.value).endswith("and 'SessionManager(tools=...)'")


async def test_a_storage_plugin_is_made_with_the_settings_of_its_table(tmp_path: Path) -> None:
    @attrs.frozen
    class ShelfConfig:
        shelf: str = "default"

    class Shelf(MemoryStorage):
        def __init__(self, config: ShelfConfig) -> None:
            super().__init__()
            self.config = config

    class ShelfPlugin:
        @threadline.hookimpl
        def threadline_register_storage(self, register: Any) -> None:
            register("shelf", Shelf, config=ShelfConfig)

    path = tmp_path / "threadline.toml"
    path.write_text('[storage]\nbackend = "shelf"\nshelf = "top"\n')
    async with SessionManager.from_config(path, plugins=[ShelfPlugin()]) as manager:
        assert isinstance(manager.storage, Shelf) and manager.storage.config == ShelfConfig("top")


async def test_startup_and_shutdown_hooks_get_the_manager() -> None:
    seen: list[tuple[str, Any]] = []

    class Lifecycle:
        @threadline.hookimpl
        def threadline_startup(self, manager: SessionManager) -> None:
            seen.append(("startup", manager))

        @threadline.hookimpl
        def threadline_shutdown(self, manager: SessionManager) -> None:
            seen.append(("shutdown", manager))

    manager = SessionManager(storage=MemoryStorage(), plugins=[Lifecycle()])
    async with manager:
        pass
    assert seen == [("startup", manager), ("shutdown", manager)]


async def test_an_unknown_provider_is_refused_before_anything_is_stored(manager: SessionManager) -> None:
    with pytest.raises(ConfigError) as caught:
        await manager.create_session(provider="nope")
    assert str(caught.value).startswith("provider: no provider plugin named 'nope'; installed: ")
    assert "echo" in str(caught.value).rpartition("installed: ")[2].split(", ")
    assert (await manager.list_sessions()).items == ()
    with pytest.raises(ConfigError, match=r"^provider: no provider plugin named 'nope'"):
        manager.provider("nope")


async def test_the_default_model_goes_only_to_the_default_provider() -> None:
    config = Config.from_dict({"defaults": {"provider": "echo", "model": "echo-2"}})
    async with SessionManager(config, storage=MemoryStorage(), providers={"other": EchoProvider()}) as manager:
        assert (await manager.create_session()).record.model == "echo-2"
        assert (await manager.create_session(provider="other")).record.model is None


def test_a_default_model_without_a_default_provider_is_refused() -> None:
    config = Config.from_dict({"defaults": {"model": "gpt-4.1"}}, file="tl.toml")
    with pytest.raises(ConfigError) as caught:
        SessionManager(config, storage=MemoryStorage())
    assert (caught.value.file, caught.value.key) == ("tl.toml", "defaults.model")
    assert str(caught.value) == (
        "tl.toml: defaults.model: 'gpt-4.1' needs [defaults] provider: without one, new sessions go to whichever "
        "provider has its API key set (now echo), which may not serve that model; set provider too, or leave "
        "model out for the provider's own default_model"
    )


def test_the_model_a_provider_is_asked_for_by_default() -> None:
    config = Config.from_dict({"providers": {"echo": {"default_model": "echo-7"}}})
    manager = SessionManager(config, storage=MemoryStorage(), providers={"mine": EchoProvider()})
    assert manager.provider_default_model("echo") == "echo-7"
    assert manager.provider_default_model("mine") is None  # an object: its settings are its own
    assert manager.provider_default_model("ghost") is None  # not installed


class Plain:
    """A provider plugin registered without a settings class."""

    @threadline.hookimpl
    def threadline_register_providers(self, register: Any) -> None:
        register("plain", lambda config: EchoProvider())


def test_a_provider_without_settings_has_no_default_model() -> None:
    manager = SessionManager(storage=MemoryStorage(), plugins=[Plain()])
    assert manager.provider_default_model("plain") is None


def test_a_provider_given_as_an_object_has_no_default_model_from_the_config() -> None:
    config = Config.from_dict({"providers": {"echo": {"default_model": "echo-7"}}})
    manager = SessionManager(config, storage=MemoryStorage(), providers={"echo": EchoProvider()})
    assert manager.provider_default_model("echo") is None


async def test_events_of_a_storage_that_gives_none_are_a_config_error(manager: SessionManager) -> None:
    with pytest.raises(ConfigError, match="the MemoryStorage storage gives no events across processes"):
        manager.events()
    with pytest.raises(ConfigError, match="name a tenant or ask for all tenants, not both"):
        manager.events(tenant="a", all_tenants=True)
