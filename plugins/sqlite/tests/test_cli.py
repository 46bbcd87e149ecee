"""With threadline-sqlite installed, `threadline chat` persists: a second run resumes it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from threadline import SessionArchived, SessionManager, SessionStatus
from threadline_sqlite import SQLiteConfig
from threadline_sqlite.storage import SQLiteStorage


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user whose config and data live under ``home``."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data")}
    env.pop("THREADLINE_CONFIG", None)
    env.pop("THREADLINE_PLUGINS", None)
    return {**env, **extra}


def threadline(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "threadline", *args], home, stdin=stdin)


def run(
    command: list[str], home: Path, *, stdin: str = "", cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``command`` as the user under ``home`` runs it, from ``home`` unless told (no stray
    ./threadline.toml is found)."""
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=user_env(home, **env), cwd=cwd or home, timeout=60
    )


def resume_command(stderr: str) -> list[str]:
    """The command the chat said would resume its session."""
    (line,) = [line for line in stderr.splitlines() if "resume with: " in line]
    return shlex.split(line.partition("resume with: ")[2])


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


def test_sessions_edit_undo_and_revisions_through_the_cli(tmp_path: Path) -> None:
    threadline(tmp_path, "chat", stdin="first\nsecond\n")
    (session_id,) = re.findall(r"^(\w{32}) ", threadline(tmp_path, "sessions", "list").stdout, re.MULTILINE)
    edited = threadline(tmp_path, "sessions", "edit", session_id, "1", "premier")
    assert edited.stdout == "   1 user: premier\n", edited.stderr
    removed = threadline(tmp_path, "sessions", "edit", session_id, "2", "--remove")
    assert removed.stdout == "removed message 2:    2 assistant: first\n", removed.stderr
    undone = threadline(tmp_path, "sessions", "undo", session_id)
    assert undone.stdout == "took back 2 messages:\n   2 user: second\n   3 assistant: second\n"
    assert threadline(tmp_path, "sessions", "show", session_id).stdout.splitlines()[1:] == ["   1 user: premier"]
    listed = threadline(tmp_path, "sessions", "revisions", session_id).stdout.splitlines()
    assert [line.split(" (")[0] for line in listed if line.startswith("revision")] == ["revision 1", "revision 2",
                                                                                           "revision 3"]  # fmt: skip
    assert "   1 user: first" in listed
    as_json = [
        json.loads(line)
        for line in threadline(tmp_path, "sessions", "revisions", session_id, "--json").stdout.splitlines()
    ]
    assert [(r["number"], r["after_seq"], r["added"], len(r["replaced"])) for r in as_json] == [
        (1, 0, 4, 4), (2, 1, 2, 3), (3, 1, 0, 2)
    ]  # fmt: skip
    for args, says in [
        (("edit", session_id, "1"), "give the new TEXT, or --remove"),
        (("edit", session_id, "1", "x", "--remove"), "not both"),
        (("edit", session_id, "0", "x"), "0 is not in the range x>=1"),
        (("edit", session_id, "5", "x"), "the session has no message 5 to edit; its messages are 1 to 1"),
        (("undo", "nope"), "no session 'nope'"),
    ]:
        refused = threadline(tmp_path, "sessions", *args)
        assert refused.returncode != 0 and says in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


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


# -- the resume hint: the command it prints works as printed ---------------------------------


