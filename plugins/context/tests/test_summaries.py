"""``strategy = "summarize"`` through a real SessionManager, the memory storage and the echo
provider, which summarises by saying back the first ``summary_max_tokens`` words of the
transcript it is sent: the summary is stored in place of the older turns, which stay as a
revision; a summary that fails leaves the history as it was and the turn trimmed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import threadline
from threadline import Config, Role, SessionManager, ToolCall, ToolResult
from threadline.testing import Reply
from threadline_context import SUMMARY_PROMPT
from threadline_context.summary import HEADING, SUMMARY_KEY

SETTINGS: dict[str, Any] = {"strategy": "summarize", "max_tokens": 1_000, "keep_last": 2, "summary_max_tokens": 40}


def manager(windows: dict[str, int] | None = None, **context: Any) -> SessionManager:
    """The echo models' windows are large enough for a whole transcript to be summarised,
    unless ``windows`` says otherwise."""
    config = {
        "storage": {"backend": "memory"},
        "providers": {"echo": {"context_windows": (windows or {}) | {"echo-*": 100_000}}},
        "middleware": {"chain": ["context"], "context": SETTINGS | context},
    }
    return SessionManager(Config.from_dict(config), tools=[clock])


@threadline.tool
def clock() -> str:
    """The time."""
    return "noon"


def history(turns: int, start: int = 0) -> list[tuple[str, str]]:
    text = " ".join(["word"] * 20)
    return [pair for n in range(start, start + turns) for pair in (("user", f"q{n} {text}"), ("assistant", f"a{n}"))]


async def test_older_turns_are_summarised_stored_in_their_place_and_kept_as_a_revision() -> None:
    edits: list[Any] = []
    async with manager() as tl:
        tl.plugin_manager.register(Audit(edits))
        echo = tl.provider("echo")
        session = await tl.create_session(system_prompt="Be brief.")
        await session.add(history(100))
        reply = await session.send("and now?")

        asked, answered = echo.requests[-2:]
        assert asked.system_prompt == SUMMARY_PROMPT and asked.options.max_tokens == 40
        (transcript,) = asked.messages
        assert transcript.role is Role.USER and transcript.text.startswith("User: q0 word")
        assert "Assistant: a98" in transcript.text  # every older turn, up to the kept ones

        stored = await session.history()
        summary = stored[0]
        assert summary.role is Role.SYSTEM and summary.text.startswith(HEADING + "\nUser: q0 word")
        assert summary.metadata[SUMMARY_KEY] == {"messages": 198}
        assert [m.text for m in stored[1:]] == [history(1, 99)[0][1], "a99", "and now?", "and now?"]
        assert [m.seq for m in stored] == [1, 2, 3, 4, 5]
        assert [m.text for m in answered.messages] == [m.text for m in stored[:4]]
        assert [m.seq for m in answered.messages] == [1, 2, 3, 4]  # numbered as stored now
        sent = [await echo.count_tokens(request) for request in (asked, answered)]
        assert sent[1] <= 1_000
        assert reply.usage is not None and reply.usage.input_tokens == sum(sent)  # the summary's cost is counted

        (revision,) = await session.revisions()
        assert [m.text for m in revision.replaced[:2]] == [history(1)[0][1], "a0"]
        assert len(revision.replaced) == 201 and revision.after_seq == 0  # the summarised and the renumbered
        assert [(r.number, added[0].id) for r, added in edits] == [(1, summary.id)]


async def test_a_session_of_ten_thousand_messages_is_summarised_and_sent_within_its_budget() -> None:
    async with manager() as tl:  # a summariser that takes 75,000 tokens: the transcript goes in parts
        echo = tl.provider("echo")
        session = await tl.create_session()
        await session.add(history(5_000))
        await session.send("and now?")
        assert await echo.count_tokens(echo.requests[-1]) <= 1_000
        stored = await session.history()
        assert len(stored) == 5 and stored[0].metadata[SUMMARY_KEY] == {"messages": 9_998}
        (revision,) = await session.revisions()
        assert len(revision.replaced) == 10_001  # every message as it was, the question included


async def test_the_next_summary_is_made_from_the_last_and_the_turns_since() -> None:
    async with manager() as tl:
        echo = tl.provider("echo")
        session = await tl.create_session()
        await session.add(history(100))
        await session.send("first")
        first = (await session.history())[0]
        await session.add(history(100, start=100))
        await session.send("second")
        (transcript,) = echo.requests[-2].messages
        assert transcript.text.startswith(first.text + "\n\nUser: q99 ")
        stored = await session.history()
        assert stored[0].text.startswith(HEADING) and stored[0].id != first.id
        assert [m.text for m in stored[-2:]] == ["second", "second"] and len(stored) == 5
        assert len(await session.revisions()) == 2


async def test_system_notes_before_the_conversation_are_kept_as_the_system_prompt_is() -> None:
    async with manager() as tl:
        session = await tl.create_session()
        await session.add([("system", "Answer in French."), *history(100)])
        await session.send("and now?")
        note, summary, *_ = await session.history()
        assert (note.role, note.text) == (Role.SYSTEM, "Answer in French.")
        assert summary.text.startswith(HEADING + "\nUser: q0 ")


async def test_a_transcript_longer_than_the_summarisers_window_is_summarised_in_parts() -> None:
    async with manager(windows={"echo-small": 2_000}, summary_model="echo-small") as tl:
        echo = tl.provider("echo")
        session = await tl.create_session()
        await session.add(history(100))
        await session.send("and now?")
        asked = [request for request in echo.requests if request.system_prompt == SUMMARY_PROMPT]
        transcripts = [request.messages[0].text for request in asked]
        assert len(asked) >= 3 and all(request.model == "echo-small" for request in asked)
        assert all(text.startswith(HEADING + "\n") for text in transcripts[1:])  # the summary so far first
        assert max([await echo.count_tokens(request) for request in asked]) <= 2_000 * 0.75
        lines = {line for text in transcripts for line in text.splitlines()}
        assert all({f"User: {history(1, n)[0][1]}", f"Assistant: a{n}"} <= lines for n in range(99))  # none left out
        (summary, *_) = await session.history()
        assert summary.metadata[SUMMARY_KEY] == {"messages": 198}


async def test_a_message_longer_than_a_part_is_split_across_parts() -> None:
    async with manager(windows={"echo-small": 2_000}, summary_model="echo-small") as tl:
        echo = tl.provider("echo")
        session = await tl.create_session()
        long = " ".join(f"w{n}" for n in range(3_000))
        await session.add([*history(2), ("user", long), ("assistant", "read it"), *history(40, start=2)])
        await session.send("and now?")
        sent = " ".join(r.messages[0].text for r in echo.requests if r.system_prompt == SUMMARY_PROMPT)
        assert all(f"w{n} " in sent or f"w{n}\n" in sent or sent.endswith(f"w{n}") for n in range(3_000))
        assert "(continued) " in sent


async def test_a_failed_summary_leaves_the_history_and_the_turn_is_answered_trimmed() -> None:
    async with manager() as tl:
        echo = tl.provider("echo")
        session = await tl.create_session()
        await session.add(history(100))
        echo.script([Reply(error="unavailable")])
        reply = await session.send("still there?")
        assert reply.text == "still there?"
        assert len(await session.history()) == 202 and await session.revisions() == []
        assert await echo.count_tokens(echo.requests[-1]) <= 1_000


async def test_a_summary_from_another_model_and_a_streamed_turn() -> None:
    async with manager(summary_model="echo-small", keep_first=1) as tl:
        echo = tl.provider("echo")
        session = await tl.create_session(model="echo-big")
        await session.add(history(100))
        events = [event async for event in session.stream("streamed")]
        assert events[-1].message.text == "streamed"
        asked, answered = echo.requests[-2:]
        assert (asked.model, answered.model) == ("echo-small", "echo-big")
        stored = await session.history()
        assert [m.text for m in stored[:2]] == [history(1)[0][1], "a0"]  # keep_first
        assert stored[2].text.startswith(HEADING + "\nUser: q1 ")
        assert stored[2].model == "echo-small" and len(stored) == 7


async def test_tool_calls_are_summarised_with_their_results_and_the_kept_ones_stay_whole() -> None:
    async with manager(keep_last=3) as tl:
        echo = tl.provider("echo")
        session = await tl.create_session(tools=["clock"])
        await session.add([message for n in range(100) for message in tool_turn(session.id, n)])
        await session.send("and now?")
        (transcript,) = echo.requests[-2].messages
        assert "Assistant: [called clock({})]\n\nTool: [result: noon]\n\nAssistant: noon, 0" in transcript.text
        request = echo.requests[-1].messages
        assert [m.role for m in request] == [
            Role.SYSTEM,
            *[Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT] * 2,
            Role.USER,
        ]
        calls = [part.id for m in request for part in m.parts if isinstance(part, ToolCall)]
        results = [part.call_id for m in request for part in m.parts if isinstance(part, ToolResult)]
        assert calls == results == ["call-98", "call-99"]


def tool_turn(session_id: str, n: int) -> list[threadline.Message]:
    """A turn in which the model called the clock and answered with what it said."""
    parts: list[tuple[Role, Any]] = [
        (Role.USER, threadline.Text(f"time {n}? " + "please " * 10)),
        (Role.ASSISTANT, ToolCall(f"call-{n}", "clock", {})),
        (Role.TOOL, ToolResult(f"call-{n}", "noon")),
        (Role.ASSISTANT, threadline.Text(f"noon, {n}")),
    ]
    return [threadline.Message(session_id, 1, role, (part,)) for role, part in parts]


@pytest.mark.parametrize("settings", [{"strategy": "trim"}, {"max_tokens": 100_000}])
async def test_nothing_is_summarised_when_it_fits_or_the_strategy_is_trim(settings: dict[str, Any]) -> None:
    async with manager(**settings) as tl:
        session = await tl.create_session()
        await session.add(history(100))
        await session.send("hi")
        assert len(await session.history()) == 202 and await session.revisions() == []


class Audit:
    """A plugin that keeps what ``threadline_history_edited`` was told."""

    def __init__(self, edits: list[Any]) -> None:
        self.edits = edits

    @threadline.hookimpl
    def threadline_history_edited(self, session: Any, revision: Any, added: Any) -> None:
        self.edits.append((revision, added))


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_turn_cancelled_while_its_summary_is_made_leaves_the_history_as_it_was(how: str) -> None:
    config = {
        "storage": {"backend": "memory"},
        "providers": {"echo": {"latency": 0.5, "context_windows": {"echo-*": 100_000}}},
        "middleware": {"chain": ["context"], "context": SETTINGS},
    }
    async with SessionManager(Config.from_dict(config)) as tl:
        session = await tl.create_session()
        await session.add(history(100))

        async def turn() -> None:
            if how == "send":
                await session.send("and now?")
            else:
                async for _ in session.stream("and now?"):
                    pass

        task = asyncio.create_task(turn())
        await asyncio.sleep(0.2)  # the summary call is waiting for its reply
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stored = await session.history()
        assert len(stored) == 201 and stored[-1].text == "and now?" and stored[-1].status.value == "failed"
        assert await session.revisions() == []
        await session.send("again")  # the session goes on
