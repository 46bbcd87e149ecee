"""Streams: a value split anywhere across pieces is still masked, a pseudonym token split
anywhere is still restored, and no more is held back than could still be part of one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

import threadline
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


def call() -> Call:
    return Call(SessionRecord(id="s"), "echo", Request(model=None, messages=()))


def provider(*events: Event) -> object:
    """A provider at the end of the chain that streams ``events``."""

    async def stream(_call: Call) -> AsyncIterator[Event]:
        for event in events:
            yield event

    return stream


async def streamed(pii: PIIMiddleware, pieces: Sequence[str]) -> list[Event]:
    events = [TextDelta(piece) for piece in pieces] + [Done()]
    return [event async for event in pii.stream(call(), provider(*events))]  # type: ignore[arg-type]


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


async def test_the_text_of_a_streams_own_parts_is_masked_too_and_its_tool_calls_go_to_the_tool() -> None:
    pii = PIIMiddleware(PIIConfig())
    write = ToolCall("c1", "write", {"to": "bo@example.org"})
    parts = (Text("mail ann.lee@example.com"), write)
    events = [TextDelta("mail ann.lee@"), TextDelta("example.com"), Done(parts=parts)]
    out = [event async for event in pii.stream(call(), provider(*events))]  # type: ignore[arg-type]
    assert text_of(out) == "mail [EMAIL]"
    assert out[-1] == Done(parts=(Text("mail [EMAIL]"), write))  # the stored call is masked by the stage


async def test_a_run_too_long_to_hold_is_shown_as_too_long_never_in_part() -> None:
    pii = PIIMiddleware(PIIConfig())
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ" + "a" * 5000 + ".sig_nature"
    text = f"Your token: {jwt} keep it safe."
    events = await streamed(pii, [text[i : i + 20] for i in range(0, len(text), 20)])
    assert text_of(events) == "Your token: [TOO_LONG] keep it safe."
    assert pii.redact(text) == "Your token: [API_KEY] keep it safe."  # what is stored
    long_key = "sk-" + "A" * 4106
    events = await streamed(pii, [f"call +44 20 7946 0958_{long_key}", " ok"])
    assert text_of(events) == "call [PHONE]_[TOO_LONG] ok"  # what was held goes, none of it shown


async def test_with_scope_provider_alone_the_stream_is_as_sent() -> None:
    pii = PIIMiddleware(PIIConfig(scope=("provider",)))
    assert text_of(await streamed(pii, ["mail ann.lee@", "example.com"])) == "mail ann.lee@example.com"


async def pseudonymizing(tokens: dict[str, str]) -> PIIMiddleware:
    """A pseudonymizing middleware whose session ``s`` has a stored message that brought in
    ``tokens``."""
    manager = threadline.SessionManager(threadline.Config.from_dict({"storage": {"backend": "memory"}}))
    await manager.open()  # its memory storage goes when the test's last reference does
    storage = manager.storage
    await storage.create_session(SessionRecord(id="s"))
    await storage.append_messages(
        "default", "s", [Message("s", 1, Role.USER, ("hi",), metadata={METADATA_KEY: tokens})]
    )
    pii = PIIMiddleware(PIIConfig(action="pseudonymize"))
    pii.storage = storage
    return pii


async def test_a_token_split_at_any_point_is_restored() -> None:
    pii = await pseudonymizing({"<EMAIL_1>": "ann.lee@example.com", "<PHONE_12>": "+14155550123"})
    text = "I wrote to <EMAIL_1> and called <PHONE_12>; <EMAIL_3> is unknown, a < b."
    want = "I wrote to ann.lee@example.com and called +14155550123; <EMAIL_3> is unknown, a < b."
    for split in range(len(text) + 1):
        assert text_of(await streamed(pii, [text[:split], text[split:]])) == want, split
    assert text_of(await streamed(pii, list(text))) == want


async def test_plain_text_is_not_held_back_when_restoring() -> None:
    pii = await pseudonymizing({"<EMAIL_1>": "a@b.io"})
    events = await streamed(pii, ["Hello", " there <EM", "AIL_1> ok"])
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " there ", "a@b.io ok"]


async def test_tokens_in_streamed_tool_call_arguments_are_restored_as_json() -> None:
    pii = await pseudonymizing({"<EMAIL_1>": 'ann"lee"@example.com'})
    arguments = '{"to": "<EMAIL_1>", "cc": ["<EMAIL_1>"]}'
    for split in range(len(arguments) + 1):
        events = [
            ToolCallDelta(0, id="c1", name="send", arguments=arguments[:split]),
            ToolCallDelta(0, arguments=arguments[split:]),
            Done(),
        ]
        out = [event async for event in pii.stream(call(), provider(*events))]  # type: ignore[arg-type]
        sent = "".join(event.arguments for event in out if isinstance(event, ToolCallDelta))
        assert sent == '{"to": "ann\\"lee\\"@example.com", "cc": ["ann\\"lee\\"@example.com"]}', split
        assert out[0] == ToolCallDelta(0, id="c1", name="send", arguments=out[0].arguments)


async def test_a_token_cut_off_at_the_end_of_a_tool_calls_arguments_is_let_out_as_it_came() -> None:
    pii = await pseudonymizing({"<EMAIL_1>": "a@b.io"})
    events = [ToolCallDelta(0, id="c1", name="send", arguments='{"to": "<EMAIL_1>", "x": "<EMAIL'), Done()]
    out = [event async for event in pii.stream(call(), provider(*events))]  # type: ignore[arg-type]
    assert [e.arguments for e in out if isinstance(e, ToolCallDelta)] == ['{"to": "a@b.io", "x": "', "<EMAIL"]


async def test_a_done_events_own_parts_are_restored() -> None:
    pii = await pseudonymizing({"<EMAIL_1>": "a@b.io"})
    parts = (Text("to <EMAIL_1>"), ToolCall("c1", "send", {"to": "<EMAIL_1>"}))
    out = [event async for event in pii.stream(call(), provider(Done(parts=parts)))]  # type: ignore[arg-type]
    assert out == [Done(parts=(Text("to a@b.io"), ToolCall("c1", "send", {"to": "a@b.io"})))]


async def test_breaking_off_a_stream_closes_the_providers() -> None:
    closed = []

    async def stream(_call: Call) -> AsyncIterator[Event]:
        try:
            for piece in ["one ", "two ", "three "]:
                yield TextDelta(piece)
        finally:
            closed.append(True)

    for pii in (PIIMiddleware(PIIConfig()), await pseudonymizing({})):
        events = pii.stream(call(), stream)  # type: ignore[arg-type]
        async for _ in events:
            break
        await events.aclose()  # type: ignore[attr-defined]
    assert closed == [True, True]