def test_the_resume_hint_runs_as_printed_and_carries_the_config(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere" / "my.toml"
    config.parent.mkdir()
    config.write_text(f'[storage]\nbackend = "sqlite"\npath = "{tmp_path / "mine.db"}"\n')
    first = threadline(tmp_path, "--config", "elsewhere/my.toml", "chat", stdin="My name is Ann.\n")
    assert first.returncode == 0, first.stderr
    command = resume_command(first.stderr)
    interpreter = shutil.which(command[0]) or command[0]  # as a shell finds it, bare name or path
    assert os.path.abspath(interpreter) == os.path.abspath(sys.executable) and command[1:3] == ["-m", "threadline"]
    assert command[3:6] == ["--config", str(config), "chat"]  # absolute: it works from any folder

    resumed = run(command, tmp_path, stdin="/history\n", cwd=tmp_path / "elsewhere")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines() == ["   1 user: My name is Ann.", "   2 assistant: My name is Ann."]


def test_a_config_from_the_environment_is_in_the_resume_hint(tmp_path: Path) -> None:
    config = tmp_path / "env.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "env.db"}"\n')
    first = run([sys.executable, "-m", "threadline", "chat"], tmp_path, stdin="hi\n", THREADLINE_CONFIG=str(config))
    command = resume_command(first.stderr)
    assert command[3:5] == ["--config", str(config)]
    resumed = run(command, tmp_path, stdin="/history\n")  # THREADLINE_CONFIG no longer set
    assert resumed.returncode == 0 and resumed.stdout.splitlines()[0] == "   1 user: hi", resumed.stderr


CONSOLE_SCRIPT = Path(os.path.abspath(sys.executable)).with_name("threadline")


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="no threadline console script beside this Python")
def test_the_resume_hint_names_the_console_script_when_threadline_is_not_on_path(tmp_path: Path) -> None:
    """What `python tasks.py chat` does: .venv/bin/threadline run by its path, not on PATH."""
    first = run([str(CONSOLE_SCRIPT), "chat"], tmp_path, stdin="hi\n", PATH="/usr/bin:/bin")
    assert first.returncode == 0, first.stderr
    command = resume_command(first.stderr)
    assert command[:2] == [str(CONSOLE_SCRIPT), "chat"]
    resumed = run(command, tmp_path, stdin="/history\n", PATH="/usr/bin:/bin")  # not exit 127
    assert resumed.returncode == 0 and resumed.stdout.splitlines()[0] == "   1 user: hi", resumed.stderr


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="no threadline console script beside this Python")
def test_the_resume_hint_says_threadline_when_it_is_on_path(tmp_path: Path) -> None:
    path = f"{CONSOLE_SCRIPT.parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
    first = run(["threadline", "chat"], tmp_path, stdin="hi\n", PATH=path)
    command = resume_command(first.stderr)
    assert command[:2] == ["threadline", "chat"]
    resumed = run(command, tmp_path, stdin="/history\n", PATH=path)
    assert resumed.returncode == 0 and resumed.stdout.splitlines()[0] == "   1 user: hi", resumed.stderr


def test_an_unknown_session_names_the_database_and_the_listing_command(tmp_path: Path) -> None:
    database = tmp_path / "data" / "threadline" / "threadline.db"
    for args in (("sessions", "show", "nope"), ("chat", "--session", "nope")):
        result = threadline(tmp_path, *args, stdin="hi\n")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"no session 'nope' in tenant 'default' of the sqlite database {database}" in result.stderr
        listing = re.search(r"`([^`]*sessions list)` lists the sessions there", result.stderr)
        assert listing is not None, result.stderr
        assert run(shlex.split(listing.group(1)), tmp_path).returncode == 0


# -- sessions list and show -------------------------------------------------------------------


def test_sessions_list_and_show_say_the_provider_and_model(tmp_path: Path) -> None:
    threadline(tmp_path, "chat", "--model", "echo-7", stdin="first\n")
    threadline(tmp_path, "chat", stdin="second\n")
    listed = threadline(tmp_path, "sessions", "list", "--json")
    assert [(s["provider"], s["model"]) for s in map(json.loads, listed.stdout.splitlines())] == [
        ("echo", None),  # the provider's default model
        ("echo", "echo-7"),
    ]
    plain = threadline(tmp_path, "sessions", "list").stdout.splitlines()
    assert "  echo  " in plain[0] and "  echo/echo-7  " in plain[1]
    session_id = plain[1].split()[0]
    assert "  echo/echo-7  " in threadline(tmp_path, "sessions", "show", session_id).stdout.splitlines()[0]
    shown = json.loads(threadline(tmp_path, "sessions", "show", session_id, "--json").stdout.splitlines()[0])
    assert (shown["provider"], shown["model"]) == ("echo", "echo-7")


