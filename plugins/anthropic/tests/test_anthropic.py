"""threadline-anthropic against the fake Messages API: what the SDK sent, what threadline
made of the answer, and how failures come out."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from conftest import MakeProvider
from fake_anthropic import SIGNATURE, FakeAnthropic, error_body, input_tokens

import threadline
from threadline import (
    CallOptions,
    Done,
    File,
    Image,
    Message,
    Request,
    Role,
    StreamAssembler,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
)
from threadline.testing import WEATHER, Reply, ScriptedToolCall, collect, tool_conversation
from threadline.testing.wire_server import HTTPReply, sse

HISTORY = tool_conversation("toolu_9")
MODEL = "claude-sonnet-4-6"


def request(*messages: Message, **options: object) -> Request:
    return Request(MODEL, messages or HISTORY, "Be brief.", (WEATHER,), CallOptions(**options))  # type: ignore[arg-type]


# -- what is sent -------------------------------------------------------------------


async def test_request_body(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    await make_provider().complete(request(temperature=0.2, stop=("END",), extra={"top_k": 5}))
    sent = fake_api.requests[0]
    assert sent.path == "/v1/messages" and "anthropic-version" in sent.headers
    assert "sk-ant-test" in sent.headers.get("x-api-key", sent.headers.get("authorization", ""))
    assert sent.json() == {
        "model": MODEL,
        "max_tokens": 8192,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_9", "content": '{"temp": 21}'},
                    {"type": "tool_result", "tool_use_id": "call_8", "content": "boom", "is_error": True},
                ],
            },
            {"role": "user", "content": "And tomorrow?"},
        ],
        "system": "Be brief.",
        "tools": [
            {"name": "get_weather", "description": WEATHER.description, "input_schema": dict(WEATHER.parameters)}
        ],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "top_k": 5,
    }


async def test_a_system_message_in_the_history_joins_the_system_prompt(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    history = (Message("s", 1, Role.SYSTEM, (Text("Answer in French."),)), HISTORY[0])
    await make_provider().complete(request(*history, max_tokens=100))
    sent = fake_api.requests[0].json()
    assert sent["system"] == "Be brief.\n\nAnswer in French." and sent["max_tokens"] == 100
    assert [m["role"] for m in sent["messages"]] == ["user"]


async def test_prompt_caching_marks_the_system_prompt_and_the_history(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    await make_provider(prompt_caching=True).complete(request())
    sent = fake_api.requests[0].json()
    assert sent["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    *_, before_last, last = sent["messages"]
    assert before_last["content"][-1]["cache_control"] == {"type": "ephemeral"}  # everything up to here is cached
    assert last == {"role": "user", "content": "And tomorrow?"}


@pytest.mark.parametrize(
    ("mode", "thinking"),
    [("adaptive", {"type": "adaptive"}), ("enabled", {"type": "enabled", "budget_tokens": 2048})],
)
async def test_thinking_modes(
    fake_api: FakeAnthropic, make_provider: MakeProvider, mode: str, thinking: dict[str, object]
) -> None:
    await make_provider(thinking=mode, thinking_budget=2048).complete(request())
    assert fake_api.requests[0].json()["thinking"] == thinking


# -- thinking blocks go back to Anthropic, and nowhere else ------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_thinking_blocks_ride_on_the_reply_and_are_sent_back(
    fake_api: FakeAnthropic, make_provider: MakeProvider, streamed: bool
) -> None:
    fake_api.thinking = "The user wants the weather; call the tool."
    fake_api.script([Reply(text="Let me check.", tool_calls=(ScriptedToolCall("get_weather", {"city": "Oslo"}),))])
    provider = make_provider(thinking="adaptive")
    if streamed:
        events = await collect(provider.stream(request(HISTORY[0])))
        done = events[-1]
        assert isinstance(done, Done)
        parts = done.parts
    else:
        parts = (await provider.complete(request(HISTORY[0]))).parts
    text, call = parts
    assert isinstance(text, Text) and text.text == "Let me check." and isinstance(call, ToolCall)
    expected = {"type": "thinking", "thinking": "The user wants the weather; call the tool.", "signature": SIGNATURE}
    assert text.provider_data == {"anthropic": {"thinking": [expected]}}

    reply = Message("s", 2, Role.ASSISTANT, parts)
    result = Message("s", 3, Role.TOOL, (ToolResult(call.id, "21 degrees"),))
    await provider.complete(request(HISTORY[0], reply, result))
    assistant = fake_api.requests[1].json()["messages"][1]
    assert assistant["content"][0] == expected  # first, unchanged, as the API requires
    assert [block["type"] for block in assistant["content"]] == ["thinking", "text", "tool_use"]


async def test_thinking_is_stored_and_sent_back_after_another_providers_turn(
    fake_api: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_api.thinking = "Private reasoning."
    monkeypatch.setenv("THREADLINE_PLUGINS", "anthropic,echo,memory")
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "anthropic"\nmodel = "{MODEL}"\n[storage]\nbackend = "memory"\n'
        f'[providers.anthropic]\napi_key = "sk-ant-test"\nbase_url = "{fake_api.url}"\nmax_retries = 0\n'
        'thinking = "adaptive"\n'
    )
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session()
        async for _ in session.stream("One"):
            pass
        assert (await session.send("Two", provider="echo")).text == "Two"
        await session.send("Three")
    resent = fake_api.requests[1].json()["messages"]
    assert [m["role"] for m in resent] == ["user", "assistant", "user", "assistant", "user"]
    assert resent[1]["content"][0]["thinking"] == "Private reasoning."
    assert resent[1]["content"][0]["signature"] == SIGNATURE


async def test_other_providers_data_is_not_sent(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    reply = Message("s", 2, Role.ASSISTANT, (Text("Hi", provider_data={"gemini": {"thought_signature": "c2ln"}}),))
    await make_provider().complete(request(HISTORY[0], reply, HISTORY[3]))
    assert "c2ln" not in fake_api.requests[0].body.decode()


# -- attachments ----------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n fake"


async def test_attachments(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    parts = (
        Text("What is in these?"),
        Image("image/png", data=PNG),
        Image("image/jpeg", url="https://example.com/cat.jpg"),
        File("application/pdf", data=b"%PDF-1.7 fake", name="report.pdf"),
        File("application/pdf", url="https://example.com/a.pdf"),
        File("text/plain", data=b"plain notes", name="notes.txt"),
    )
    await make_provider().complete(request(Message("s", 1, Role.USER, parts)))
    (user,) = fake_api.requests[0].json()["messages"]
    assert user["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgogZmFrZQ=="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjcgZmFrZQ=="},
        },
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
    ]


async def test_an_attachment_the_model_cannot_take_fails_before_any_call(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    message = Message("s", 1, Role.USER, (Image("image/png", data=PNG),))
    with pytest.raises(threadline.BadRequest, match="does not accept images"):
        await provider.complete(Request("claude-2.1", (message,)))
    assert fake_api.requests == []


# -- what comes back ----------------------------------------------------------------------


async def test_streamed_parallel_tool_calls_in_many_chunks(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    fake_api.thinking = "Two cities: two calls."  # block 0 is thinking, so tool blocks are at 2 and 3
    calls = (ScriptedToolCall("get_weather", {"city": "Oslo"}), ScriptedToolCall("get_weather", {"city": "Rome"}))
    fake_api.script([Reply(text="Let me look.", tool_calls=calls)])
    events = await collect(make_provider().stream(request()))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(deltas) > 10
    assert [d.index for d in deltas if d.id] == [0, 1]
    assembler = StreamAssembler()
    for event in events:
        if not isinstance(event, Done):
            assembler.add(event)
    assert [(c.name, dict(c.arguments)) for c in assembler.parts() if isinstance(c, ToolCall)] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    done = events[-1]
    assert isinstance(done, Done) and done.finish_reason == "tool_calls" and done.model == MODEL
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 1  # the final count, from message_delta


async def test_cached_tokens_count_as_input(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 50,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "output_tokens": 30,
        },
    }
    fake_api.answer_next(HTTPReply.json(body))
    response = await make_provider().complete(request())
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cached_tokens) == (2150, 30, 2000)
    assert response.finish_reason == "length"


# -- context windows and token counting ----------------------------------------------------------


def test_capabilities_give_the_context_window_of_known_models(make_provider: MakeProvider) -> None:
    provider = make_provider()
    assert provider.capabilities(None).max_context == 1_000_000  # the default model, claude-sonnet-4-6
    assert provider.capabilities("claude-opus-4-6").max_context == 1_000_000
    assert provider.capabilities("claude-sonnet-4-5-20250929").max_context == 200_000
    assert provider.capabilities("claude-3-5-haiku-latest").max_context == 200_000
    assert provider.capabilities("house-model").max_context is None  # unknown: not guessed


def test_configured_context_windows_come_before_the_known_ones(make_provider: MakeProvider) -> None:
    provider = make_provider(context_windows={"claude-sonnet-4-6*": 200_000, "house-*": 32_000})
    assert provider.capabilities("claude-sonnet-4-6").max_context == 200_000
    assert provider.capabilities("house-model").max_context == 32_000
    assert provider.capabilities("claude-opus-5").max_context == 1_000_000  # the rest as known


async def test_count_tokens_sends_the_messages_body_without_the_reply_settings(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    provider = make_provider(thinking="enabled")
    asked = request(temperature=0.2, stop=("END",), max_tokens=2000, extra={"top_k": 5})
    await provider.complete(asked)
    tokens = await provider.count_tokens(asked)
    sent, counted = fake_api.requests
    assert counted.method == "POST" and counted.path == "/v1/messages/count_tokens"
    kept = ("model", "messages", "system", "tools", "thinking")  # no max_tokens, temperature, stop_sequences, top_k
    assert counted.json() == {key: sent.json()[key] for key in kept}
    assert tokens == input_tokens(counted.json())


@pytest.mark.parametrize("prompt_caching", [False, True])
async def test_count_tokens_equal_the_input_tokens_of_the_same_request(
    make_provider: MakeProvider, prompt_caching: bool
) -> None:
    provider = make_provider(prompt_caching=prompt_caching)
    response = await provider.complete(request())
    assert await provider.count_tokens(request()) == response.usage.input_tokens


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [(401, "authentication_error", threadline.AuthenticationError), (429, "rate_limit_error", threadline.RateLimited)],
)
async def test_a_failed_count_is_mapped(
    fake_api: FakeAnthropic, make_provider: MakeProvider, status: int, kind: str, error: type[Exception]
) -> None:
    fake_api.answer_next(HTTPReply.json(error_body(kind, "refused"), status))
    with pytest.raises(error, match="refused"):
        await make_provider().count_tokens(request())


# -- failures -------------------------------------------------------------------------------


async def test_a_refused_key_names_where_to_set_it(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="auth")])
    with pytest.raises(threadline.AuthenticationError, match="ANTHROPIC_API_KEY") as raised:
        await make_provider().complete(request())
    assert "invalid x-api-key" in str(raised.value)


def test_no_key_at_all_names_where_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline_anthropic import AnthropicConfig
    from threadline_anthropic.provider import AnthropicProvider

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(threadline.AuthenticationError, match=r"api_key in \[providers.anthropic\]"):
        AnthropicProvider(AnthropicConfig())


async def test_rate_limits_say_when_to_retry(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="rate_limited", retry_after=30)])
    with pytest.raises(threadline.RateLimited) as raised:
        await make_provider().complete(request())
    assert raised.value.retry_after == 30


async def test_overloaded_is_unavailable_and_the_sdk_retries_as_configured(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    fake_api.script([Reply(error="unavailable")] * 3)
    with pytest.raises(threadline.ProviderUnavailable, match="Overloaded"):
        await make_provider(max_retries=1).complete(request())
    assert len(fake_api.requests) == 2


async def test_a_server_that_stalls_past_the_timeout_is_unavailable(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    fake_api.answer_next(HTTPReply.json({}, stall=5))
    stalled = rf"no reply from {re.escape(fake_api.url)}/\S* within 0\.3s"  # names where it asked
    with pytest.raises(threadline.ProviderUnavailable, match=stalled):
        await make_provider(timeout=0.3).complete(request())


async def test_an_error_event_inside_a_stream_is_mapped(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    start = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                  "content": [], "model": MODEL, "stop_reason": None,
                                                  "usage": {"input_tokens": 5, "output_tokens": 1}}}  # fmt: skip
    fake_api.answer_next(
        HTTPReply.stream([sse(start, "message_start"), sse(error_body("overloaded_error", "Overloaded"), "error")])
    )
    with pytest.raises(threadline.ProviderUnavailable, match="Overloaded"):
        await collect(make_provider().stream(request()))


async def test_context_too_long_is_its_own_error(fake_api: FakeAnthropic, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="context_too_long")])
    with pytest.raises(threadline.ContextTooLong, match="prompt is too long"):
        await collect(make_provider().stream(request()))


# -- start-up -------------------------------------------------------------------------------


def test_importing_and_discovering_the_plugin_does_not_import_the_sdk() -> None:
    code = (
        "import sys, threadline_anthropic; from threadline import get_plugin_manager; get_plugin_manager(); "
        "loaded = [m for m in ('anthropic', 'httpx2', 'pydantic') if m in sys.modules]; print(json.dumps(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", f"import json; {code}"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_a_base_url_without_a_key_is_refused_by_the_check_as_by_the_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its SDK will not start without a key, even for a proxy: the check says so first."""
    monkeypatch.setenv("THREADLINE_PLUGINS", "anthropic,echo,memory")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    providers = {"anthropic": {"base_url": "http://127.0.0.1:9"}}
    manager = threadline.SessionManager(
        threadline.Config.from_dict({"defaults": {"provider": "anthropic"}, "providers": providers})
    )
    with pytest.raises(threadline.AuthenticationError, match="no API key"):
        manager.check()
    with pytest.raises(threadline.AuthenticationError, match="no API key"):
        manager.provider("anthropic")


