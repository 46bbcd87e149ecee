"""Streams: a value split anywhere across pieces is still masked, a pseudonym token split
anywhere is still restored, and no more is held back than could still be part of one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from threadline.plugin import (
    Call,
    Done,
    Event,
    Message,
    Request,
    Role,
    SessionRecord,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from threadline_pii import PIIConfig
from threadline_pii.middleware import PIIMiddleware
from threadline_pii.pseudonyms import METADATA_KEY

VALUES = [
    "ann.lee@example.com",
    "+44 20 7946 0958",
    "(555) 123-4567",
    "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32",
    "123-45-6789",
    "192.168.10.42",
    "2001:db8:85a3::8a2e:370:7334",
    "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]


def call(history: Sequence[Message] = ()) -> Call:
    return Call(SessionRecord(id="s"), "echo", Request(model=None, messages=tuple(history)))


def provider(*events: Event) -> object:
    """A provider at the end of the chain that streams ``events``."""

    async def stream(_call: Call) -> AsyncIterator[Event]:
        for event in events:
            yield event

    return stream


async def streamed(pii: PIIMiddleware, pieces: Sequence[str], history: Sequence[Message] = ()) -> list[Event]:
    events = [TextDelta(piece) for piece in pieces] + [Done()]
    return [event async for event in pii.stream(call(history), provider(*events))]  # type: ignore[arg-type]


def text_of(events: Sequence[Event]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


@pytest.mark.parametrize("value", VALUES)
async def test_a_value_split_at_any_point_is_masked(value: str) -> None:
    pii = PIIMiddleware(PIIConfig())
    text = f"Write to {value} today."
    whole = pii.redact(text)
    assert value not in whole
    starts = text.index(value)
    for split in range(starts, starts + len(value) + 1):
        events = await streamed(pii, [text[:split], text[split:]])
        assert text_of(events) == whole, split
        assert not any(value[:6] in event.text for event in events if isinstance(event, TextDelta))
    one_by_one = await streamed(pii, list(text))
    assert text_of(one_by_one) == whole


async def test_only_what_could_still_be_a_value_is_held_back() -> None:
    pii = PIIMiddleware(PIIConfig())
    pieces = ["Hello there, ", "mail ann.lee@exa", "mple.com now. ", "Thanks"]
    events = await streamed(pii, pieces)
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "Hello there, ",  # ends in a space: nothing in it can go on
        "mail ",  # the address may go on
        "[EMAIL] now. ",
        "Thanks",  # a word may be an address's start: it waits for the end
    ]
    assert isinstance(events[-1], Done)


async def test_the_stored_parts_of_a_stream_are_masked_too() -> None:
    pii = PIIMiddleware(PIIConfig())
    events = [TextDelta("mail ann.lee@"), TextDelta("example.com"), Done(parts=(Text("mail ann.lee@example.com"),))]
    out = [event async for event in pii.stream(call(), provider(*events))]  # type: ignore[arg-type]
    assert text_of(out) == "mail [EMAIL]"
    assert out[-1] == Done(parts=(Text("mail [EMAIL]"),))


async def test_with_scope_provider_alone_the_stream_is_as_sent() -> None:
    pii = PIIMiddleware(PIIConfig(scope=("provider",)))
    assert text_of(await streamed(pii, ["mail ann.lee@", "example.com"])) == "mail ann.lee@example.com"


def known(tokens: dict[str, str]) -> list[Message]:
    """A history whose first message brought in ``tokens``."""
    return [Message("s", 1, Role.USER, (Text("hi"),), metadata={METADATA_KEY: tokens})]


async def test_a_token_split_at_any_point_is_restored() -> None:
    pii = PIIMiddleware(PIIConfig(action="pseudonymize"))
    history = known({"<EMAIL_1>": "ann.lee@example.com", "<PHONE_12>": "+14155550123"})
    text = "I wrote to <EMAIL_1> and called <PHONE_12>; <EMAIL_3> is unknown, a < b."
    want = "I wrote to ann.lee@example.com and called +14155550123; <EMAIL_3> is unknown, a < b."
    for split in range(len(text) + 1):
        assert text_of(await streamed(pii, [text[:split], text[split:]], history)) == want, split
    assert text_of(await streamed(pii, list(text), history)) == want


async def test_plain_text_is_not_held_back_when_restoring() -> None:
    pii = PIIMiddleware(PIIConfig(action="pseudonymize"))
    events = await streamed(pii, ["Hello", " there <EM", "AIL_1> ok"], known({"<EMAIL_1>": "a@b.io"}))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " there ", "a@b.io ok"]


async def test_tokens_in_streamed_tool_call_arguments_are_restored_as_json() -> None:
    pii = PIIMiddleware(PIIConfig(action="pseudonymize"))
    history = known({"<EMAIL_1>": 'ann"lee"@example.com'})
    arguments = '{"to": "<EMAIL_1>", "cc": ["<EMAIL_1>"]}'
    for split in range(len(arguments) + 1):
        events = [
            ToolCallDelta(0, id="c1", name="send", arguments=arguments[:split]),
            ToolCallDelta(0, arguments=arguments[split:]),
            Done(),
        ]
        out = [event async for event in pii.stream(call(history), provider(*events))]  # type: ignore[arg-type]
        sent = "".join(event.arguments for event in out if isinstance(event, ToolCallDelta))
        assert sent == '{"to": "ann\\"lee\\"@example.com", "cc": ["ann\\"lee\\"@example.com"]}', split
        assert out[0] == ToolCallDelta(0, id="c1", name="send", arguments=out[0].arguments)


async def test_a_done_events_own_parts_are_restored() -> None:
    pii = PIIMiddleware(PIIConfig(action="pseudonymize"))
    parts = (Text("to <EMAIL_1>"), ToolCall("c1", "send", {"to": "<EMAIL_1>"}))
    out = [event async for event in pii.stream(call(known({"<EMAIL_1>": "a@b.io"})), provider(Done(parts=parts)))]  # type: ignore[arg-type]
    assert out == [Done(parts=(Text("to a@b.io"), ToolCall("c1", "send", {"to": "a@b.io"})))]


async def test_breaking_off_a_stream_closes_the_providers() -> None:
    closed = []

    async def stream(_call: Call) -> AsyncIterator[Event]:
        try:
            for piece in ["one ", "two ", "three "]:
                yield TextDelta(piece)
        finally:
            closed.append(True)

    for action in ("mask", "pseudonymize"):
        events = PIIMiddleware(PIIConfig(action=action)).stream(call(), stream)  # type: ignore[arg-type]
        async for _ in events:
            break
        await events.aclose()  # type: ignore[attr-defined]
    assert closed == [True, True]