def test_the_next_page_command_keeps_every_option(tmp_path: Path) -> None:
    config = tmp_path / "tl.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "pages.db"}"\n')
    export = tmp_path / "sessions.jsonl"
    users = ["ann", "bob", "ann", "ann", "ann"]
    export.write_text("".join(
        json.dumps({"v": 1, "type": "session", "id": f"s{n}", "user_id": user, "title": f"chat {n}",
                    "updated_at": f"2025-01-0{n + 1}T00:00:00+00:00"}) + "\n"
        for n, user in enumerate(users)
    ))  # fmt: skip
    assert threadline(tmp_path, "--config", str(config), "sessions", "import", str(export)).returncode == 0
    seen = []
    command = [sys.executable, "-m", "threadline", "--config", str(config)]
    command += ["sessions", "list", "--user", "ann", "--limit", "2", "--json"]
    while command:
        page = run(command, tmp_path, cwd=config.parent.parent)  # the printed command works from anywhere
        assert page.returncode == 0, page.stderr
        seen += [json.loads(line)["id"] for line in page.stdout.splitlines()]
        more = [line for line in page.stderr.splitlines() if line.startswith("more: ")]
        command = shlex.split(more[0].removeprefix("more: ")) if more else []
        assert not command or {"--config", "--user", "--limit", "--json", "--cursor"} <= set(command)
    assert seen == ["s4", "s3", "s2", "s0"]


def test_config_check_names_a_setting_that_is_not_one_of_the_allowed_values(tmp_path: Path) -> None:
    config = tmp_path / "threadline.toml"
    config.write_text('[storage]\nbackend = "sqlite"\nsynchronous = "normal"\n')
    error = f"Error: {config}: storage.synchronous: 'normal' is not one of 'OFF', 'NORMAL', 'FULL', 'EXTRA'"
    for command in (["config", "check"], ["chat"], ["sessions", "list"]):
        result = threadline(tmp_path, "--config", str(config), *command, stdin="hi\n")
        assert result.returncode == 1 and result.stdout == "", result.stderr
        assert result.stderr.splitlines()[-1] == error


# -- the memory notice ------------------------------------------------------------------------


def test_no_memory_notice_with_sqlite_and_the_right_one_when_sqlite_is_disabled(tmp_path: Path) -> None:
    assert "nothing will persist" not in threadline(tmp_path, "sessions", "list").stderr
    config = tmp_path / "off.toml"
    config.write_text('[plugins]\ndisable = ["sqlite", "redis", "postgres"]\n')  # the others: when installed too
    notice = threadline(tmp_path, "--config", str(config), "sessions", "list").stderr
    assert f"nothing will persist: threadline-sqlite is installed but disabled: [plugins] disable in {config}" in notice
    assert "install threadline-sqlite" not in notice


# -- archived sessions ------------------------------------------------------------------------


def test_an_archived_session_cannot_be_resumed_and_keeps_its_messages(tmp_path: Path) -> None:
    first = threadline(tmp_path, "chat", stdin="keep me\n")
    (session_id,) = re.findall(r"--session (\w+)", first.stderr)
    assert threadline(tmp_path, "sessions", "archive", session_id).returncode == 0
    again = threadline(tmp_path, "chat", "--session", session_id, stdin="more\n")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"session {session_id!r} is archived and takes no new messages" in again.stderr
    shown = threadline(tmp_path, "sessions", "show", session_id).stdout.splitlines()
    assert len(shown) == 3 and shown[0].endswith("[archived]")


