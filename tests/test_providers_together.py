"""One conversation across the three provider plugins, each on its fake API: the history
converts at every switch, and each provider's own data goes back to it and nowhere else."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
for plugin in ("anthropic", "gemini"):
    sys.path.insert(0, str(PLUGINS / plugin / "tests"))

from fake_anthropic import SIGNATURE as ANTHROPIC_SIGNATURE  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402
from fake_gemini import SIGNATURE as GEMINI_SIGNATURE  # noqa: E402
from fake_gemini import FakeGemini  # noqa: E402

import threadline  # noqa: E402
from threadline.testing import Reply  # noqa: E402
from threadline_openai.testing import FakeOpenAI  # noqa: E402


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


async def run_threadline(config: Path, *args: str, stdin: str) -> tuple[int, str, str]:
    """`threadline --config CONFIG ARGS`, with the fake APIs answering while it runs."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(config.parent), "XDG_DATA_HOME": str(config.parent)}
    env.pop("THREADLINE_PLUGINS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "threadline", "--config", str(config), *args, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_a_chat_resumed_on_another_provider_says_which_model_its_replies_come_from(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    async with FakeOpenAI() as openai:
        path.write_text(
            f'[defaults]\nprovider = "echo"\n[storage]\nbackend = "sqlite"\npath = "{tmp_path / "chats.db"}"\n'
            f'[providers.openai]\napi_key = "sk-test"\nbase_url = "{openai.url}"\nmax_retries = 0\n'
        )
        status, _, err = await run_threadline(path, "chat", stdin="One\n")
        assert status == 0, err
        (session,) = re.findall(r"^session (\w+) \(echo\)", err, re.MULTILINE)

        switched = ("chat", "--session", session, "--provider", "openai")
        status, out, err = await run_threadline(path, *switched, stdin="Two\n")
        assert (status, out) == (0, "Hello from the fake OpenAI API.\n"), err
        note = "note: this session was on echo; with --provider openai its replies come from openai/gpt-4.1-mini"
        assert f"{note}, the provider's default (--model picks another)" in err.splitlines()
        assert sent(openai)["model"] == "gpt-4.1-mini"

        status, _, err = await run_threadline(path, *switched, "--model", "gpt-4.1", stdin="Three\n")
        assert status == 0 and "note:" not in err, err
        assert sent(openai)["model"] == "gpt-4.1"
