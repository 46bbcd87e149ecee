"""Through a real SessionManager, SQLite on disk and the offline echo provider: no value
reaches the provider's request or the database file, in any scope the config names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest

import threadline
from threadline import ConfigError, Message, Role, Text, ToolCall, ToolResult
from threadline.plugin import Call, Request, Response, SessionRecord
from threadline.testing import Reply
from threadline_pii import CustomEntity, PIIConfig
from threadline_pii.middleware import PIIMiddleware

SECRET = "Mail ann.lee@example.com, card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstuvwx"
MASKED = "Mail [EMAIL], card [CREDIT_CARD], key [API_KEY]"


def test_text_tool_arguments_and_tool_results_are_masked() -> None:
    pii = PIIMiddleware(PIIConfig())
    message = Message(
        "s",
        1,
        Role.ASSISTANT,
        (Text(SECRET), ToolCall("c1", "lookup", {"who": "ann.lee@example.com", "n": 3, "tags": ["+14155550123"]})),
    )
    masked = pii.redact_message(message)
    assert masked.parts[0] == Text(MASKED)
    assert masked.parts[1].arguments == {"who": "[EMAIL]", "n": 3, "tags": ["[PHONE]"]}
    result = pii.redact_message(Message("s", 2, Role.TOOL, (ToolResult("c1", {"ip": "10.0.0.7", "ok": True}),)))
    assert result.parts == (ToolResult("c1", {"ip": "[IP]", "ok": True}),)


def test_numbers_keys_errors_and_text_split_across_parts_are_masked_too() -> None:
    pii = PIIMiddleware(PIIConfig())
    call = ToolCall("c1", "charge", {"card": 4111111111111111, "n": 3, "ann@x.io": "yes", "bo@y.io": "no"})
    masked = pii.redact_message(Message("s", 1, Role.ASSISTANT, (call,)))
    assert masked.parts[0].arguments == {"card": "[CREDIT_CARD]", "n": 3, "[EMAIL]": "yes", "[EMAIL] 2": "no"}
    split = Message("s", 1, Role.USER, (Text("card 4111 1111 "), Text("1111 1111, mail ann@"), Text("x.io")))
    assert pii.redact_message(split).parts == (Text("card [CREDIT_CARD], mail [EMAIL]"),)
    lines = Message("s", 1, Role.USER, (Text("Line one.\n"), Text("Line two, mail ann@x.io")))
    assert pii.redact_message(lines).parts == (Text("Line one.\n"), Text("Line two, mail [EMAIL]"))
    failed = Message("s", 2, Role.ASSISTANT, (Text("half"),), status="incomplete", error="bad input 'ann@x.io'")
    assert pii.redact_message(failed).error == "bad input '[EMAIL]'"


class Recorder:
    """A provider stand-in at the end of the chain: what it was sent."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> Response:
        self.calls.append(call)
        return Response((Text("ok"),))


@pytest.mark.parametrize(
    ("scope", "sent", "stored"),
    [
        (("provider", "storage"), MASKED, MASKED),
        (("provider",), MASKED, SECRET),
        (("storage",), SECRET, MASKED),
    ],
)
async def test_each_scope_masks_where_it_says(scope: tuple[str, ...], sent: str, stored: str) -> None:
    pii = PIIMiddleware(PIIConfig(scope=scope))  # type: ignore[arg-type]
    session = SessionRecord(id="s")
    recorder = Recorder()
    request = Request(model=None, messages=(Message("s", 1, Role.USER, (Text(SECRET),)),), system_prompt=SECRET)
    await pii.complete(Call(session, "echo", request), recorder)
    assert recorder.calls[0].request.system_prompt == sent
    assert recorder.calls[0].request.messages[0].text == sent
    assert (await pii.message(Message("s", 1, Role.USER, (Text(SECRET),)), session)).text == stored