async def test_a_send_to_an_archived_session_is_refused_on_sqlite(tmp_path: Path) -> None:
    storage = SQLiteStorage(SQLiteConfig(path=tmp_path / "archived.db"))
    async with SessionManager(storage=storage) as manager:
        session = await manager.create_session()
        await session.send("before")
        await session.archive()
        with pytest.raises(SessionArchived, match="fork it"):
            await session.send("after")
        with pytest.raises(SessionArchived):
            async for _ in session.stream("after"):
                pass
        again = await manager.get_session(session.id)  # a handle read from the database
        with pytest.raises(SessionArchived):
            await again.send("after")
        assert [m.text for m in await again.history()] == ["before", "before"]
        assert again.record.status is SessionStatus.ARCHIVED and again.record.message_count == 2
        fork = await again.fork()
        assert (await fork.send("after")).text == "after"


def test_sessions_vacuum_gives_back_what_deleted_sessions_held(tmp_path: Path) -> None:
    database = tmp_path / "data" / "threadline" / "threadline.db"
    for _ in range(3):
        assert threadline(tmp_path, "chat", stdin="long words " * 2000 + "\n").returncode == 0
    listed = threadline(tmp_path, "sessions", "list").stdout
    for session_id in re.findall(r"^(\w{32})", listed, flags=re.MULTILINE):
        assert threadline(tmp_path, "sessions", "delete", session_id, "--yes").returncode == 0
    before = database.stat().st_size
    vacuumed = threadline(tmp_path, "sessions", "vacuum")
    assert vacuumed.returncode == 0, vacuumed.stderr
    given_back = before - database.stat().st_size
    assert given_back > 0 and vacuumed.stdout == f"vacuumed: {given_back / 1e6:.1f} MB given back\n"


def test_sessions_vacuum_on_a_storage_with_nothing_to_vacuum_says_so(tmp_path: Path) -> None:
    (tmp_path / "threadline.toml").write_text('[storage]\nbackend = "memory"\n', encoding="utf-8")
    vacuumed = threadline(tmp_path, "--config", str(tmp_path / "threadline.toml"), "sessions", "vacuum")
    assert vacuumed.returncode == 1 and "Traceback" not in vacuumed.stderr
    assert "memory storage gives space back by itself" in vacuumed.stderr


def test_sessions_search_finds_what_was_said_with_its_filters(tmp_path: Path) -> None:
    for question in ("Where is the best café in Paris?", "Budget for Q3, please"):
        asked = threadline(tmp_path, "prompt", question)
        assert asked.returncode == 0, asked.stderr
    found = threadline(tmp_path, "sessions", "search", "CAFE paris")
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert len(lines) == 2 and all("Where is the best [café] in [Paris]?" in line for line in lines)
    assert re.match(r"\w{32} +1 user +\d{4}-\d\d-\d\d \d\d:\d\d  ", lines[0] if " user " in lines[0] else lines[1])
    listed = threadline(tmp_path, "sessions", "search", "budget", "--json").stdout.splitlines()
    hits = {(hit["seq"], hit["role"], hit["provider"]) for hit in map(json.loads, listed)}
    assert hits == {(1, "user", "echo"), (2, "assistant", "echo")}
    assert len(threadline(tmp_path, "sessions", "search", "budget", "--limit", "1").stdout.splitlines()) == 1
    assert threadline(tmp_path, "sessions", "search", "budget", "--since", "1h", "--provider", "echo").stdout
    for narrower in (["--since", "2999-01-01"], ["--user", "someone"], ["--provider", "openai"]):
        nothing = threadline(tmp_path, "sessions", "search", "budget", *narrower)
        assert (nothing.returncode, nothing.stdout) == (0, ""), narrower
        assert "no messages match 'budget'" in nothing.stderr
    odd = threadline(tmp_path, "sessions", "search", '"budget*" (')  # no syntax: the word budget
    assert odd.returncode == 0 and "[Budget]" in odd.stdout, odd.stderr
