"""The `threadline` command, run as a user runs it: a subprocess with piped stdin."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest


def home() -> Path:
    """The test's own home folder (conftest.py points XDG_CONFIG_HOME into it): commands run
    there, so no threadline.toml in the folder the tests were started from is found."""
    return Path(os.environ["XDG_CONFIG_HOME"]).parent


def threadline(*args: str, stdin: str = "", config: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "threadline", *(["--config", str(config)] if config else []), *args]
    return run(command, stdin=stdin)


def run(command: list[str], *, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=os.environ, cwd=home(), timeout=60)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def user_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "threadline.toml"
    path.write_text('[defaults]\nprovider = "echo"\n[storage]\nbackend = "memory"\n[providers.echo]\nchunk_size = 2\n')
    return path


def test_chat_reads_piped_lines_and_streams_replies(config: Path) -> None:
    result = threadline("chat", stdin="hello there\n/history\nbye now\n/quit\nnever sent\n", config=config)
    lines = ok(result).splitlines()
    assert lines == ["hello there", "   1 user: hello there", "   2 assistant: hello there", "bye now"]
    assert re.search(r"^session \w+ \(echo\); not kept: storage is memory", result.stderr, re.MULTILINE)


def test_chat_new_starts_another_session(config: Path) -> None:
    result = threadline("chat", stdin="one\n/new\ntwo\n/history\n", config=config)
    assert ok(result).splitlines()[-2:] == ["   1 user: two", "   2 assistant: two"]
    assert result.stderr.count("not kept: storage is memory") == 2


def test_chat_undo_retry_and_edit_change_the_history(config: Path) -> None:
    typed = "one\ntwo\n/undo\n/edit 1 uno\n/edit 1\n/retry\n/history\n/edit x y\n/edit 9 z\n"
    result = threadline("chat", stdin=typed, config=config)
    lines = ok(result).splitlines()
    assert lines == ["one", "two", "uno", "   1 user: uno", "   2 assistant: uno"]
    said = result.stderr
    assert "took back 2 messages, from: two" in said
    assert "message 1 now says: uno" in said
    assert "   1 user: uno\n(to change it: /edit 1 followed by the new text)" in said
    assert "/edit N TEXT: N is the number /history shows" in said
    assert "/edit: the session has no message 9 to edit; its messages are 1 to 2" in said


def test_a_retry_with_nothing_to_answer_and_an_odd_number_are_no_failures(config: Path) -> None:
    result = threadline("chat", stdin="hi\n/edit ² hi\n", config=config)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "/edit N TEXT: N is the number" in result.stderr
    result = threadline("chat", stdin="hi\n/undo\n/retry\n", config=config)
    assert result.returncode == 0, result.stderr
    assert "/retry: the session has no user message" in result.stderr


def test_chat_commands_before_any_message_say_there_is_none(config: Path) -> None:
    result = threadline("chat", stdin="/undo\n/retry\n/edit 1 x\n/nonsense\n", config=config)
    assert ok(result) == ""
    assert result.stderr.count(": no messages yet") == 3
    assert "commands: /history, /undo" in result.stderr


def test_a_memory_chat_offers_no_resume_command_that_cannot_work(config: Path) -> None:
    result = threadline("chat", stdin="hello\n", config=config)
    assert ok(result) == "hello\n"
    assert "not kept: storage is memory, so it ends with this chat" in result.stderr
    assert "resume with" not in result.stderr and "--session" not in result.stderr


def test_memory_chosen_in_the_config_gets_no_notice(config: Path) -> None:
    for args in (("chat",), ("sessions", "list"), ("sessions", "export")):
        assert "nothing will persist" not in threadline(*args, stdin="hi\n", config=config).stderr


SQLITE_INSTALLED = any(ep.name == "sqlite" for ep in entry_points(group="threadline"))


@pytest.mark.usefixtures("only_builtins")
def test_memory_as_a_fallback_says_why_and_what_to_do() -> None:
    notice = threadline("sessions", "list").stderr
    if SQLITE_INSTALLED:  # installed beside the kernel, but THREADLINE_PLUGINS leaves it out
        assert "nothing will persist: threadline-sqlite is installed but disabled: THREADLINE_PLUGINS" in notice
        assert "install threadline-sqlite" not in notice
    else:
        assert "nothing will persist: install threadline-sqlite, or set [storage] backend in " in notice
    assert notice.count("nothing will persist") == 1


def test_the_default_config_is_created_on_first_run() -> None:
    result = threadline("chat", stdin="hi\n")
    assert ok(result) == "hi\n"
    created = Path(os.environ["XDG_CONFIG_HOME"]) / "threadline" / "threadline.toml"
    assert created.exists() and "created a default config" in result.stderr
    assert ok(threadline("config", "path")).strip() == str(created)


def test_sessions_export_and_import_round_trip(tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    lines = []
    for index in range(2):
        session = {"v": 1, "type": "session", "id": f"s{index}", "title": f"Chat {index}", "user_id": "ann"}
        message = {"v": 1, "type": "message", "session_id": f"s{index}", "seq": 1, "role": "user",
                   "parts": [{"type": "text", "text": "hi"}]}  # fmt: skip
        lines += [json.dumps(session), json.dumps(message)]
    export.write_text("\n".join(lines) + "\n")
    result = threadline("sessions", "import", str(export))
    assert ok(result).strip() == "imported 4 records"


def test_sessions_commands_on_a_memory_store_report_not_found() -> None:
    assert "no session 'abc' in tenant 'default'" in user_error(threadline("sessions", "show", "abc"))
    assert "no session 'abc'" in user_error(threadline("sessions", "archive", "abc"))
    assert "no sessions" in threadline("sessions", "list").stderr


@pytest.mark.parametrize("args", [("sessions", "show", "abc"), ("chat", "--session", "abc")])
def test_an_unknown_session_names_the_storage_and_the_command_that_lists_sessions(
    config: Path, args: tuple[str, ...]
) -> None:
    error = user_error(threadline(*args, stdin="hi\n", config=config))
    assert "no session 'abc' in tenant 'default' of the memory storage, which starts empty in every run" in error
    listing = re.search(r"`([^`]*)` lists the sessions there", error)
    assert listing is not None, error
    command = shlex.split(listing.group(1))
    assert command[-4:] == ["--config", str(config), "sessions", "list"]
    assert "no sessions" in run(command).stderr  # the command runs as printed


CONSOLE_SCRIPT = Path(os.path.abspath(sys.executable)).with_name("threadline")


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="no threadline console script beside this Python")
def test_a_suggested_command_names_the_console_script_that_ran(config: Path) -> None:
    """Run as `.venv/bin/threadline`, a command it suggests starts the same script from a shell:
    its bare name only when PATH finds that very file (under tox it does; from `python tasks.py
    chat` it does not, and the path is printed)."""
    error = user_error(run([str(CONSOLE_SCRIPT), "--config", str(config), "sessions", "show", "abc"]))
    listing = re.search(r"`([^`]*)` lists the sessions there", error)
    assert listing is not None, error
    command = shlex.split(listing.group(1))
    assert os.path.abspath(shutil.which(command[0]) or command[0]) == str(CONSOLE_SCRIPT)  # as a shell finds it
    assert command[1:] == ["--config", str(config), "sessions", "list"]


@pytest.mark.parametrize("args", [("chat", "--session", ""), ("sessions", "show", ""), ("sessions", "archive", " ")])
def test_an_empty_session_id_is_a_usage_error(config: Path, args: tuple[str, ...]) -> None:
    result = threadline(*args, stdin="hi\n", config=config)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert "a session id cannot be empty; `threadline sessions list` shows them" in result.stderr
    if args[0] == "chat":
        assert "or leave --session out to start a new session" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--config", "/no/such/file.toml", "chat"), "/no/such/file.toml: no such config file"),
        (("chat", "--provider", "nope"), "no provider plugin named 'nope'; installed: echo"),
        (("chat", "--template", "nope"), "no template named 'nope'"),
        (("chat", "--session", "missing"), "no session 'missing'"),
        (("sessions", "list", "--status", "deleted"), "'deleted' is not one of 'active', 'archived'"),
        (("sessions", "import", "/no/such.jsonl"), "does not exist"),
    ],
)
@pytest.mark.usefixtures("only_builtins")
def test_user_errors_are_one_line_and_a_non_zero_exit(args: tuple[str, ...], message: str) -> None:
    assert message in user_error(threadline(*args, stdin="hi\n"))


def test_a_bad_import_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"v": 1, "type": "session", "id": "s1"}\nnot json\n')
    assert "line 2: not JSON" in user_error(threadline("sessions", "import", str(path)))


@pytest.mark.usefixtures("only_builtins")
def test_config_check_reports_what_it_assembled(config: Path) -> None:
    out = ok(threadline("config", "check", config=config))
    assert f"ok: {config} (given by --config)" in out and "storage: memory" in out and "providers: echo" in out


def test_config_check_names_the_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[providers.echo]\nchunk_size = -1\n")
    assert "providers.echo" in user_error(threadline("config", "check", config=path))


def test_config_check_says_where_a_nested_value_is_wrong_and_what_is_allowed_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[providers.echo]\nreplies = [{ text = "hi" }, { error = "timeout" }]\n')
    allowed = "'auth', 'rate_limited', 'context_too_long', 'unavailable', 'bad_request', 'malformed', 'dropped'"
    error = f"Error: {path}: providers.echo.replies[1].error: 'timeout' is not one of {allowed}\n"
    assert user_error(threadline("config", "check", config=path)) == error


@pytest.mark.parametrize(
    ("table", "chat", "error"),
    [
        pytest.param(  # the provider would be whichever has its key set, which need not serve the model
            '[defaults]\nmodel = "gpt-4.1"\n',
            (),
            "defaults.model: 'gpt-4.1' needs [defaults] provider: without one, new sessions go to whichever",
            id="a default model without a default provider",
        ),
        pytest.param(
            '[templates.support]\ntools = ["lookup_order"]\n',
            ("--template", "support"),
            "templates.support.tools: no tool named 'lookup_order'; registered tools: none",
            id="a template naming a tool nobody registered",
        ),
    ],
)
@pytest.mark.usefixtures("only_builtins")
def test_config_check_and_the_chat_start_refuse_what_the_first_reply_would_fail_on(
    tmp_path: Path, table: str, chat: tuple[str, ...], error: str
) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text(f'{table}[storage]\nbackend = "memory"\n')
    assert f"{path}: {error}" in user_error(threadline("config", "check", config=path))
    result = threadline("chat", *chat, stdin="hi\n", config=path)
    assert f"{path}: {error}" in user_error(result) and result.stdout == ""
    assert "session " not in result.stderr  # refused before the first message made a session


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--provider", "no provider plugin named 'nope'; installed: echo"),
        (
            "--template",
            "no template named 'nope'; templates: none (add [templates.NAME] to the config; on the command line, "
            "`threadline templates save NAME`)",
        ),
    ],
)
@pytest.mark.usefixtures("only_builtins")
def test_a_typo_in_an_option_is_blamed_on_the_option_not_on_the_config_file(
    config: Path, option: str, message: str
) -> None:
    result = threadline("chat", option, "nope", stdin="hi\n", config=config)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error == f"Error: Invalid value for '{option}': {message}"


def test_plugins_lists_builtins_with_distribution_and_hooks() -> None:
    out = ok(threadline("plugins", "--json"))
    plugins = {entry["name"]: entry for entry in map(json.loads, out.splitlines())}
    assert plugins["echo"]["distribution"] == "threadline"
    assert plugins["echo"]["hooks"] == ["threadline_register_providers"]
    assert plugins["memory"]["status"] == "loaded"


def test_version_and_help() -> None:
    assert ok(threadline("--version")).startswith("threadline, version ")
    help_text = ok(threadline("--help"))
    for command in ("chat", "sessions", "plugins", "config"):
        assert command in help_text
    assert "/history" in ok(threadline("chat", "--help"))


def test_delete_without_a_terminal_needs_yes() -> None:
    assert "pass --yes" in user_error(threadline("sessions", "delete", "abc"))


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["sessions", "show", b"\xff\xfe"], "SESSION_ID"),
        (["sessions", "list", "--user", b"\xff"], "--user"),
        (["sessions", "export", "--tenant", b"ab\xffcd"], "--tenant"),
        (["chat", "--system", b"\xff"], "--system"),
        (["chat", "--session", b"\xc3"], "--session"),
    ],
)
def test_arguments_that_are_not_utf8_are_a_usage_error(args: list[str | bytes], where: str) -> None:
    run = subprocess.run([sys.executable, "-m", "threadline", *args], capture_output=True, timeout=60, input=b"")
    assert run.returncode == 2 and b"Traceback" not in run.stderr
    assert f"Invalid value for '{where}': is not valid UTF-8 text".encode() in run.stderr


def test_a_piped_line_that_is_not_utf8_is_skipped_and_the_chat_goes_on() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "threadline", "chat"], input=b"hi \xff there\nfine\n", capture_output=True, timeout=60
    )
    assert run.returncode == 0 and b"Traceback" not in run.stderr
    assert b"that line is not valid UTF-8 text; nothing was sent" in run.stderr
    assert run.stdout.strip().endswith(b"fine")


def test_an_export_that_fails_half_way_leaves_no_file(tmp_path: Path) -> None:
    """A storage whose export breaks after some records: the file it was writing never appears."""
    code = """
