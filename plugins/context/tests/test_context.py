"""The context middleware through a real SessionManager, the memory storage and the offline
echo provider, which keeps every request it was sent: what a call sends fits, what is
stored stays whole."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import threadline
from threadline import Config, ContextTooLong, MessageStatus, Role, SessionManager, ToolCall, ToolResult
from threadline.testing import Reply, ScriptedToolCall
from threadline_context import ContextConfig
from threadline_context.summary import SUMMARY_KEY
from threadline_context.tokens import message_tokens
from threadline_context.turns import turns


def manager(echo: dict[str, Any] | None = None, **context: Any) -> SessionManager:
    config = {
        "storage": {"backend": "memory"},
        "providers": {"echo": echo or {}},
        "middleware": {"chain": ["context"], "context": context},
    }
    return SessionManager(Config.from_dict(config), tools=[clock])


def echo_of(manager: SessionManager) -> Any:
    """The echo provider, which keeps every request it was sent."""
    return manager.provider("echo")


@threadline.tool
def clock() -> str:
    """The time."""
    return "noon"


def sent(echo: Any) -> list[Any]:
    """The messages of the last request the provider was sent."""
    return list(echo.requests[-1].messages)


async def counted(echo: Any) -> int:
    """The tokens of the last request, as the provider counts them (a word a token)."""
    tokens: int = await echo.count_tokens(echo.requests[-1])
    return tokens


def long_history(turns_count: int, words: int = 20, word: str = "word") -> list[tuple[str, str]]:
    text = " ".join([word] * words)
    return [pair for n in range(turns_count) for pair in (("user", f"q{n} {text}"), ("assistant", f"a{n} {text}"))]


async def test_a_long_session_is_sent_within_the_budget_and_stored_whole() -> None:
    async with manager(max_tokens=2_000, keep_first=1) as tl:
        echo = echo_of(tl)
        session = await tl.create_session(system_prompt="Be brief.")
        await session.add(long_history(5_000))  # 10,000 messages
        reply = await session.send("and now?")
        request = sent(echo)
        assert reply.usage is not None and 1_000 < reply.usage.input_tokens <= 2_000  # as the provider counts
        assert request[0].text.startswith("q0 ") and request[1].text.startswith("a0 ")  # keep_first
        assert request[-1].text == "and now?"
        assert [m.role for m in request[2:-1]] == [Role.USER, Role.ASSISTANT] * ((len(request) - 3) // 2)
        assert request[-2].text.startswith("a4999 ")  # the newest turns, up to the last
        assert len(await session.history()) == 10_002


async def test_a_session_that_fits_is_sent_whole() -> None:
    async with manager(max_tokens=100_000) as tl:
        echo = echo_of(tl)
        session = await tl.create_session()
        await session.add(long_history(10))
        await session.send("hi")
        assert len(sent(echo)) == 21


async def test_a_tool_call_is_never_sent_without_its_result() -> None:
    async with manager(max_tokens=300) as tl:
        echo = echo_of(tl)
        session = await tl.create_session(tools=["clock"])
        for n in range(30):
            echo.script([Reply(tool_calls=(ScriptedToolCall("clock"),)), Reply(f"it is noon, {n}")])
            await session.send(f"time {n}? " + "please " * 10)
        request = sent(echo)
        assert await counted(echo) <= 300 and len(request) < len(await session.history())
        assert request[0].role is Role.USER
        calls = [part.id for m in request for part in m.parts if isinstance(part, ToolCall)]
        results = [part.call_id for m in request for part in m.parts if isinstance(part, ToolResult)]
        assert calls == results and calls


async def test_the_budget_is_a_share_of_the_models_window_less_the_reply() -> None:
    async with manager(echo={"context_windows": {"echo-*": 4_000}}, window_fraction=0.5) as tl:
        session = await tl.create_session(model="echo-big")
        await session.add(long_history(500))
        reply = await session.send("hi", max_tokens=500)
        assert reply.usage is not None and 1_000 < reply.usage.input_tokens <= 4_000 * 0.5 - 500


async def test_the_providers_count_saves_turns_the_estimate_would_leave_out() -> None:
    """Long words: four characters a token puts the history over the budget; the provider,
    which counts a word a token, says it fits, and it is sent whole."""
    history = long_history(50, words=10, word="supercalifragilistic")
    for count, whole in (("provider", True), ("estimate", False)):
        async with manager(max_tokens=2_000, count=count) as tl:
            echo = echo_of(tl)
            session = await tl.create_session()
            await session.add(history)
            assert sum(map(message_tokens, await session.history())) > 2_000
            await session.send("hi")
            assert (len(sent(echo)) == 101) is whole


async def test_the_usage_a_provider_reports_scales_later_estimates() -> None:
    async with manager(max_tokens=2_000, count="estimate") as tl:
        echo = echo_of(tl)
        session = await tl.create_session()
        await session.add(long_history(50, words=10, word="supercalifragilistic"))
        first = await session.send("hi")
        trimmed_to = len(sent(echo))
        second = await session.send("and again")
        assert len(sent(echo)) > trimmed_to + 2  # the usage said the estimate was high
        assert first.usage is not None and second.usage is not None
        assert second.usage.input_tokens <= 2_000


async def test_a_model_with_no_window_known_is_sent_whole() -> None:
    async with manager() as tl:
        echo = echo_of(tl)
        session = await tl.create_session(model="made-up-model")
        await session.add(long_history(500))
        await session.send("hi")
        assert len(sent(echo)) == 1_001


async def test_streamed_calls_are_trimmed_too() -> None:
    async with manager(max_tokens=500) as tl:
        echo = echo_of(tl)
        session = await tl.create_session()
        await session.add(long_history(100))
        events = [event async for event in session.stream("streamed")]
        assert events[-1].message.text == "streamed"
        assert 250 < await counted(echo) <= 500


async def test_a_turn_that_alone_does_not_fit_fails_before_the_provider() -> None:
    async with manager(max_tokens=50) as tl:
        echo = echo_of(tl)
        session = await tl.create_session()
        with pytest.raises(ContextTooLong, match=r"the turn being answered alone is over the 50 tokens"):
            await session.send("word " * 100)
        assert echo.requests == []
        (stored,) = await session.history()
        assert stored.status is MessageStatus.FAILED


def test_turns_begin_at_each_user_message_and_each_summary() -> None:
    session = threadline.SessionRecord()
    roles = [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT, Role.SYSTEM, Role.USER, Role.ASSISTANT]
    messages = [threadline.Message(session.id, n, role, (threadline.Text("x"),)) for n, role in enumerate(roles, 1)]
    messages[5] = attrs.evolve(messages[5], metadata={SUMMARY_KEY: {"messages": 4}})
    assert [[m.seq for m in turn] for turn in turns(messages)] == [[1], [2, 3, 4, 5], [6], [7, 8]]


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"window_fraction": 0}, "window_fraction"),
        ({"window_fraction": 1.5}, "window_fraction"),
        ({"keep_last": 0}, "keep_last"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"strategy": "forget"}, "strategy"),
        ({"count": "guess"}, "count"),
        ({"summary_max_tokens": 0}, "summary_max_tokens"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(threadline.ConfigError, match=says):
        SessionManager(Config.from_dict({"middleware": {"chain": ["context"], "context": settings}}))


def test_the_defaults_trim_three_quarters_of_a_known_window() -> None:
    config = ContextConfig()
    assert (config.strategy, config.max_tokens, config.window_fraction, config.keep_last) == ("trim", None, 0.75, 1)


async def test_a_call_refused_as_too_long_is_counted_again_trimmed_and_sent_once_more() -> None:
    """Long words teach the model a scale of a quarter; a session of short words, which the
    scale underestimates, is refused once by the provider, then counted and trimmed to fit."""
    async with manager(max_tokens=2_000) as tl:
        echo = echo_of(tl)
        long_words = await tl.create_session()
        await long_words.add(long_history(10, words=10, word="supercalifragilistic"))
        await long_words.send("hi")
        short_words = await tl.create_session()
        await short_words.add(long_history(60, words=30, word="a"))  # 3,720 words; about 1,900 tokens estimated
        echo.script([Reply(error="context_too_long")])
        reply = await short_words.send("and now?")
        assert reply.text == "and now?" and await counted(echo) <= 2_000 < len(echo.requests[-2].messages) * 30


async def test_a_file_does_not_teach_the_model_a_scale() -> None:
    """A PDF's estimate is a guess (a token for four bytes; echo counts none); the next
    session's text is still trimmed to fit by the provider's count."""
    async with manager(max_tokens=2_000) as tl:
        echo = echo_of(tl)
        with_file = await tl.create_session()
        await with_file.send([threadline.Text("read this"), threadline.File("application/pdf", data=b"%PDF" * 10_000)])
        text = await tl.create_session()
        await text.add(long_history(100))  # about 6,000 tokens estimated, 4,200 counted
        await text.send("and now?")
        assert 1_000 < await counted(echo) <= 2_000


async def test_a_summariser_not_installed_is_said_as_the_manager_opens() -> None:
    settings = {"strategy": "summarize", "summary_provider": "nosuch"}
    config = {"storage": {"backend": "memory"}, "middleware": {"chain": ["context"], "context": settings}}
    manager = SessionManager(Config.from_dict(config))
    with pytest.raises(
        threadline.ConfigError, match=r"middleware\.context\.summary_provider: no provider plugin named"
    ):
        await manager.open()
    settings["strategy"] = "trim"  # no summaries: the key is not used
    async with SessionManager(Config.from_dict(config)) as tl:
        await (await tl.create_session()).send("hi")


async def test_system_notes_before_the_conversation_stay_when_turns_are_trimmed() -> None:
    async with manager(max_tokens=500, keep_last=10) as tl:  # more than fits: the earlier of them go
        echo = echo_of(tl)
        session = await tl.create_session()
        await session.add([("system", "Always answer in French."), *long_history(30, words=30)])
        await session.send("last")
        request = sent(echo)
        assert request[0].text == "Always answer in French." and request[-1].text == "last"
        assert len(request) < 62
