"""threadline-gemini against the fake Gemini API: what the SDK sent, what threadline made of
the answer, and how failures come out."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from conftest import MakeProvider
from fake_gemini import SIGNATURE, FakeGemini, error, prompt_tokens

import threadline
from threadline import (
    CallOptions,
    Done,
    File,
    Image,
    Message,
    Request,
    Role,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
)
from threadline.testing import WEATHER, Reply, ScriptedToolCall, collect, tool_conversation
from threadline.testing.wire_server import HTTPReply

HISTORY = tool_conversation("call_9")
MODEL = "gemini-3.5-flash"


def request(*messages: Message, **options: object) -> Request:
    return Request(MODEL, messages or HISTORY, "Be brief.", (WEATHER,), CallOptions(**options))  # type: ignore[arg-type]


# -- what is sent -------------------------------------------------------------------


async def test_request_body(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    await make_provider().complete(
        request(temperature=0.2, max_tokens=50, stop=("END",), extra={"generationConfig": {"topK": 5}})
    )
    sent = fake_api.requests[0]
    assert sent.path == f"/v1/models/{MODEL}:generateContent" and sent.headers["x-goog-api-key"] == "gm-test"
    body = sent.json()
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Oslo?"}]},
        {
            "role": "model",
            "parts": [{"text": "Checking."}, {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "unknown", "response": {"error": "boom"}}},
            ],
        },
        {"role": "user", "parts": [{"text": "And tomorrow?"}]},
    ]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    (declaration,) = body["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather" and declaration["description"] == WEATHER.description
    assert body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 50, "stopSequences": ["END"], "topK": 5}


async def test_streams_use_server_sent_events(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    events = await collect(make_provider().stream(request()))
    assert fake_api.requests[0].target == f"/v1/models/{MODEL}:streamGenerateContent?alt=sse"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello from the fake Gemini API."
    done = events[-1]
    assert isinstance(done, Done) and done.usage.input_tokens > 0 and done.usage.output_tokens > 0


async def test_attachments(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    parts = (
        Text("What is in these?"),
        Image("image/png", data=b"\x89PNG fake"),
        File("application/pdf", data=b"%PDF-1.7 fake", name="report.pdf"),
        File("application/pdf", url="https://example.com/a.pdf"),
        File("text/plain", data=b"plain notes", name="notes.txt"),
    )
    await make_provider().complete(request(Message("s", 1, Role.USER, parts)))
    (user,) = fake_api.requests[0].json()["contents"]
    assert user["parts"] == [
        {"text": "What is in these?"},
        # the SDK sends these field names as the proto has them; the API reads both forms
        {"inlineData": {"mime_type": "image/png", "data": "iVBORyBmYWtl"}},
        {"inlineData": {"mime_type": "application/pdf", "data": "JVBERi0xLjcgZmFrZQ=="}},
        {"fileData": {"mime_type": "application/pdf", "file_uri": "https://example.com/a.pdf"}},
        {"text": "notes.txt:\nplain notes"},
    ]


# -- thought signatures and call ids --------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_thought_signatures_ride_on_their_part_and_are_sent_back(
    fake_api: FakeGemini, make_provider: MakeProvider, streamed: bool
) -> None:
    fake_api.signatures = True
    calls = (ScriptedToolCall("get_weather", {"city": "Oslo"}), ScriptedToolCall("get_weather", {"city": "Rome"}))
    fake_api.script([Reply(tool_calls=calls)])
    provider = make_provider()
    if streamed:
        events = await collect(provider.stream(request(HISTORY[0])))
        done = events[-1]
        assert isinstance(done, Done)
        parts, deltas = done.parts, [e for e in events if isinstance(e, ToolCallDelta)]
        assert [(d.index, d.id) for d in deltas] == [(0, parts[0].id), (1, parts[1].id)]  # type: ignore[union-attr]
    else:
        parts = (await provider.complete(request(HISTORY[0]))).parts
    first, second = parts
    assert isinstance(first, ToolCall) and isinstance(second, ToolCall)
    assert first.provider_data == {"gemini": {"thought_signature": SIGNATURE}} and second.provider_data == {}
    assert first.id != second.id and first.id.startswith("call_mAitaLmkHPPlz7IPvtfUqQ")

    reply = Message("s", 2, Role.ASSISTANT, parts)
    results = Message("s", 3, Role.TOOL, (ToolResult(first.id, "21"), ToolResult(second.id, "25")))
    await provider.complete(request(HISTORY[0], reply, results))
    model_turn, answers = fake_api.requests[1].json()["contents"][1:]
    assert model_turn["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
        "thoughtSignature": SIGNATURE,  # unchanged, on the same part, as the API requires
    }
    assert "thoughtSignature" not in model_turn["parts"][1]
    assert "id" not in model_turn["parts"][0]["functionCall"]  # an id Gemini never gave is not sent
    assert [p["functionResponse"]["response"] for p in answers["parts"]] == [{"result": 21}, {"result": 25}]


async def test_ids_gemini_gave_are_sent_back(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"id": "fc-7", "name": "get_weather", "args": {}}}],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        "modelVersion": MODEL,
    }
    fake_api.answer_next(HTTPReply.json(body))
    provider = make_provider()
    (call,) = (await provider.complete(request(HISTORY[0]))).parts
    assert isinstance(call, ToolCall) and call.id == "fc-7"
    history = (
        HISTORY[0],
        Message("s", 2, Role.ASSISTANT, (call,)),
        Message("s", 3, Role.TOOL, (ToolResult("fc-7", "x"),)),
    )
    await provider.complete(request(*history))
    model_turn, answer = fake_api.requests[1].json()["contents"][1:]
    assert model_turn["parts"][0]["functionCall"]["id"] == "fc-7"
    assert answer["parts"][0]["functionResponse"] == {"id": "fc-7", "name": "get_weather", "response": {"result": "x"}}


async def test_a_signed_text_reply_keeps_its_signature(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    fake_api.signatures = True
    events = await collect(make_provider().stream(request(HISTORY[0])))
    done = events[-1]
    assert isinstance(done, Done)
    (text,) = done.parts
    assert isinstance(text, Text) and text.text == "Hello from the fake Gemini API."
    assert text.provider_data == {"gemini": {"thought_signature": SIGNATURE}}


async def test_other_providers_data_is_not_sent(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    thinking = {"anthropic": {"thinking": [{"type": "thinking", "thinking": "secret", "signature": "sig"}]}}
    reply = Message("s", 2, Role.ASSISTANT, (Text("Hi", provider_data=thinking),))
    await make_provider().complete(request(HISTORY[0], reply, HISTORY[3]))
    sent = fake_api.requests[0].body.decode()
    assert "secret" not in sent and "sig" not in sent.replace("Signature", "")


async def test_a_session_moves_from_gemini_to_echo_and_back(
    fake_api: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_api.signatures = True
    monkeypatch.setenv("THREADLINE_PLUGINS", "gemini,echo,memory")
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "gemini"\n[storage]\nbackend = "memory"\n'
        f'[providers.gemini]\napi_key = "gm-test"\nbase_url = "{fake_api.url}"\nmax_retries = 0\n'
    )
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session()
        first = await session.send("One")
        assert (await session.send("Two", provider="echo")).text == "Two"
        await session.send("Three")
    assert first.parts[0].provider_data == {"gemini": {"thought_signature": SIGNATURE}}  # type: ignore[union-attr]
    contents = fake_api.requests[1].json()["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[1]["parts"] == [{"text": "Hello from the fake Gemini API.", "thoughtSignature": SIGNATURE}]
    assert contents[3]["parts"] == [{"text": "Two"}]


# -- usage ----------------------------------------------------------------------------------


async def test_thinking_is_output_and_cached_input_is_reported(
    fake_api: FakeGemini, make_provider: MakeProvider
) -> None:
    body = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {
            "promptTokenCount": 2000,
            "cachedContentTokenCount": 1500,
            "candidatesTokenCount": 40,
            "thoughtsTokenCount": 60,
            "totalTokenCount": 2100,
        },
        "modelVersion": MODEL,
    }
    fake_api.answer_next(HTTPReply.json(body))
    response = await make_provider().complete(request())
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cached_tokens) == (
        2000,
        100,
        1500,
    )
    assert response.finish_reason == "length"


# -- context windows and token counting ----------------------------------------------------------


def test_capabilities_give_the_context_window_of_known_models(make_provider: MakeProvider) -> None:
    provider = make_provider()
    assert provider.capabilities(None).max_context == 1_048_576  # the default model, gemini-3.5-flash
    assert provider.capabilities("gemini-2.5-pro").max_context == 1_048_576
    assert provider.capabilities("gemini-1.5-pro-002").max_context == 2_097_152
    assert provider.capabilities("gemma-3-27b-it").max_context is None  # unknown: not guessed


def test_configured_context_windows_come_before_the_known_ones(make_provider: MakeProvider) -> None:
    provider = make_provider(context_windows={"gemini-2.5-flash*": 250_000, "tuned-*": 32_000})
    assert provider.capabilities("gemini-2.5-flash-lite").max_context == 250_000
    assert provider.capabilities("tuned-support-bot").max_context == 32_000
    assert provider.capabilities("gemini-2.5-pro").max_context == 1_048_576  # the rest as known


async def test_count_tokens_sends_the_system_instruction_first_and_the_contents(
    fake_api: FakeGemini, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    asked = request(temperature=0.2, max_tokens=50, extra={"generationConfig": {"topK": 5}})
    await provider.complete(asked)
    tokens = await provider.count_tokens(asked)
    sent, counted = fake_api.requests
    assert counted.method == "POST" and counted.path == f"/v1/models/{MODEL}:countTokens"
    instruction = {"role": "user", "parts": [{"text": "Be brief."}]}
    assert counted.json() == {"contents": [instruction, *sent.json()["contents"]]}  # no config, no tools
    assert tokens == prompt_tokens(counted.json()["contents"])


async def test_count_tokens_equal_the_prompt_tokens_of_the_same_request_without_tools(
    make_provider: MakeProvider,
) -> None:
    """Tools are not counted: the SDK takes none for a count on the Gemini API."""
    provider = make_provider()
    asked = Request(MODEL, HISTORY, "Be brief.")
    response = await provider.complete(asked)
    assert await provider.count_tokens(asked) == response.usage.input_tokens
    assert await provider.count_tokens(request()) < (await provider.complete(request())).usage.input_tokens


async def test_a_failed_count_is_mapped(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    fake_api.answer_next(error(400, "INVALID_ARGUMENT", "API key not valid.", [{"reason": "API_KEY_INVALID"}]))
    with pytest.raises(threadline.AuthenticationError, match="GEMINI_API_KEY"):
        await make_provider().count_tokens(request())


# -- failures -------------------------------------------------------------------------------


async def test_a_refused_key_names_where_to_set_it(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="auth")])
    with pytest.raises(threadline.AuthenticationError, match="GEMINI_API_KEY") as raised:
        await make_provider().complete(request())
    assert "API key not valid" in str(raised.value)


def test_no_key_at_all_names_where_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline_gemini import GeminiConfig
    from threadline_gemini.provider import GeminiProvider

    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(threadline.AuthenticationError, match=r"api_key in \[providers.gemini\]"):
        GeminiProvider(GeminiConfig())


async def test_rate_limits_say_when_to_retry(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="rate_limited")])
    with pytest.raises(threadline.RateLimited) as raised:
        await make_provider().complete(request())
    assert raised.value.retry_after == 7  # from the body's RetryInfo: Gemini sends no Retry-After


async def test_the_sdk_retries_as_configured_and_no_more(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="unavailable")] * 3)
    with pytest.raises(threadline.ProviderUnavailable, match="overloaded"):
        await make_provider(max_retries=1).complete(request())
    assert len(fake_api.requests) == 2


async def test_a_server_that_stalls_past_the_timeout_is_unavailable(
    fake_api: FakeGemini, make_provider: MakeProvider
) -> None:
    fake_api.answer_next(HTTPReply.json({}, stall=5))
    stalled = rf"no reply from {re.escape(fake_api.url)}/\S* within 0\.3s"  # names where it asked
    with pytest.raises(threadline.ProviderUnavailable, match=stalled):
        await make_provider(timeout=0.3).complete(request())


async def test_context_too_long_is_its_own_error(fake_api: FakeGemini, make_provider: MakeProvider) -> None:
    fake_api.script([Reply(error="context_too_long")])
    with pytest.raises(threadline.ContextTooLong, match="exceeds the maximum number of tokens"):
        await collect(make_provider().stream(request()))


# -- start-up -------------------------------------------------------------------------------


def test_importing_and_discovering_the_plugin_does_not_import_the_sdk() -> None:
    code = (
        "import sys, threadline_gemini; from threadline import get_plugin_manager; get_plugin_manager(); "
        "loaded = [m for m in ('google.genai', 'httpx2', 'pydantic') if m in sys.modules]; print(json.dumps(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", f"import json; {code}"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_a_base_url_without_a_key_is_refused_by_the_check_as_by_the_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its SDK will not start without a key, even for a proxy: the check says so first."""
    monkeypatch.setenv("THREADLINE_PLUGINS", "gemini,echo,memory")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    providers = {"gemini": {"base_url": "http://127.0.0.1:9"}}
    manager = threadline.SessionManager(
        threadline.Config.from_dict({"defaults": {"provider": "gemini"}, "providers": providers})
    )
    with pytest.raises(threadline.AuthenticationError, match="no API key"):
        manager.check()
    with pytest.raises(threadline.AuthenticationError, match="no API key"):
        manager.provider("gemini")