import sys, threadline, threadline.builtins.memory as memory
from threadline.cli import main

async def broken(self, tenant):
    yield threadline.SessionRecord()
    raise OSError("disk read error")

memory.MemoryStorage.export_records = broken
main(sys.argv[1:])
"""
    config, out = tmp_path / "tl.toml", tmp_path / "out" / "export.jsonl"
    config.write_text('[storage]\nbackend = "memory"\n')
    out.parent.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", code, "--config", str(config), "sessions", "export", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and "disk read error" in run.stderr and "Traceback" not in run.stderr
    assert list(out.parent.iterdir()) == []


# -- threadline prompt --------------------------------------------------------------------


def test_prompt_streams_the_reply_and_adds_what_is_piped_in(config: Path) -> None:
    assert ok(threadline("prompt", "Why is the sky blue?", config=config)) == "Why is the sky blue?\n"
    piped = threadline("prompt", "Summarise this", stdin="some notes\nand more\n", config=config)
    assert ok(piped) == "Summarise this\n\nsome notes\nand more\n"
    assert ok(threadline("prompt", stdin="only piped\n", config=config)) == "only piped\n"


def test_a_question_needs_no_command_and_a_typo_is_no_question(config: Path) -> None:
    assert ok(threadline("Why is the sky blue?", "-o", "max_tokens", "3", config=config)) == "Why is the\n"
    assert "No such command 'chta'" in user_error(threadline("chta", config=config))


def test_prompt_json_gives_the_session_the_model_and_the_usage(config: Path) -> None:
    reply = json.loads(ok(threadline("prompt", "--json", "-m", "echo-big", "hello there", config=config)))
    assert reply["text"] == "hello there" and (reply["provider"], reply["model"]) == ("echo", "echo-big")
    assert len(reply["session"]) == 32 and reply["usage"]["input_tokens"] == 2


def test_prompt_passes_options_on(config: Path) -> None:
    assert ok(threadline("prompt", "-o", "max_tokens", "2", "one two three", config=config)) == "one two\n"
    assert (
        ok(threadline("prompt", "--no-stream", "-o", "stop", "three", "one two three", config=config)) == "one two \n"
    )


def test_prompt_attaches_files_and_what_is_piped_in(config: Path, tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7 a report")
    assert ok(threadline("prompt", "-a", str(tmp_path / "report.pdf"), "Read it", config=config)) == (
        "Read it [application/pdf]\n"
    )
    piped = subprocess.run(
        [sys.executable, "-m", "threadline", "--config", str(config), "prompt", "-a", "-", "What is this?"],
        input=b"\x89PNG\r\n\x1a\n fake", capture_output=True, env=os.environ, cwd=home(), timeout=60, check=True,
    )  # fmt: skip
    assert piped.stdout.decode() == "What is this? [image/png]\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give the question as an argument, or pipe it in"),
        (("-o", "temperature", "hot", "x"), "temperature takes a number of 0 or more, not 'hot'"),
        (("-a", "/no/such/file", "x"), "cannot read /no/such/file"),
        (("-a", "-", "x"), "'-' attaches what is piped in, and nothing was"),
        (("-c", "x"), "there is no session to continue yet"),
        (("-c", "--session", "abc", "x"), "give --session ID or -c/--continue, not both"),
        (("--session", "abc", "x"), "no session 'abc'"),
        (("-p", "nosuch", "x"), "no provider plugin named 'nosuch'"),
        (("-o", "max_tokens", "0", "x"), "max_tokens takes a whole number of 1 or more, not '0'"),
        (("-o", "temperature", "nan", "x"), "temperature takes a number of 0 or more, not 'nan'"),
        (("-o", "stop", "", "x"), "stop takes the text to stop at, not nothing"),
        (("-o", "model", "gpt-x", "x"), "model is what -m sets: leave -o model out"),
        (("-a", "song.mp3", "x"), "song.mp3 is audio/mpeg: attach an image, a PDF or a text file"),
        (("--no-log", "-c", "x"), "--no-log keeps nothing, so there is no session to go on in"),
    ],
)
def test_prompt_says_what_is_wrong(config: Path, args: tuple[str, ...], says: str) -> None:
    (home() / "song.mp3").write_bytes(b"ID3 a song")
    assert says in user_error(threadline("prompt", *args, config=config))
