"""The redaction plugin that docs/plugins.md walks through, installed as a plugin is and run
through a real provider plugin and SQLite: no masked address reaches the provider's HTTP
requests, the database file, the title, ``threadline_message_appended`` or the streamed text."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from plugin_site import install_plugin

import threadline
from threadline.testing import EventRecorder, Reply, ScriptedToolCall
from threadline_openai.testing import FakeOpenAI

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
MARKER = "<!-- redaction example: tests/test_redaction_example.py runs this block -->"
ADDRESSES = ("ann@example.com", "bob@example.org", "carol@example.net", "jürgen@example.de")
IN_SYSTEM_PROMPT = "ops@example.io"  # the application's own text: stored as given, never sent


def example() -> tuple[str, str]:
    """The plugin's code, the python block after the marker, and the config table after it."""
    after = DOCS.read_text(encoding="utf-8").split(MARKER, 1)[1]
    match = re.match(r"\s*```python\n(.*?)\n```.*?```toml\n(.*?)```", after, re.DOTALL)
    assert match, f"no python block, then toml block, after the marker in {DOCS}"
    return match.group(1), match.group(2)


@threadline.tool
def lookup_contact(name: str) -> str:
    """The e-mail address of a colleague."""
    return "carol@example.net"


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as api:
        yield api


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_no_address_gets_past_the_redaction_example(
    api: str, openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install_plugin(site, "threadline-redact", {"redact": "threadline_redact"}, {"threadline_redact": example()[0]})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("THREADLINE_PLUGINS", "redact,openai,sqlite,echo")
    database = tmp_path / "threadline.db"
    config = tmp_path / "threadline.toml"
    config.write_text(
        textwrap.dedent(f"""
        [defaults]
        provider = "openai"
        [storage]
        backend = "sqlite"
        path = "{database}"
        [providers.openai]
        api_key = "sk-test"
        base_url = "{openai.url}"
        api = "{api}"
        max_retries = 0
    """)
        + example()[1]
    )
    openai.script([
        Reply(tool_calls=(ScriptedToolCall("lookup_contact", {"name": "bob@example.org", "cc": ["jürgen@example.de"]}),)),  # noqa: E501
        Reply(text="Write to bob@example.org, or to carol@example.net, today."),
        Reply(text="Noted: ann@example.com."),
    ])  # fmt: skip
    recorder = EventRecorder()
    streamed: list[str] = []
    arguments: list[str] = []
    async with threadline.SessionManager.from_config(config, plugins=[recorder], tools=[lookup_contact]) as tl:
        assert tl.plugin_manager.has_plugin("redact")
        session = await tl.create_session(tools=["lookup_contact"], system_prompt=f"Escalate to {IN_SYSTEM_PROMPT}.")
        async for event in session.stream("Mail ann@example.com the plan"):
            if isinstance(event, threadline.TextDelta):
                streamed.append(event.text)
            elif isinstance(event, threadline.ToolCallDelta):
                arguments.append(event.arguments)
        reply = await session.send("thanks")
        title = (await tl.get_session(session.id)).title
        history = await session.history()

    assert len(streamed) > 3  # the reply came in pieces, the addresses split across them
    assert "".join(streamed) == "Write to [EMAIL], or to [EMAIL], today."
    assert json.loads("".join(arguments)) == {"name": "[EMAIL]", "cc": ["[EMAIL]"]}
    assert reply.text == "Noted: [EMAIL]."
    assert title == "Mail [EMAIL] the plan"
    appended = [arguments["message"] for name, arguments in recorder.events if name == "message_appended"]
    assert appended == history and len(history) == 6
    seen: dict[str, Any] = {
        "HTTP requests": b"".join(request.body for request in openai.requests),
        "database": b"".join(path.read_bytes() for path in sorted(tmp_path.glob("threadline.db*"))),  # noqa: ASYNC240
        "history": repr(history).encode(),
        "stream": json.dumps([streamed, arguments]).encode(),
    }
    for address in ADDRESSES:
        for where, data in seen.items():
            for form in (address.encode(), json.dumps(address).strip('"').encode()):  # as is, or JSON-escaped
                assert form not in data, f"{address} reached the {where}"
    assert IN_SYSTEM_PROMPT.encode() not in seen["HTTP requests"]
    assert b"[EMAIL]" in seen["HTTP requests"] and b"[EMAIL]" in seen["database"]
