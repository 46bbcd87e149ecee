"""The commands a heavy user expects (issue 18), run as a user runs them: options before the
question, `keys`, `models`, `models default`, `completion`, `install`'s refusals, and an
example in every command's --help."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from test_cli import ok, threadline, user_error

from threadline.cli import cli


def keys_file() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "threadline" / "keys.json"


# -- options before the question ----------------------------------------------------------


def test_prompts_options_before_the_question_go_to_prompt(config: Path) -> None:
    reply = json.loads(ok(threadline("-m", "echo-big", "--json", "hello", config=config)))
    assert (reply["model"], reply["text"]) == ("echo-big", "hello")
    assert ok(threadline("-o", "max_tokens", "1", "one two", config=config)) == "one\n"
    assert "there is no session to continue yet" in user_error(threadline("-c", "more please", config=config))


def test_the_groups_own_options_stay_its_own(config: Path) -> None:
    assert ok(threadline("--version")).startswith("threadline, version ")
    assert "Commands:" in ok(threadline("--config", str(config), "--help"))
    assert "No such option '--nope'" in user_error(threadline("--nope", "x", config=config))


# -- keys -----------------------------------------------------------------------------------


def test_a_key_is_stored_for_the_user_alone_and_listed_by_name_only() -> None:
    assert ok(threadline("keys", "path")).strip() == str(keys_file())
    result = threadline("keys", "set", "openai", stdin="sk-secret-1\n")
    assert "stored the openai key in" in ok(result) + result.stderr
    assert stat.S_IMODE(keys_file().stat().st_mode) == 0o600
    ok(threadline("keys", "set", "anthropic", stdin="sk-ant-2"))
    listed = threadline("keys", "list")
    assert ok(listed) == "anthropic\nopenai\n" and "sk-" not in listed.stdout + listed.stderr
    assert ok(threadline("keys", "get", "openai")) == "sk-secret-1\n"
    ok(threadline("keys", "remove", "anthropic"))
    assert ok(threadline("keys", "list")) == "openai\n"


def test_a_key_file_others_may_read_is_refused_and_setting_a_key_repairs_it() -> None:
    ok(threadline("keys", "set", "openai", stdin="sk-1"))
    keys_file().chmod(0o644)
    error = user_error(threadline("keys", "list"))
    assert "others may read or change this key file (mode 0644), so it is not used" in error
    assert f"chmod 600 {keys_file()}" in error
    result = threadline("keys", "set", "gemini", stdin="g-2")
    assert "it is now yours alone (mode 0600)" in ok(result) + result.stderr
    assert stat.S_IMODE(keys_file().stat().st_mode) == 0o600
    assert ok(threadline("keys", "list")) == "gemini\nopenai\n"


def test_a_key_on_the_command_line_is_taken_with_a_warning() -> None:
    result = threadline("keys", "set", "openai", "--value", "sk-argv")
    assert result.returncode == 0 and "warning: a key given with --value is kept in shell history" in result.stderr
    assert ok(threadline("keys", "get", "openai")) == "sk-argv\n"


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("keys", "set", "openai"), "", "no key given: type it at the prompt, or pipe it in"),
        (("keys", "set", "openai"), "two words", "a key is one word"),
        (("keys", "set", "Open AI"), "k", "'Open AI' is not a key name"),
        (("keys", "get", "openai"), "", "no key named 'openai' in "),
        (("keys", "remove", "openai"), "", "no key named 'openai' in "),
    ],
)
def test_keys_say_what_is_wrong(args: tuple[str, ...], stdin: str, says: str) -> None:
    assert says in user_error(threadline(*args, stdin=stdin))


def test_a_key_file_that_is_not_one_is_named() -> None:
    keys_file().parent.mkdir(parents=True)
    keys_file().write_text("not json")
    keys_file().chmod(0o600)
    assert f"{keys_file()}: not a key file" in user_error(threadline("keys", "list"))


def test_keys_set_at_once_by_many_processes_are_all_kept() -> None:
    names = [f"provider{index}" for index in range(16)]
    command = [sys.executable, "-m", "threadline", "keys", "set"]
    running = [
        subprocess.Popen([*command, name, "--value", f"k-{name}"], stderr=subprocess.PIPE, env=os.environ)
        for name in names
    ]
    for process in running:
        _, error = process.communicate(timeout=120)
        assert process.returncode == 0, error
    assert json.loads(keys_file().read_text()) == {name: f"k-{name}" for name in names}
    assert stat.S_IMODE(keys_file().stat().st_mode) == 0o600


def test_keys_written_by_threads_at_once_are_all_kept() -> None:
    from threadline.keys import read_keys, write_key

    names = [f"t{index}" for index in range(12)]
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda name: write_key(name, f"k-{name}"), names))
    assert read_keys() == {name: f"k-{name}" for name in names}


def test_a_partial_file_left_by_a_killed_process_is_not_in_the_way(tmp_path: Path) -> None:
    from threadline.config_edit import set_defaults
    from threadline.keys import read_keys, write_key

    keys_file().parent.mkdir(parents=True)
    for folder, name in ((keys_file().parent, "keys.json"), (tmp_path, "threadline.toml")):
        for stale in (f".{name}.{os.getpid()}.partial", f".{name}.1.partial", f".{name}.0123456789ab.tmp"):
            (folder / stale).write_text("left behind")
    write_key("openai", "sk-1")  # a process of the same PID as the killed one
    assert read_keys() == {"openai": "sk-1"}
    ok(threadline("keys", "set", "gemini", stdin="g-2"))
    assert ok(threadline("keys", "list")) == "gemini\nopenai\n"
    (tmp_path / "threadline.toml").write_text('[storage]\nbackend = "memory"\n')
    set_defaults(tmp_path / "threadline.toml", {"provider": "echo"})
    assert 'provider = "echo"' in (tmp_path / "threadline.toml").read_text()


# -- models ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("only_builtins")
def test_models_lists_each_providers_models_with_the_default_marked(config: Path) -> None:
    assert ok(threadline("models", config=config)) == "echo/echo-1  (default, echo's default)\n"
    (line,) = map(json.loads, ok(threadline("models", "--json", "--provider", "echo", config=config)).splitlines())
    assert line == {
        "provider": "echo",
        "model": "echo-1",
        "default": True,
        "provider_default": True,
        "listed_by": "plugin",
    }
    assert "Invalid value for '--provider': no provider plugin named 'nope'; installed: echo" in user_error(
        threadline("models", "--provider", "nope", config=config)
    )


@pytest.mark.usefixtures("only_builtins")
def test_models_default_is_written_to_the_config_keeping_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    written = '# my notes\n[defaults]\ntenant = "acme"  # ours\n\n[storage]\nbackend = "memory"\n'
    path.write_text(written)
    assert ok(threadline("models", "default", config=path)) == "echo/echo-1\n"
    ok(threadline("models", "default", "echo/echo-big", config=path))
    assert path.read_text() == written.replace("[defaults]\n", '[defaults]\nprovider = "echo"\nmodel = "echo-big"\n')
    assert ok(threadline("models", "default", config=path)) == "echo/echo-big\n"
    assert "echo/echo-big  (default)" in ok(threadline("models", config=path))
    ok(threadline("models", "default", "echo", config=path))  # the provider's own default model
    assert 'provider = "echo"\n' in path.read_text() and "model =" not in path.read_text()
    ok(threadline("models", "default", "--unset", config=path))
    assert path.read_text() == written


@pytest.mark.usefixtures("only_builtins")
def test_models_default_leaves_a_read_only_config_as_it_is(tmp_path: Path) -> None:
    config = tmp_path / "threadline.toml"
    text = '# mine\n[defaults]\nprovider = "echo"\n[storage]\nbackend = "memory"\n'
    config.write_text(text)
    config.chmod(0o444)
    assert f"{config} is read-only (mode 0444)" in user_error(
        threadline("models", "default", "echo/echo-2", config=config)
    )
    assert config.read_text() == text and stat.S_IMODE(config.stat().st_mode) == 0o444


def test_models_default_keeps_crlf_line_endings_and_the_comment_of_the_line_it_sets(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    written = b'# mine\r\n[defaults]\r\nprovider = "echo"  # the one we pay for\r\n[storage]\r\nbackend = "memory"\r\n'
    path.write_bytes(written)
    ok(threadline("models", "default", "echo/echo-big", config=path))
    assert path.read_bytes() == written.replace(b"[defaults]\r\n", b'[defaults]\r\nmodel = "echo-big"\r\n')
    ok(threadline("models", "default", "echo/echo-2", config=path))
    assert b'model = "echo-2"\r\nprovider = "echo"  # the one we pay for\r\n' in path.read_bytes()
    ok(threadline("models", "default", "--unset", config=path))
    assert path.read_bytes() == b'# mine\r\n[defaults]\r\n[storage]\r\nbackend = "memory"\r\n'


@pytest.mark.usefixtures("only_builtins")
def test_models_default_takes_an_alias_and_writes_the_model_it_stands_for(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text('[storage]\nbackend = "memory"\n')
    ok(threadline("aliases", "set", "fast", "echo-fast", "--provider", "echo", config=path))
    result = threadline("models", "default", "fast", config=path)
    assert "default: echo/echo-fast (what alias fast stands for now)" in ok(result) + result.stderr
    assert path.read_text().endswith('[defaults]\nprovider = "echo"\nmodel = "echo-fast"\n')
    ok(threadline("aliases", "set", "plain", "echo-1", config=path))  # no provider: the one that knows echo-1
    ok(threadline("models", "default", "plain", config=path))
    assert path.read_text().endswith('[defaults]\nprovider = "echo"\nmodel = "echo-1"\n')
    ok(threadline("models", "default", "echo/fast", config=path))
    assert path.read_text().endswith('[defaults]\nprovider = "echo"\nmodel = "echo-fast"\n')


@pytest.mark.usefixtures("only_builtins")
def test_an_alias_in_defaults_model_is_the_model_it_stands_for(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text('[defaults]\nprovider = "echo"\nmodel = "fast"\n[storage]\nbackend = "memory"\n')
    ok(threadline("aliases", "set", "fast", "echo-fast", "--provider", "echo", config=path))
    reply = json.loads(ok(threadline("prompt", "--json", "hi", config=path)))
    assert (reply["provider"], reply["model"]) == ("echo", "echo-fast")
    assert ok(threadline("models", "default", config=path)) == "echo/echo-fast\n"


@pytest.mark.usefixtures("only_builtins")
def test_the_users_config_gets_a_defaults_table_when_it_has_none(tmp_path: Path) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text('[storage]\nbackend = "memory"')
    ok(threadline("models", "default", "echo/e2", config=path))
    assert path.read_text() == '[storage]\nbackend = "memory"\n\n[defaults]\nprovider = "echo"\nmodel = "e2"\n'


@pytest.mark.parametrize(
    ("table", "args", "says"),
    [
        ('defaults = { tenant = "acme" }\n', ("echo/e2",), "[defaults] is written in a way this command does not edit"),
        ("", ("gpt-9",), "no installed provider knows of a model 'gpt-9'"),
        ("", ("echo/",), "'echo/' names no model after the '/'"),
        ("", ("echo", "--unset"), "give NAME to set the default, or --unset to take it out, not both"),
    ],
)
@pytest.mark.usefixtures("only_builtins")
def test_models_default_says_what_is_wrong(tmp_path: Path, table: str, args: tuple[str, ...], says: str) -> None:
    path = tmp_path / "threadline.toml"
    path.write_text(table)
    assert says in user_error(threadline("models", "default", *args, config=path))
    assert path.read_text() == table


# -- completion, install --------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_shells_script(shell: str) -> None:
    assert f"_THREADLINE_COMPLETE={shell}_complete" in ok(threadline("completion", shell)).replace(
        f'"{shell}_complete"', f"{shell}_complete"
    )


def test_commands_and_options_complete() -> None:
    env = {**os.environ, "_THREADLINE_COMPLETE": "bash_complete", "COMP_WORDS": "threadline mod", "COMP_CWORD": "1"}
    import subprocess

    result = subprocess.run([sys.executable, "-m", "threadline"], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.splitlines() == ["plain,models"], result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("install", "requests"),
            "'requests' is not a threadline plugin: plugins are the distributions named threadline-*",
        ),
        (("install", "git+https://example.org/x.git"), "cannot tell which distribution"),
        (("uninstall", "threadline"), "threadline cannot uninstall itself"),
        (("uninstall", "numpy"), "'numpy' is not a threadline plugin"),
    ],
)
def test_install_refuses_what_is_no_threadline_plugin(args: tuple[str, ...], says: str) -> None:
    result = threadline(*args)
    assert result.returncode == 2 and says in user_error(result)


# -- --help ---------------------------------------------------------------------------------


def command_paths(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, command in group.commands.items():
        paths += command_paths(command, (*path, name)) if isinstance(command, click.Group) else [(*path, name)]
    return paths


def test_every_commands_help_has_examples() -> None:
    paths = command_paths()
    with ThreadPoolExecutor(4) as pool:
        helps = dict(zip(paths, pool.map(lambda path: threadline(*path, "--help"), paths), strict=True))
    missing = [" ".join(path) or "(threadline)" for path, result in helps.items() if "Examples:" not in ok(result)]
    assert missing == []
