"""``ProviderContract``: what every provider plugin promises, as pytest tests.

Subclass it and give one fixture, ``provider_harness``: a :class:`ProviderHarness` whose
``script`` makes the backend (your local test server speaking the provider's wire format)
answer the next calls with the given replies::

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        async def provider_harness(self, fake_server):
            provider = MyProvider(MyConfig(base_url=fake_server.url, api_key="test"))
            yield ProviderHarness(
                provider, model="my-model", script=fake_server.script, received=fake_server.last_body
            )
            await provider.close()
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterable, Callable, Sequence

import attrs
import pytest
from attrs import frozen

from threadline import errors
from threadline.builtins.echo import Reply, ScriptedToolCall
from threadline.contracts import Provider
from threadline.model import (
    Capabilities,
    Done,
    Event,
    Message,
    OutputSchema,
    Request,
    Role,
    StreamAssembler,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    ToolSpec,
)

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

WEATHER_REPORT = OutputSchema(
    "weather_report",
    {
        "type": "object",
        "properties": {"contract_celsius": {"type": "number"}},
        "required": ["contract_celsius"],
        "additionalProperties": False,
    },
    strict=True,
)


@frozen
class ProviderHarness:
    """A provider under test, the model to ask for, and how to script its backend's replies."""

    provider: Provider
    model: str | None
    script: Callable[[Sequence[Reply]], None]
    #: what the backend received last, as text (the HTTP body, or a repr): the contract checks
    #: that what a provider must send (tool results) reaches it
    received: Callable[[], str]
    #: for a provider that speaks HTTP: the same provider at another base URL, for
    #: :class:`HTTPProviderContract`'s unreachable server
    at_url: Callable[[str], Provider] | None = None


def user(text: str, seq: int = 1) -> Message:
    return Message("contract", seq, Role.USER, (Text(text),))


async def collect(events: AsyncIterable[Event]) -> list[Event]:
    """Every event of a stream."""
    return [event async for event in events]


def tool_conversation(call_id: str) -> tuple[Message, ...]:
    """A history that has every kind of turn: a question, a reply with text and a tool call
    (``call_id``), the tool results (one of them an error), and a follow-up question. Its
    request body is what a provider plugin's tests check first."""
    return (
        Message("s", 1, Role.USER, (Text("Weather in Oslo?"),)),
        Message("s", 2, Role.ASSISTANT, (Text("Checking."), ToolCall(call_id, "get_weather", {"city": "Oslo"}))),
        Message("s", 3, Role.TOOL, (ToolResult(call_id, '{"temp": 21}'), ToolResult("call_8", "boom", is_error=True))),
        Message("s", 4, Role.USER, (Text("And tomorrow?"),)),
    )