# -- structured output ------------------------------------------------------------------


@attrs.frozen
class City:
    name: str
    country: str


async def test_send_with_output_asks_for_the_schema_in_output_config(
    fake_api: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_PLUGINS", "anthropic,memory")
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "anthropic"\nmodel = "{MODEL}"\n[storage]\nbackend = "memory"\n'
        f'[providers.anthropic]\napi_key = "sk-ant-test"\nbase_url = "{fake_api.url}"\nmax_retries = 0\n'
    )
    fake_api.script([Reply(text='{"name": "Oslo", "country": "Norway"}')])
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session(system_prompt="Be brief.")
        assert await session.send("Capital of Norway?", output=City) == City("Oslo", "Norway")
    sent = fake_api.requests[0].json()
    assert sent["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
                "required": ["name", "country"],
                "additionalProperties": False,
            },
        }
    }
    assert sent["system"] == "Be brief." and "tool_choice" not in sent


@pytest.mark.parametrize(
    ("model", "native"),
    [("claude-3-5-haiku-20241022", False), ("claude-opus-4-1-20250805", False), ("claude-opus-4-5", True)],
)
async def test_models_from_before_structured_outputs_are_told_in_the_prompt(
    make_provider: MakeProvider, model: str, native: bool
) -> None:
    assert make_provider().capabilities(model).structured_output is native


async def test_a_schema_is_sent_as_structured_outputs_take_it(
    fake_api: FakeAnthropic, make_provider: MakeProvider
) -> None:
    schema = {
        "type": "object",
        "properties": {"year": {"type": "integer", "minimum": 1888}, "extra": {"type": "object"}},
    }
    fake_api.script([Reply(text='{"year": 2009, "extra": {}}')])
    await make_provider().complete(attrs.evolve(request(), output=threadline.OutputSchema("film", schema)))
    sent = fake_api.requests[0].json()["output_config"]["format"]["schema"]
    assert sent["additionalProperties"] is False and sent["properties"]["extra"]["additionalProperties"] is False
    assert "minimum" not in sent["properties"]["year"] and "1888" in sent["properties"]["year"]["description"]
