"""`threadline prompt` on a SQLite file, as a user runs it: each prompt is stored as a
session, `-c` and `--session` go on in one, `--no-log` keeps nothing; what the model said
reaches the terminal without escape sequences, however it is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "threadline.toml"
    path.write_text(f'[defaults]\nprovider = "echo"\n[storage]\nbackend = "sqlite"\npath = "{tmp_path / "t.db"}"\n')
    return path


def threadline(config: Path, *args: str) -> str:
    command = [sys.executable, "-m", "threadline", "--config", str(config), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ, cwd=config.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def sessions(config: Path) -> list[dict[str, Any]]:
    return json_lines(threadline(config, "sessions", "list", "--json"))


def test_prompts_are_stored_and_continued(config: Path) -> None:
    first = json.loads(threadline(config, "prompt", "--json", "-s", "Be brief.", "one"))
    threadline(config, "prompt", "two")
    threadline(config, "prompt", "-c", "three")  # the latest: the session of "two"
    threadline(config, "prompt", "--session", first["session"], "four")
    stored = {row["id"]: row["messages"] for row in sessions(config)}
    assert sorted(stored.values()) == [4, 4] and stored[first["session"]] == 4
    record, *messages = json_lines(threadline(config, "sessions", "show", first["session"], "--json"))
    assert record["system_prompt"] == "Be brief."
    assert [m["parts"][0]["text"] for m in messages] == ["one", "one", "four", "four"]


def test_no_log_keeps_nothing(config: Path) -> None:
    assert threadline(config, "prompt", "--no-log", "secret") == "secret\n"
    assert sessions(config) == []


def test_a_reader_that_goes_away_mid_reply_leaves_the_session_ready(tmp_path: Path) -> None:
    """`| head -c 3` closes the pipe while the reply streams: no traceback, the reply is kept
    as far as it got, and the session's turn is given back (the next prompt does not wait)."""
    config = tmp_path / "threadline.toml"
    config.write_text(
        f'[defaults]\nprovider = "echo"\nturn_wait = 1\n[storage]\nbackend = "sqlite"\npath = "{tmp_path / "t.db"}"\n'
        "[providers.echo]\nchunk_size = 2\nchunk_delay = 0.05\n"
    )
    command = [sys.executable, "-m", "threadline", "--config", str(config), "prompt", "one two three four five six"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(3) == b"one"
        process.stdout.close()
        errors = process.stderr.read().decode()
    assert "Traceback" not in errors and process.returncode != 0
    threadline(config, "prompt", "-c", "again")
    session = sessions(config)[0]
    _, *messages = json_lines(threadline(config, "sessions", "show", str(session["id"]), "--json"))
    assert [m["status"] for m in messages] == ["ok", "incomplete", "ok", "ok"]  # the reply as far as it got


def test_prompt_show_list_and_search_print_no_escape_sequence(config: Path) -> None:
    question = "zebra \x1b]52;c;ZXZpbA==\x07 crossing \x1b[2J"
    streamed = threadline(config, "prompt", question)
    whole = threadline(config, "prompt", "--no-stream", question)
    listed = threadline(config, "sessions", "list")
    shown = threadline(config, "sessions", "show", listed.split()[0])
    found = threadline(config, "sessions", "search", "zebra")
    for output in (streamed, whole, listed, shown, found):
        assert "\x1b" not in output and "\x07" not in output, repr(output)
    assert streamed.strip() == whole.strip() == "zebra  crossing"
