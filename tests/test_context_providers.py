"""threadline-context with the provider plugins on their fake APIs, which count tokens their
own way and say so in each reply's usage and at their counting endpoints: a call over its
budget is counted by the API, what is sent fits by the API's count, and a summary made by
one provider is sent to another as part of its system prompt."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
for plugin in ("anthropic", "gemini"):
    sys.path.insert(0, str(PLUGINS / plugin / "tests"))

from fake_anthropic import COUNT_PATH, FakeAnthropic  # noqa: E402
from fake_gemini import FakeGemini  # noqa: E402

from threadline import Config, SessionManager  # noqa: E402
from threadline_context import SUMMARY_PROMPT  # noqa: E402
from threadline_context.summary import HEADING, SUMMARY_KEY  # noqa: E402
from threadline_openai.testing import FakeOpenAI  # noqa: E402

BUDGET = 3_000


@pytest.fixture
async def apis() -> AsyncIterator[tuple[FakeAnthropic, FakeGemini]]:
    async with FakeAnthropic() as anthropic, FakeGemini() as gemini:
        yield anthropic, gemini


def manager(anthropic: FakeAnthropic, gemini: FakeGemini, **context: Any) -> SessionManager:
    providers = {
        "anthropic": {"api_key": "sk-ant-test", "base_url": anthropic.url, "max_retries": 0},
        "gemini": {"api_key": "gm-test", "base_url": gemini.url, "max_retries": 0},
    }
    middleware = {"chain": ["context"], "context": {"max_tokens": BUDGET, **context}}
    config = {"storage": {"backend": "memory"}, "providers": providers, "middleware": middleware}
    return SessionManager(Config.from_dict(config))


def history(turns: int) -> list[tuple[str, str]]:
    text = " ".join(["word"] * 20)
    return [pair for n in range(turns) for pair in (("user", f"q{n} {text}"), ("assistant", f"a{n} {text}"))]


async def test_a_call_over_its_budget_is_counted_by_the_api_and_sent_within_it(
    apis: tuple[FakeAnthropic, FakeGemini],
) -> None:
    anthropic, gemini = apis
    async with manager(anthropic, gemini) as tl:
        session = await tl.create_session(provider="anthropic", system_prompt="Be brief.")
        await session.add(history(300))
        first = await session.send("and now?")
        assert [request.path for request in anthropic.requests] == [COUNT_PATH, "/v1/messages"]
        assert first.usage is not None and BUDGET / 2 < first.usage.input_tokens <= BUDGET  # the API's count
        second = await session.send("and then?")
        assert [request.path for request in anthropic.requests][2:] == ["/v1/messages"]  # its scale is known now
        assert second.usage is not None and BUDGET / 2 < second.usage.input_tokens <= BUDGET


async def test_a_call_that_fits_by_the_apis_count_is_sent_whole(apis: tuple[FakeAnthropic, FakeGemini]) -> None:
    anthropic, gemini = apis
    async with manager(anthropic, gemini, max_tokens=1_000) as tl:
        session = await tl.create_session(provider="gemini")
        await session.add(history(20))  # about 1,200 tokens by the estimate, 250 by the fake's count
        await session.send("hi")
        count, call = gemini.requests
        assert count.path.endswith(":countTokens") and len(call.json()["contents"]) == 41


async def test_a_summary_by_one_provider_goes_to_another_in_its_system_prompt(
    apis: tuple[FakeAnthropic, FakeGemini],
) -> None:
    anthropic, gemini = apis
    async with manager(anthropic, gemini, strategy="summarize", keep_last=2, summary_provider="anthropic") as tl:
        session = await tl.create_session(provider="gemini", system_prompt="Be brief.")
        await session.add(history(300))
        await session.send("and now?")
        (asked,) = [request.json() for request in anthropic.requests if request.path == "/v1/messages"]
        assert asked["system"] == SUMMARY_PROMPT and str(asked["messages"][0]["content"]).startswith("User: q0")
        body = gemini.requests[-1].json()
        system = body["systemInstruction"]["parts"][0]["text"]
        assert system.startswith("Be brief.\n\n" + HEADING + "\nHello from the fake Anthropic API.")
        assert [c["parts"][0]["text"][:5] for c in body["contents"]] == ["q299 ", "a299 ", "and n"]
        stored = await session.history()
        assert stored[0].provider == "anthropic" and len(stored) == 5


async def test_after_a_summary_openai_is_sent_the_new_history_not_the_conversation_it_keeps() -> None:
    """OpenAI keeps the conversation (``previous_response_id``, the Responses API's default
    here); the call after a summary sends the summarised history whole, and the calls after
    it continue from OpenAI's copy again."""
    async with FakeOpenAI() as openai:
        providers = {"openai": {"api_key": "sk-test", "base_url": openai.url, "max_retries": 0}}
        middleware = {"chain": ["context"], "context": {"strategy": "summarize", "max_tokens": 200, "keep_last": 2}}
        config = {"storage": {"backend": "memory"}, "providers": providers, "middleware": middleware}
        async with SessionManager(Config.from_dict(config)) as tl:
            session = await tl.create_session(provider="openai")
            for n in range(12):
                await session.send(f"question {n} " + "detail " * 40)
            stored = await session.history()
        bodies = [request.json() for request in openai.requests if request.path == "/v1/responses"]
        asked = [n for n, body in enumerate(bodies) if body.get("instructions") == SUMMARY_PROMPT]
        assert asked and SUMMARY_KEY in stored[0].metadata
        answered = bodies[asked[-1] + 1]
        assert "previous_response_id" not in answered
        assert answered["input"][0]["content"][0]["text"].startswith(HEADING)
        assert all("previous_response_id" in body for body in bodies[asked[-1] + 2 :])


async def test_a_trimmed_call_to_openai_is_sent_whole_not_after_the_conversation_it_keeps() -> None:
    """Trimming, with OpenAI keeping the conversation: each trimmed call sends what is kept,
    whole, and later calls continue from that, so every turn is answered within the budget."""
    async with FakeOpenAI() as openai:
        providers = {"openai": {"api_key": "sk-test", "base_url": openai.url, "max_retries": 0}}
        middleware = {"chain": ["context"], "context": {"max_tokens": 300}}
        config = {"storage": {"backend": "memory"}, "providers": providers, "middleware": middleware}
        async with SessionManager(Config.from_dict(config)) as tl:
            session = await tl.create_session(provider="openai")
            replies = [await session.send(f"question {n} " + "detail " * 40) for n in range(40)]
        assert all(reply.usage is not None and reply.usage.input_tokens <= 300 for reply in replies)
        bodies = [request.json() for request in openai.requests if request.path == "/v1/responses"]
        whole = [body for body in bodies[1:] if "previous_response_id" not in body]
        assert whole and len(whole) < len(bodies) - 1  # trimmed calls start afresh, the rest continue
