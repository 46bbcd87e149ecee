"""With threadline-sqlite installed, `threadline chat` persists: a second run resumes it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def threadline(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data")}
    env.pop("THREADLINE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_a_chat_persists_and_resumes(tmp_path: Path) -> None:
    first = threadline(tmp_path, "chat", stdin="My name is Ann.\n")
    assert first.returncode == 0, first.stderr
    assert "nothing will persist" not in first.stderr
    (session_id,) = re.findall(r"--session (\w+)", first.stderr)

    listed = threadline(tmp_path, "sessions", "list")
    assert session_id in listed.stdout and "My name is Ann." in listed.stdout and "2 msgs" in listed.stdout

    second = threadline(tmp_path, "chat", "--session", session_id, stdin="What is my name?\n/history\n")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-4:] == [
        "   1 user: My name is Ann.",
        "   2 assistant: My name is Ann.",
        "   3 user: What is my name?",
        "   4 assistant: What is my name?",
    ]
    assert (tmp_path / "data" / "threadline" / "threadline.db").exists()


def test_export_delete_and_import_through_the_cli(tmp_path: Path) -> None:
    threadline(tmp_path, "chat", stdin="keep me\n")
    (session_id,) = re.findall(r"^(\w{32}) ", threadline(tmp_path, "sessions", "list").stdout, re.MULTILINE)
    export = tmp_path / "export.jsonl"
    assert threadline(tmp_path, "sessions", "export", "-o", str(export)).returncode == 0
    assert threadline(tmp_path, "sessions", "delete", session_id, "--yes").returncode == 0
    assert "no session" in threadline(tmp_path, "sessions", "show", session_id).stderr
    assert threadline(tmp_path, "sessions", "import", str(export)).stdout.strip() == "imported 3 records"
    shown = threadline(tmp_path, "sessions", "show", session_id).stdout
    assert "1 user: keep me" in shown and "2 assistant: keep me" in shown


def test_sessions_list_and_export_read_a_read_only_database(tmp_path: Path) -> None:
    threadline(tmp_path, "chat", stdin="keep me\n")
    folder = tmp_path / "data" / "threadline"
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert set(before) == {"threadline.db"}  # closed cleanly: no -wal file left
    export = tmp_path / "export.jsonl"
    for path in (folder / "threadline.db", folder):  # chmod a-w: the plugin honours it even as root
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        listed = threadline(tmp_path, "sessions", "list")
        exported = threadline(tmp_path, "sessions", "export", "-o", str(export))
        after = {path.name: path.read_bytes() for path in folder.iterdir()}
    finally:
        for path in (folder, folder / "threadline.db"):
            path.chmod(path.stat().st_mode | 0o200)
    assert listed.returncode == 0 and "keep me" in listed.stdout, listed.stderr
    assert exported.returncode == 0 and len(export.read_text().splitlines()) == 3, exported.stderr
    assert after == before


def test_an_export_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    threadline(tmp_path, "chat", stdin="".join(f"message {n}\n" for n in range(200)))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("THREADLINE_CONFIG", None)
    export = subprocess.Popen(
        [sys.executable, "-m", "threadline", "sessions", "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert export.stdout is not None and export.stderr is not None
    export.stdout.read(100)
    export.stdout.close()  # the reader goes away, as `| head -c 100` does
    error = export.stderr.read().decode()
    export.wait(timeout=60)
    assert "Broken pipe" not in error and "Traceback" not in error