async def test_a_conversation_leaves_no_value_in_the_database_file(tmp_path: Path) -> None:
    database = tmp_path / "threadline.db"
    config = threadline.Config.from_dict(
        {
            "storage": {"backend": "sqlite", "path": str(database)},
            "middleware": {
                "chain": ["pii"],
                "pii": {"custom": [{"name": "order_id", "pattern": r"ORD-\d{8}"}], "metadata": ["contact"]},
            },
        }
    )
    async with threadline.SessionManager(config) as manager:
        session = await manager.create_session(
            provider="echo",
            system_prompt="Serve ann.lee@example.com well.",
            title="Ann at +14155550123",
            metadata={"contact": "ann.lee@example.com", "plan": "gold"},
        )
        assert (session.record.title, session.record.metadata) == (
            "Ann at [PHONE]",
            {"contact": "[EMAIL]", "plan": "gold"},
        )
        reply = await session.send(f"{SECRET}, order ORD-12345678")
        assert "ann.lee@example.com" not in reply.text  # echo repeats what it was sent
        assert "[ORDER_ID]" in reply.text
        stored = [m.text for m in await session.history()]
    assert all("4111" not in text and "@example" not in text for text in stored)
    raw = b"".join(path.read_bytes() for path in sorted(tmp_path.iterdir()))  # noqa: ASYNC240 (the -wal too)
    for value in (b"ann.lee@example.com", b"4111 1111 1111 1111", b"sk-abcdefghijklmnopqrstuvwx", b"ORD-12345678",
                  b"+14155550123"):  # fmt: skip
        assert value not in raw


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"entities": ["email", "passport"]}, "unknown entities ['passport']"),
        ({"scope": ["disk"]}, "'disk' is not one of 'provider', 'storage'"),
        ({"scope": []}, 'scope must name "provider", "storage" or both'),
        ({"action": "shred"}, "'shred' is not one of 'mask', 'pseudonymize', 'block'"),
        ({"custom": [{"name": "order", "pattern": "ORD-("}]}, "is not a regular expression"),
        ({"custom": [{"name": "order", "pattern": "x*"}]}, "matches the empty text"),
    ],
)
async def test_a_bad_setting_is_a_config_error_that_says_what_is_wrong(settings: dict[str, Any], says: str) -> None:
    config = threadline.Config.from_dict({"middleware": {"chain": ["pii"], "pii": settings}})
    with pytest.raises(ConfigError, match=re.escape(says)):
        async with threadline.SessionManager(config):
            pass


def test_custom_entity_names_are_lower_case_words() -> None:
    with pytest.raises(ValueError):
        CustomEntity("Order ID", r"ORD-\d+")


def blocking() -> threadline.Config:
    return threadline.Config.from_dict({"middleware": {"chain": ["pii"], "pii": {"action": "block"}}})


async def test_block_refuses_a_user_message_naming_its_kinds_and_stores_and_sends_nothing() -> None:
    async with threadline.SessionManager(blocking()) as manager:
        session = await manager.create_session(provider="echo")
        echo = manager.provider("echo")
        with pytest.raises(threadline.BadRequest, match=r"message refused: .*\(credit_card, email\)") as refused:
            await session.send("card 4111 1111 1111 1111, mail ann.lee@example.com")
        assert "4111" not in str(refused.value) and "ann.lee" not in str(refused.value)
        assert await session.history() == [] and echo.requests == []  # type: ignore[attr-defined]
        echo.script([Reply(text="call me on +14155550123")])  # type: ignore[attr-defined]
        reply = await session.send("hello")
        assert reply.text == "call me on [PHONE]"  # a reply is masked, not refused


async def test_block_masks_a_session_record_and_the_session_still_works() -> None:
    async with threadline.SessionManager(blocking()) as manager:
        session = await manager.create_session(provider="echo", system_prompt="Escalate to +44 20 7946 0958")
        assert session.record.system_prompt == "Escalate to [PHONE]"
        assert (await session.send("hello")).text == "hello"  # its title and state are written again
        await session.archive()


async def test_a_message_changed_after_the_stage_is_read_again_before_it_is_sent() -> None:
    pii = PIIMiddleware(PIIConfig())
    session = SessionRecord(id="s")
    staged = await pii.message(Message("s", 1, Role.USER, (Text("mail ann@x.io"),)), session)
    changed = attrs.evolve(staged, parts=(Text("mail ann@x.io, or bo@y.io"),))  # by a middleware after pii
    recorder = Recorder()
    await pii.complete(Call(session, "echo", Request(model=None, messages=(changed,))), recorder)
    assert recorder.calls[0].request.messages[0].text == "mail [EMAIL], or [EMAIL]"