# -- structured output ------------------------------------------------------------------


@attrs.frozen
class City:
    name: str
    country: str


async def test_send_with_output_asks_for_json_with_the_schema(
    fake_api: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_PLUGINS", "gemini,memory")
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "gemini"\n[storage]\nbackend = "memory"\n'
        f'[providers.gemini]\napi_key = "gm-test"\nbase_url = "{fake_api.url}"\nmax_retries = 0\n'
    )
    fake_api.script([Reply(text='{"name": "Oslo", "country": "Norway"}')])
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session()
        assert await session.send("Capital of Norway?", output=City) == City("Oslo", "Norway")
    generation = fake_api.requests[0].json()["generationConfig"]
    assert generation["responseMimeType"] == "application/json"
    assert generation["responseJsonSchema"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
        "required": ["name", "country"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(("model", "in_prompt"), [("gemini-2.5-flash", True), (MODEL, False)])
async def test_a_model_before_3_is_told_the_schema_in_the_prompt_when_tools_come_too(
    fake_api: FakeGemini, make_provider: MakeProvider, model: str, in_prompt: bool
) -> None:
    fake_api.script([Reply(text='{"name": "Oslo", "country": "Norway"}')])
    schema = {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]}
    output = threadline.OutputSchema("City", schema)
    await make_provider().complete(attrs.evolve(request(), model=model, output=output))
    sent = fake_api.requests[0].json()
    system = sent["systemInstruction"]["parts"][0]["text"]
    assert ("responseJsonSchema" in sent["generationConfig"]) is not in_prompt
    assert ('"country"' in system) is in_prompt and system.startswith("Be brief.")
