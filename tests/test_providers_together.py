"""One conversation across the three provider plugins, each on its fake API: the history
converts at every switch, and each provider's own data goes back to it and nowhere else."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
for plugin in ("openai", "anthropic", "gemini"):
    sys.path.insert(0, str(PLUGINS / plugin / "tests"))

from fake_anthropic import SIGNATURE as ANTHROPIC_SIGNATURE  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402
from fake_gemini import SIGNATURE as GEMINI_SIGNATURE  # noqa: E402
from fake_gemini import FakeGemini  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

import threadline  # noqa: E402
from threadline.testing import Reply  # noqa: E402


@pytest.fixture
async def apis() -> AsyncIterator[tuple[FakeOpenAI, FakeAnthropic, FakeGemini]]:
    async with FakeOpenAI() as openai, FakeAnthropic(thinking="Think first.") as anthropic, FakeGemini() as gemini:
        gemini.signatures = True
        yield openai, anthropic, gemini


def config(tmp_path: Path, openai: FakeOpenAI, anthropic: FakeAnthropic, gemini: FakeGemini) -> Path:
    path = tmp_path / "threadline.toml"
    path.write_text(
        '[defaults]\nprovider = "openai"\n[storage]\nbackend = "memory"\n'
        f'[providers.openai]\napi_key = "sk-test"\nbase_url = "{openai.url}"\nmax_retries = 0\n'
        f'[providers.anthropic]\napi_key = "sk-ant-test"\nbase_url = "{anthropic.url}"\nmax_retries = 0\n'
        'thinking = "adaptive"\n'
        f'[providers.gemini]\napi_key = "gm-test"\nbase_url = "{gemini.url}"\nmax_retries = 0\n'
    )
    return path


def sent(api: Any, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = api.requests[index].json()
    return body


async def test_one_conversation_moves_across_all_three(
    apis: tuple[FakeOpenAI, FakeAnthropic, FakeGemini], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai, anthropic, gemini = apis
    monkeypatch.setenv("THREADLINE_PLUGINS", "openai,anthropic,gemini,memory,echo")
    openai.script([Reply(text="From OpenAI.")])
    anthropic.script([Reply(text="From Claude.")])
    gemini.script([Reply(text="From Gemini.")])
    async with threadline.SessionManager.from_config(config(tmp_path, openai, anthropic, gemini)) as tl:
        session = await tl.create_session(system_prompt="Be brief.")
        await session.send("One")
        await session.send("Two", provider="anthropic")
        async for _ in session.stream("Three", provider="gemini"):
            pass
        await session.update(provider="anthropic")  # a changed default
        await session.send("Four")
        history = await session.history()

    assert [(m.role.value, m.provider, m.text) for m in history] == [
        ("user", None, "One"),
        ("assistant", "openai", "From OpenAI."),
        ("user", None, "Two"),
        ("assistant", "anthropic", "From Claude."),
        ("user", None, "Three"),
        ("assistant", "gemini", "From Gemini."),
        ("user", None, "Four"),
        ("assistant", "anthropic", "Hello from the fake Anthropic API."),
    ]
    # Gemini got the whole conversation in its own form, and none of Claude's thinking
    contents = sent(gemini)["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "One"),
        ("model", "From OpenAI."),
        ("user", "Two"),
        ("model", "From Claude."),
        ("user", "Three"),
    ]
    assert "Think first" not in json.dumps(sent(gemini))
    # Claude got its own thinking back, with its signature, and none of Gemini's signature
    last = sent(anthropic)
    thinking = last["messages"][3]["content"][0]
    assert thinking == {"type": "thinking", "thinking": "Think first.", "signature": ANTHROPIC_SIGNATURE}
    assert GEMINI_SIGNATURE not in json.dumps(last)
    assert last["messages"][5] == {"role": "assistant", "content": [{"type": "text", "text": "From Gemini."}]}
    assert last["system"] == "Be brief."
