"""`python tasks.py`, the one-command set-up, passes what follows its command on to it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.skipif(os.name == "nt", reason="shell scripts stand in for the .venv's programs")
def test_chat_help_is_the_help_of_threadline_chat(tmp_path: Path) -> None:
    """Run from a copy of the checkout whose .venv is made already: its installer has nothing
    left to install, and its `threadline` is the one these tests run."""
    shutil.copy(ROOT / "tasks.py", tmp_path)
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    script(venv / "uv", "exit 0")
    script(venv / "threadline", f'exec {shlex.quote(sys.executable)} -m threadline "$@"')
    result = subprocess.run(
        [sys.executable, str(tmp_path / "tasks.py"), "chat", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: threadline chat [OPTIONS]")
    assert "/history" in result.stdout and "--provider NAME" in result.stdout
