"""threadline-openai against the fake OpenAI API: what the SDK sent, what threadline made of
the answer, and how failures come out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from conftest import MakeProvider

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
)
from threadline.testing import WEATHER, Reply, ScriptedToolCall, collect, tool_conversation
from threadline.testing.wire_server import HTTPReply, sse
from threadline_openai.testing import FakeOpenAI, input_tokens

HISTORY = tool_conversation("call_9")


def request(*messages: Message, **options: object) -> Request:
    return Request("gpt-4.1-mini", messages or HISTORY, "Be brief.", (WEATHER,), CallOptions(**options))  # type: ignore[arg-type]


# -- what is sent -------------------------------------------------------------------


async def test_chat_request_body(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    provider = make_provider(api="chat")
    await provider.complete(request(temperature=0.2, max_tokens=50, stop=("END",), extra={"seed": 7, "top_p": 0.5}))
    sent = fake_api.requests[0]
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == "Bearer sk-test"
    assert sent.json() == {
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_8", "content": "Error: boom"},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": WEATHER.description,
                    "parameters": dict(WEATHER.parameters),
                },
            }
        ],
        "temperature": 0.2,
        "max_tokens": 50,  # a compatible server's name for it; OpenAI's own is max_completion_tokens
        "stop": ["END"],
        "seed": 7,
        "top_p": 0.5,
    }


async def test_chat_on_openai_itself_names_max_completion_tokens(
    fake_api: FakeOpenAI, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_api.url)  # the SDK's own setting: no base_url in our config
    provider = make_provider(api="chat", base_url=None)
    await provider.complete(request(max_tokens=50))
    assert fake_api.requests[0].json()["max_completion_tokens"] == 50


async def test_responses_request_body(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    provider = make_provider(api="responses")
    await provider.complete(request(temperature=0.2, max_tokens=50, extra={"reasoning": {"effort": "low"}}))
    sent = fake_api.requests[0]
    assert sent.path == "/v1/responses"
    assert sent.json() == {
        "model": "gpt-4.1-mini",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_9", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
            {"type": "function_call_output", "call_id": "call_9", "output": '{"temp": 21}'},
            {"type": "function_call_output", "call_id": "call_8", "output": "boom"},
            {"role": "user", "content": [{"type": "input_text", "text": "And tomorrow?"}]},
        ],
        "store": True,
        "instructions": "Be brief.",
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": WEATHER.description,
                "parameters": dict(WEATHER.parameters),
            }
        ],
        "temperature": 0.2,
        "max_output_tokens": 50,
        "reasoning": {"effort": "low"},
    }


async def test_responses_api_refuses_stop_sequences_before_calling(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    with pytest.raises(threadline.BadRequest, match='api = "chat"'):
        await make_provider(api="responses").complete(request(stop=("END",)))
    assert fake_api.requests == []


async def test_streams_ask_for_usage(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    events = await collect(make_provider(api="chat").stream(request()))
    assert fake_api.requests[0].json()["stream_options"] == {"include_usage": True}
    done = events[-1]
    assert isinstance(done, Done) and done.usage.input_tokens > 0 and done.usage.output_tokens > 0


# -- attachments ----------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n fake"
PDF_BYTES = b"%PDF-1.7 fake"


def with_attachments() -> Message:
    parts = (
        Text("What is in these?"),
        Image("image/png", data=PNG),
        Image("image/jpeg", url="https://example.com/cat.jpg"),
        File("application/pdf", data=PDF_BYTES, name="report.pdf"),
    )
    return Message("s", 1, Role.USER, parts)


async def test_attachments_on_chat(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    await make_provider(api="chat", vision=True, pdf=True).complete(request(with_attachments()))
    (user,) = fake_api.requests[0].json()["messages"][1:]
    assert user["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgogZmFrZQ=="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {
            "type": "file",
            "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjcgZmFrZQ=="},
        },
    ]


async def test_attachments_on_responses(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    message = with_attachments()
    message = Message("s", 1, Role.USER, (*message.parts, File("application/pdf", url="https://example.com/a.pdf")))
    await make_provider(api="responses", vision=True, pdf=True).complete(request(message))
    (user,) = fake_api.requests[0].json()["input"]
    assert user["content"] == [
        {"type": "input_text", "text": "What is in these?"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgogZmFrZQ=="},
        {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
        {
            "type": "input_file",
            "filename": "report.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0xLjcgZmFrZQ==",
        },
        {"type": "input_file", "file_url": "https://example.com/a.pdf"},
    ]


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_attachment_the_model_cannot_take_fails_before_any_call(
    fake_api: FakeOpenAI, make_provider: MakeProvider, api: str
) -> None:
    provider = make_provider(api=api)  # a server at another base_url: no images assumed
    assert not provider.capabilities("llama3").vision
    with pytest.raises(threadline.BadRequest, match="does not accept images"):
        await provider.complete(request(with_attachments()))
    with pytest.raises(threadline.BadRequest, match="does not accept images"):
        await collect(provider.stream(request(with_attachments())))
    assert fake_api.requests == []


def test_openai_models_take_images_and_pdfs_and_text_only_ones_do_not() -> None:
    from threadline_openai import OpenAIConfig
    from threadline_openai.provider import OpenAIProvider

    provider = OpenAIProvider(OpenAIConfig(api_key="sk-test"))
    assert provider.capabilities("gpt-4.1").vision and provider.capabilities(None).pdf
    assert not provider.capabilities("gpt-3.5-turbo").vision
    assert provider.capabilities(None).native_state
    assert not OpenAIProvider(OpenAIConfig(api_key="sk-test", api="chat")).capabilities(None).native_state


@pytest.mark.parametrize(
    ("model", "window"),
    [
        (None, 1_047_576),  # the default model, gpt-4.1-mini
        ("gpt-4o-mini", 128_000),
        ("gpt-5-mini", 400_000),
        ("gpt-5-chat-latest", 128_000),  # matched before the broader gpt-5*
        ("gpt-5.4-mini", 400_000),
        ("gpt-5.4", 1_050_000),
        ("o1-mini", 128_000),
        ("o3", 200_000),
        ("llama3.2", None),  # unknown: not guessed
    ],
)
def test_capabilities_give_the_context_window_of_known_models(model: str | None, window: int | None) -> None:
    from threadline_openai import OpenAIConfig
    from threadline_openai.provider import OpenAIProvider

    assert OpenAIProvider(OpenAIConfig(api_key="sk-test")).capabilities(model).max_context == window


def test_configured_context_windows_come_before_the_known_ones(make_provider: MakeProvider) -> None:
    provider = make_provider(context_windows={"llama3*": 131_072, "gpt-4o*": 64_000})
    assert provider.capabilities("llama3.2").max_context == 131_072
    assert provider.capabilities("gpt-4o").max_context == 64_000
    assert provider.capabilities("o3-mini").max_context == 200_000  # the rest as known


# -- counting tokens ------------------------------------------------------------------------


async def test_count_tokens_sends_the_responses_body_without_the_reply_settings(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    fake_api.script([Reply(text="Not taken by the count.")])
    provider = make_provider()
    asked = request(temperature=0.2, max_tokens=50, extra={"reasoning": {"effort": "low"}, "top_p": 0.5})
    tokens = await provider.count_tokens(asked)
    response = await provider.complete(asked)
    counted, sent = fake_api.requests
    assert counted.method == "POST" and counted.path == "/v1/responses/input_tokens"
    kept = ("model", "input", "instructions", "tools", "reasoning")  # no store, temperature, max_output_tokens, top_p
    assert counted.json() == {key: sent.json()[key] for key in kept}
    assert tokens == input_tokens(counted.json()) == response.usage.input_tokens
    assert response.parts == (Text("Not taken by the count."),)


async def test_count_tokens_of_a_continued_conversation_name_the_previous_response(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    first = await provider.complete(request(HISTORY[0]))
    history = (HISTORY[0], Message("s", 2, Role.ASSISTANT, first.parts), Message("s", 3, Role.USER, (Text("Rome?"),)))
    follow_up = Request("gpt-4.1-mini", history, provider_state=first.provider_state)
    tokens = await provider.count_tokens(follow_up)
    counted = fake_api.requests[-1].json()
    assert counted["previous_response_id"] == "resp_000000" and len(counted["input"]) == 1
    assert tokens == (await provider.complete(follow_up)).usage.input_tokens


async def test_count_tokens_on_the_chat_api_is_none_without_a_request(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    assert await make_provider(api="chat").count_tokens(request()) is None
    assert fake_api.requests == []


async def test_a_refused_count_is_mapped(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    refused = {"error": {"message": "Incorrect API key provided: sk-test.", "code": "invalid_api_key"}}
    fake_api.answer_next(HTTPReply.json(refused, 401))
    with pytest.raises(threadline.AuthenticationError, match="Incorrect API key provided"):
        await make_provider().count_tokens(request())


# -- what comes back ----------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_streamed_parallel_tool_calls_in_many_chunks(
    fake_api: FakeOpenAI, make_provider: MakeProvider, api: str
) -> None:
    calls = (ScriptedToolCall("get_weather", {"city": "Oslo"}), ScriptedToolCall("get_weather", {"city": "Rome"}))
    fake_api.script([Reply(text="Let me look.", tool_calls=calls)])
    events = await collect(make_provider(api=api).stream(request()))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(deltas) > 10  # arguments arrived three characters at a time
    assert [d.index for d in deltas if d.id] == [0, 1]  # positions among tool calls, whatever the output index
    assembler = StreamAssembler()
    for event in events:
        assembler.add(event)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    assert [(c.name, dict(c.arguments)) for c in assembler.parts() if isinstance(c, ToolCall)] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Rome"}),
    ]
    done = events[-1]
    assert isinstance(done, Done) and done.finish_reason == "tool_calls" and done.model == "gpt-4.1-mini"


async def test_cached_tokens_are_reported(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920},
        },
    }
    fake_api.answer_next(HTTPReply.json(body))
    response = await make_provider(api="chat").complete(request())
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cached_tokens) == (
        2006,
        300,
        1920,
    )


# -- native conversation state ---------------------------------------------------------------


async def test_responses_continue_from_the_previous_response(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    provider = make_provider(api="responses")
    first = await provider.complete(request(HISTORY[0]))
    assert first.provider_state == {"response_id": "resp_000000", "through_seq": 2}
    follow_up = Message("s", 3, Role.USER, (Text("And Rome?"),))
    history = (HISTORY[0], Message("s", 2, Role.ASSISTANT, first.parts), follow_up)
    second = await provider.complete(Request("gpt-4.1-mini", history, "Be brief.", provider_state=first.provider_state))
    sent = fake_api.requests[1].json()
    assert sent["previous_response_id"] == "resp_000000"
    assert sent["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "And Rome?"}]}]
    assert second.provider_state is not None and second.provider_state["through_seq"] == 4


async def test_responses_send_the_whole_history_when_the_stored_one_is_gone(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    state = {"response_id": "resp_expired", "through_seq": 2}
    response = await make_provider(api="responses").complete(Request("gpt-4.1-mini", HISTORY, provider_state=state))
    first, second = (r.json() for r in fake_api.requests)
    assert first["previous_response_id"] == "resp_expired" and len(first["input"]) == 3
    assert "previous_response_id" not in second and len(second["input"]) == 6
    assert response.parts


async def test_native_state_off_sends_history_and_stores_nothing(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    state = {"response_id": "resp_000000", "through_seq": 2}
    response = await make_provider(native_state=False).complete(Request("m", HISTORY, provider_state=state))
    sent = fake_api.requests[0].json()
    assert sent["store"] is False and "previous_response_id" not in sent and len(sent["input"]) == 6
    assert response.provider_state is None


async def test_a_session_switches_between_openai_and_echo(
    fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_PLUGINS", "openai,echo,memory")
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "openai"\n[storage]\nbackend = "memory"\n'
        f'[providers.openai]\napi_key = "sk-test"\nbase_url = "{fake_api.url}"\nmax_retries = 0\n'
    )
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session()
        await session.send("One")
        await session.send("Two", provider="echo")
        third = await session.send("Three")
    first, second = (r.json() for r in fake_api.requests)
    assert "previous_response_id" not in first
    assert second["previous_response_id"] == "resp_000000"  # kept across the echo turn
    assert [item["content"][0]["text"] for item in second["input"]] == ["Two", "Two", "Three"]
    assert third.text == "Hello from the fake OpenAI API." and third.provider == "openai"


async def test_other_providers_data_is_not_sent(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    reply = Message("s", 2, Role.ASSISTANT, (Text("Hi", provider_data={"anthropic": {"signature": "sig"}}),))
    await make_provider(api="chat").complete(request(HISTORY[0], reply, HISTORY[3]))
    assert "sig" not in fake_api.requests[0].body.decode()


# -- failures -------------------------------------------------------------------------------


async def test_a_refused_key_names_where_to_set_it(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="auth")])
    with pytest.raises(threadline.AuthenticationError, match="OPENAI_API_KEY") as raised:
        await make_provider().complete(request())
    assert "Incorrect API key provided" in str(raised.value)


def test_no_key_at_all_names_where_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline_openai import OpenAIConfig
    from threadline_openai.provider import OpenAIProvider

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(threadline.AuthenticationError, match=r"api_key in \[providers.openai\], the OPENAI_API_KEY"):
        OpenAIProvider(OpenAIConfig())


@pytest.mark.parametrize("header", [{"retry-after": "12"}, {"retry-after-ms": "12000"}])
async def test_rate_limits_say_when_to_retry(
    fake_api: FakeOpenAI, make_provider: MakeProvider, header: dict[str, str]
) -> None:
    fake_api.answer_next(
        HTTPReply.json({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, 429, header)
    )
    with pytest.raises(threadline.RateLimited) as raised:
        await make_provider().complete(request())
    assert raised.value.retry_after == 12


async def test_the_sdk_retries_as_configured_and_no_more(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    for _ in range(3):
        fake_api.answer_next(HTTPReply.json({"error": {"message": "oops", "type": "server_error"}}, 500))
    with pytest.raises(threadline.ProviderUnavailable, match="oops"):
        await make_provider(max_retries=1).complete(request())
    assert len(fake_api.requests) == 2


async def test_a_server_that_stalls_past_the_timeout_is_unavailable(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    fake_api.answer_next(HTTPReply.json({}, stall=5))
    stalled = rf"no reply from {re.escape(fake_api.url)}/\S* within 0\.3s"  # names where it asked
    with pytest.raises(threadline.ProviderUnavailable, match=stalled):
        await make_provider(timeout=0.3).complete(request())


async def test_an_error_event_inside_a_stream_is_mapped(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    error = {"type": "error", "code": "rate_limit_exceeded", "message": "Too many tokens", "sequence_number": 1}
    fake_api.answer_next(HTTPReply.stream([sse(error, event="error")]))
    with pytest.raises(threadline.RateLimited, match="Too many tokens"):
        await collect(make_provider(api="responses").stream(request()))


async def test_context_too_long_is_its_own_error(fake_api: FakeOpenAI, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="context_too_long")])
    with pytest.raises(threadline.ContextTooLong, match="maximum context length"):
        await collect(make_provider(api="chat").stream(request()))


# -- start-up -------------------------------------------------------------------------------


def test_importing_and_discovering_the_plugin_does_not_import_the_sdk() -> None:
    code = (
        "import sys, threadline_openai; from threadline import get_plugin_manager; get_plugin_manager(); "
        "loaded = [m for m in ('openai', 'httpx2', 'pydantic') if m in sys.modules]; print(json.dumps(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", f"import json; {code}"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("command", [["config", "check"], ["chat"]])
def test_openai_as_the_default_without_a_key_is_refused_by_config_check_and_before_the_chat(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "threadline.toml"
    config.write_text('[defaults]\nprovider = "openai"\n[storage]\nbackend = "memory"\n')
    env = {name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"}
    env |= {"THREADLINE_PLUGINS": "openai,echo,memory", "XDG_DATA_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "threadline", "--config", str(config), *command],
        input="Hi\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == "", result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Error: openai: no API key: set api_key in [providers.openai], the OPENAI_API_KEY environment variable "
        "or run `threadline keys set openai`"
    )


async def test_with_a_key_in_the_environment_openai_is_the_default(
    fake_api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_PLUGINS", "openai,echo,memory")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_api.url)  # read by the SDK
    async with threadline.SessionManager(threadline.Config.from_dict({"storage": {"backend": "memory"}})) as tl:
        assert tl.default_provider == "openai"
        reply = await (await tl.create_session()).send("Hi")
    assert reply.provider == "openai" and reply.text == "Hello from the fake OpenAI API."


# -- structured output ------------------------------------------------------------------


@attrs.frozen
class City:
    """A city and its country."""

    name: str
    country: str


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_send_with_output_asks_for_the_schema_and_returns_the_value(
    fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    monkeypatch.setenv("THREADLINE_PLUGINS", "openai,memory")
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "openai"\n[storage]\nbackend = "memory"\n'
        f'[providers.openai]\napi_key = "sk-test"\nbase_url = "{fake_api.url}"\nmax_retries = 0\napi = "{api}"\n'
    )
    fake_api.script([Reply(text='{"name": "Oslo", "country": "Norway"}')])
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session(system_prompt="Be brief.")
        assert await session.send("Capital of Norway?", output=City) == City("Oslo", "Norway")
    sent = fake_api.requests[0].json()
    schema = {
        "name": "City",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
            "required": ["name", "country"],
            "additionalProperties": False,
            "description": "A city and its country.",
        },
        "strict": True,
    }
    if api == "chat":
        assert sent["response_format"] == {"type": "json_schema", "json_schema": schema}
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}  # no schema in the prompt
    else:
        assert sent["text"] == {"format": {"type": "json_schema", **schema}}
        assert sent["instructions"] == "Be brief."


async def test_a_server_without_structured_output_is_told_in_the_system_prompt(
    fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_PLUGINS", "openai,memory")
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "openai"\n[storage]\nbackend = "memory"\n'
        f'[providers.openai]\nbase_url = "{fake_api.url}"\napi = "chat"\nstructured_output = false\nmax_retries = 0\n'
    )
    fake_api.script([Reply(text='Sure: {"name": "Oslo", "country": "Norway"}')])
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session()
        assert await session.send("Capital of Norway?", output=City) == City("Oslo", "Norway")
    sent = fake_api.requests[0].json()
    assert "response_format" not in sent
    assert sent["messages"][0]["role"] == "system" and '"country"' in sent["messages"][0]["content"]


async def test_a_refusal_is_the_replys_text_whole_or_streamed(
    fake_api: FakeOpenAI, make_provider: MakeProvider
) -> None:
    """Under structured output a model may refuse (`message.refusal`, no content): what it
    said is the reply, so it is stored and an OutputError shows it."""
    said = "I'm sorry, I cannot help with that."
    message = {"role": "assistant", "content": None, "refusal": said}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice]}
    fake_api.answer_next(HTTPReply.json(completion))
    response = await make_provider(api="chat").complete(request())
    assert [p.text for p in response.parts if isinstance(p, Text)] == [said]

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return sse({"id": "c2", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices})

    pieces = [chunk({"role": "assistant", "content": None, "refusal": ""})]
    pieces += [chunk({"refusal": said[i : i + 10]}) for i in range(0, len(said), 10)]
    fake_api.answer_next(HTTPReply.stream([*pieces, chunk({}, "stop"), b"data: [DONE]\n\n"]))
    events = await collect(make_provider(api="chat").stream(request()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == said
