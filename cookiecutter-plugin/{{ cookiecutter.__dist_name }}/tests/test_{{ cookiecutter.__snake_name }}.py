{%- set name = cookiecutter.plugin_name -%}
{%- set cls = cookiecutter.__class_name -%}
{%- set module = cookiecutter.__module_name -%}
"""{{ cookiecutter.__dist_name }} at work in a real SessionManager, assembled from a config file
as a user would."""

from __future__ import annotations

import importlib.metadata
{%- if cookiecutter.kind == "lifecycle" %}
import json
{%- endif %}
{%- if cookiecutter.kind == "middleware" %}
import logging
{%- endif %}
{%- if cookiecutter.kind == "command" %}
import subprocess
import sys
{%- endif %}
from pathlib import Path

import pytest
{%- if cookiecutter.kind != "command" %}
import threadline
{%- endif %}


@pytest.fixture(autouse=True)
def only_this_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Load this plugin and the kernel's own, whatever else is installed; keep the user's files out."""
    monkeypatch.setenv("THREADLINE_PLUGINS", "{{ name }},echo,memory")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "threadline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_plugin_is_found_through_its_entry_point() -> None:
    (entry_point,) = importlib.metadata.entry_points(group="threadline", name="{{ name }}")
    assert entry_point.value == "{{ module }}"
{% if cookiecutter.kind == "provider" %}

async def test_a_session_on_this_provider(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[defaults]\nprovider = "{{ name }}"\n[providers.{{ name }}]\nchunk_size = 3\n')
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session()
        reply = await session.send("Hello there")
        pieces = [e.text async for e in session.stream("abc def") if isinstance(e, threadline.TextDelta)]
    assert reply.text == "ereht olleH" and reply.provider == "{{ name }}"
    assert reply.usage is not None and reply.usage.output_tokens > 0
    assert pieces == ["fed", " cb", "a"]
{% elif cookiecutter.kind == "storage" %}

async def test_sessions_outlive_the_process_that_wrote_them(tmp_path: Path) -> None:
    file = tmp_path / "store.jsonl"
    config = write_config(tmp_path, f'[storage]\nbackend = "{{ name }}"\npath = "{file}"\n')
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session(user_id="ann")
        await session.send("remember me")
    async with threadline.SessionManager.from_config(config) as tl:
        again = await tl.get_session(session.id)
        history = await again.history()
    assert [m.text for m in history] == ["remember me", "remember me"]
    assert file.read_text().count("\n") == 3  # the session and its two messages, a line each
{% elif cookiecutter.kind == "middleware" %}

async def test_every_call_is_measured(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path, '[middleware]\nchain = ["{{ name }}"]\n')
    caplog.set_level(logging.INFO, logger="{{ module }}")
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session()
        reply = await session.send("Hello there")
        async for _ in session.stream("And again"):
            pass
    assert reply.text == "Hello there"  # the reply passes through unchanged
    first, second = (r.getMessage() for r in caplog.records if r.name == "{{ module }}")
    assert first.startswith("echo (default model): ") and "tokens in, 2 out" in first
    assert "first chunk after" in second
{% elif cookiecutter.kind == "lifecycle" %}

async def test_every_event_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("THREADLINE_{{ cookiecutter.__snake_name|upper }}_LOG", str(log))
    config = write_config(tmp_path, '[providers.echo]\nreplies = [{ error = "unavailable" }]\n')
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session(user_id="ann")
        with pytest.raises(threadline.ProviderUnavailable):
            await session.send("first")
        await session.send("second")
        await session.archive()
        await session.delete()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events] == [
        "session_created",
        "message_appended",
        "provider_error",
        "message_appended",
        "message_appended",
        "session_archived",
        "session_deleted",
    ]
    assert events[0]["user"] == "ann" and events[2]["error"] == "ProviderUnavailable"
{% elif cookiecutter.kind == "tools" %}

async def test_the_model_can_call_the_tool(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[providers.echo]\nreplies = [{ tool_calls = [{ name = "{{ cookiecutter.__snake_name }}", '
        'arguments = { text = "one two three" } }] }]\n',
    )
    async with threadline.SessionManager.from_config(config) as tl:
        session = await tl.create_session(tools=["{{ cookiecutter.__snake_name }}"])
        reply = await session.send("How many words?")
        call, result = (await session.history())[1:3]
    assert call.tool_calls[0].name == "{{ cookiecutter.__snake_name }}"
    assert result.parts[0].content == "3"  # type: ignore[union-attr]
    assert reply.text == "tool results: 3"  # echo says back what the tool gave
{% elif cookiecutter.kind == "command" %}

def test_the_command_asks_and_prints_the_reply(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[storage]\nbackend = "memory"\n')
    result = subprocess.run(
        [sys.executable, "-m", "threadline", "--config", str(config), "{{ name }}", "What is up?"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "What is up?\n"  # the echo provider's reply
    assert "(session " in result.stderr


def test_the_command_is_listed_in_help() -> None:
    result = subprocess.run([sys.executable, "-m", "threadline", "--help"], capture_output=True, text=True, check=True)
    assert "{{ name }}" in result.stdout and "Ask one QUESTION" in result.stdout


def test_the_commands_help_ends_with_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "threadline", "{{ name }}", "--help"], capture_output=True, text=True, check=True
    )
    assert "Examples:\n    threadline {{ name }} " in result.stdout
{% endif -%}