class ProviderContract:
    """The provider contract. Each test scripts its replies first."""

    pytestmark = pytest.mark.asyncio

    def request(self, harness: ProviderHarness, *messages: Message, tools: Sequence[ToolSpec] = ()) -> Request:
        return Request(harness.model, messages or (user("Hello"),), "You are terse.", tuple(tools))

    async def test_capabilities_describe_the_model(self, provider_harness: ProviderHarness) -> None:
        capabilities = provider_harness.provider.capabilities(provider_harness.model)
        assert isinstance(capabilities, Capabilities)

    async def test_complete_returns_the_text_and_usage(self, provider_harness: ProviderHarness) -> None:
        provider_harness.script([Reply(text="Hi there, friend.")])
        response = await provider_harness.provider.complete(self.request(provider_harness))
        assert [p.text for p in response.parts if isinstance(p, Text)] == ["Hi there, friend."]
        assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
        assert response.finish_reason == "stop"

    async def test_stream_yields_the_text_in_pieces_then_one_done(self, provider_harness: ProviderHarness) -> None:
        text = "A reply long enough to arrive in several pieces, as streams do."
        provider_harness.script([Reply(text=text)])
        events = await collect(provider_harness.provider.stream(self.request(provider_harness)))
        deltas = [e for e in events if isinstance(e, TextDelta)]
        assert len(deltas) > 1
        assert "".join(d.text for d in deltas) == text
        assert isinstance(events[-1], Done) and [e for e in events if isinstance(e, Done)] == [events[-1]]
        assert events[-1].usage.output_tokens > 0

    async def test_multi_turn_history_is_accepted(self, provider_harness: ProviderHarness) -> None:
        provider_harness.script([Reply(text="Paris.")])
        history = (
            user("Capital of France?"),
            Message("contract", 2, Role.ASSISTANT, (Text("Paris."),)),
            user("And of Italy?", seq=3),
        )
        response = await provider_harness.provider.complete(self.request(provider_harness, *history))
        assert response.parts

    async def test_complete_returns_tool_calls(self, provider_harness: ProviderHarness) -> None:
        provider_harness.script([Reply(tool_calls=(ScriptedToolCall("get_weather", {"city": "Oslo"}),))])
        response = await provider_harness.provider.complete(self.request(provider_harness, tools=[WEATHER]))
        calls = [p for p in response.parts if isinstance(p, ToolCall)]
        assert [(c.name, dict(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
        assert calls[0].id
        assert response.finish_reason == "tool_calls"

    async def test_stream_numbers_parallel_tool_calls_by_position(self, provider_harness: ProviderHarness) -> None:
        calls = (ScriptedToolCall("get_weather", {"city": "Oslo"}), ScriptedToolCall("get_weather", {"city": "Rome"}))
        provider_harness.script([Reply(tool_calls=calls)])
        events = await collect(provider_harness.provider.stream(self.request(provider_harness, tools=[WEATHER])))
        deltas = [e for e in events if isinstance(e, ToolCallDelta)]
        assert sorted({d.index for d in deltas}) == [0, 1]
        for index in (0, 1):
            first = next(d for d in deltas if d.index == index)
            assert first.id and first.name == "get_weather"
        assembler = StreamAssembler()
        for event in events:
            assembler.add(event)
        assembled = [p for p in assembler.parts() if isinstance(p, ToolCall)]
        assert [json.loads(json.dumps(dict(c.arguments))) for c in assembled] == [{"city": "Oslo"}, {"city": "Rome"}]
        assert len({c.id for c in assembled}) == 2

    async def test_tool_results_are_sent_back(self, provider_harness: ProviderHarness) -> None:
        provider_harness.script([Reply(text="It is 21 degrees in Oslo.")])
        history = (
            user("Weather in Oslo?"),
            Message("contract", 2, Role.ASSISTANT, (ToolCall("call_1", "get_weather", {"city": "Oslo"}),)),
            Message("contract", 3, Role.TOOL, (ToolResult("call_1", '{"celsius": 21.5}'),)),
        )
        response = await provider_harness.provider.complete(self.request(provider_harness, *history, tools=[WEATHER]))
        assert any(isinstance(p, Text) and p.text for p in response.parts)
        assert "21.5" in provider_harness.received(), "the tool result did not reach the backend"

    async def test_structured_output_is_asked_for_and_comes_back_as_text(
        self, provider_harness: ProviderHarness
    ) -> None:
        """A model whose capabilities say ``structured_output`` is sent ``Request.output``'s
        schema; the JSON reply comes back as text, whole or streamed."""
        reply = '{"contract_celsius": 21.5}'
        provider_harness.script([Reply(text=reply), Reply(text=reply)])
        request = attrs.evolve(self.request(provider_harness), output=WEATHER_REPORT)
        response = await provider_harness.provider.complete(request)
        assert "".join(p.text for p in response.parts if isinstance(p, Text)) == reply
        if provider_harness.provider.capabilities(provider_harness.model).structured_output:
            assert "contract_celsius" in provider_harness.received(), "the schema did not reach the backend"
        events = await collect(provider_harness.provider.stream(request))
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == reply

    @pytest.mark.parametrize(
        ("kind", "error"),
        [
            ("auth", errors.AuthenticationError),
            ("rate_limited", errors.RateLimited),
            ("context_too_long", errors.ContextTooLong),
            ("unavailable", errors.ProviderUnavailable),
            ("bad_request", errors.BadRequest),
        ],
    )
    async def test_errors_map_onto_the_hierarchy(
        self, provider_harness: ProviderHarness, kind: str, error: type[errors.ProviderError]
    ) -> None:
        provider_harness.script([Reply(error=kind, retry_after=7)])
        with pytest.raises(error) as raised:
            await provider_harness.provider.complete(self.request(provider_harness))
        if kind == "rate_limited":
            assert raised.value.retry_after == 7  # type: ignore[attr-defined]

    async def test_a_reply_that_is_not_the_apis_json_is_unavailable(self, provider_harness: ProviderHarness) -> None:
        provider_harness.script([Reply(error="malformed")])
        with pytest.raises(errors.ProviderUnavailable):
            await provider_harness.provider.complete(self.request(provider_harness))

    async def test_a_stream_that_breaks_off_is_unavailable(self, provider_harness: ProviderHarness) -> None:
        text = "A reply long enough to arrive in several pieces, and to break off half way through."
        provider_harness.script([Reply(text=text, error="dropped")])
        seen: list[Event] = []
        with pytest.raises(errors.ProviderUnavailable):
            async for event in provider_harness.provider.stream(self.request(provider_harness)):
                seen.append(event)
        received = "".join(e.text for e in seen if isinstance(e, TextDelta))
        assert received and text.startswith(received) and received != text
        assert not any(isinstance(e, Done) for e in seen)

    async def test_stream_errors_map_onto_the_hierarchy(self, provider_harness: ProviderHarness) -> None:
        provider_harness.script([Reply(error="unavailable")])
        with pytest.raises(errors.ProviderUnavailable):
            await collect(provider_harness.provider.stream(self.request(provider_harness)))


class HTTPProviderContract(ProviderContract):
    """The provider contract, and what a provider that calls an HTTP API promises besides.
    Its harness gives ``at_url``."""

    async def test_a_server_that_cannot_be_reached_is_named_without_credentials(
        self, provider_harness: ProviderHarness
    ) -> None:
        """The error says which URL failed, and never a password in it."""
        assert provider_harness.at_url is not None, "an HTTP provider's harness gives at_url"
        with socket.socket() as unused:  # a port nobody listens on
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        provider = provider_harness.at_url(f"http://me:hunter2@127.0.0.1:{port}/api")
        try:
            for call in (provider.complete, lambda request: collect(provider.stream(request))):
                with pytest.raises(errors.ProviderUnavailable) as caught:
                    await call(self.request(provider_harness))
                assert f"the connection to http://127.0.0.1:{port}/api/" in str(caught.value)
                assert "hunter2" not in str(caught.value)
        finally:
            await provider.close()
