"""`threadline prompt` on a SQLite file, as a user runs it: each prompt is stored as a
session, `-c` and `--session` go on in one, `--no-log` keeps nothing."""

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
