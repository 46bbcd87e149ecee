"""Which config file the `threadline` command uses, and that it says so; and that a provider
table's `${VAR}` is resolved only when that provider is used."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

import threadline
from threadline import AuthenticationError, Config, ConfigError, SessionManager
from threadline.builtins.memory import MemoryStorage
from threadline.plugin import ProviderConfig

UNSET = "TL_TEST_NEVER_SET_VARIABLE"


def threadline_in(cwd: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """`threadline ARGS` run from the folder ``cwd``, as a user there runs it."""
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=60,
    )


def user_config() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "threadline" / "threadline.toml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a threadline.toml, as every Python example expects: its tenant tells
    which config a command read."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "threadline.toml").write_text(
        '[defaults]\nprovider = "echo"\ntenant = "from-cwd"\n[storage]\nbackend = "memory"\n'
    )
    return folder


def write(path: Path, tenant: str) -> Path:
    path.write_text(f'[defaults]\nprovider = "echo"\ntenant = "{tenant}"\n[storage]\nbackend = "memory"\n')
    return path


def tenant_used(result: subprocess.CompletedProcess[str]) -> str:
    """The tenant a `sessions show` of an unknown id looked in."""
    assert result.returncode == 1, result.stderr
    return result.stderr.split("in tenant '")[1].split("'")[0]


# -- the lookup ---------------------------------------------------------------------------


def test_threadline_toml_in_the_working_directory_is_used_and_named(project: Path) -> None:
    config = project / "threadline.toml"
    assert tenant_used(threadline_in(project, "sessions", "show", "x")) == "from-cwd"

    path = threadline_in(project, "config", "path")
    assert path.stdout == f"{config}\n" and "threadline.toml in the working directory" in path.stderr
    check = threadline_in(project, "config", "check")
    assert check.returncode == 0 and check.stdout.startswith(f"ok: {config} (threadline.toml in the working directory)")
    chat = threadline_in(project, "chat", stdin="hi\n")
    assert chat.returncode == 0 and chat.stdout == "hi\n"
    assert chat.stderr.splitlines()[0] == f"config: {config} (threadline.toml in the working directory)"
    assert not user_config().exists()  # nothing was made in the user's config dir


@pytest.mark.parametrize("how", ["option", "variable"])
def test_a_config_that_is_a_folder_or_unreadable_is_a_one_line_error(project: Path, tmp_path: Path, how: str) -> None:
    unreadable = tmp_path / "locked.toml"
    unreadable.write_text("[defaults]\n")
    unreadable.chmod(0)
    for path, says in [(project, "a folder, not a config file"), (unreadable, "cannot read it")]:
        given = (["--config", str(path)], {}) if how == "option" else ([], {"THREADLINE_CONFIG": str(path)})
        result = threadline_in(tmp_path, *given[0], "sessions", "list", **given[1])
        if says == "cannot read it" and os.access(unreadable, os.R_OK):
            continue  # root reads any file
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"{path}: {says}" in result.stderr


def test_a_config_in_a_subfolder_or_elsewhere_is_not_looked_for(project: Path) -> None:
    below = project / "sub"
    below.mkdir()
    assert threadline_in(below, "config", "path").stdout == f"{user_config()}\n"
    assert "(the user config file" in threadline_in(below, "config", "path").stderr


def test_the_option_and_the_environment_variable_come_before_the_working_directory(
    project: Path, tmp_path: Path
) -> None:
    chosen = write(tmp_path / "chosen.toml", "from-option")
    by_env = write(tmp_path / "env.toml", "from-env")
    assert tenant_used(threadline_in(project, "--config", str(chosen), "sessions", "show", "x")) == "from-option"
    shown = threadline_in(project, "sessions", "show", "x", THREADLINE_CONFIG=str(by_env))
    assert tenant_used(shown) == "from-env"
    path = threadline_in(project, "config", "path", THREADLINE_CONFIG=str(by_env))
    assert path.stdout == f"{by_env}\n" and "given by THREADLINE_CONFIG" in path.stderr
    # a relative --config is the file in the working directory, shown (and suggested) absolute
    path = threadline_in(tmp_path, "--config", "chosen.toml", "config", "path")
    assert path.stdout == f"{chosen}\n" and "given by --config" in path.stderr


def test_with_no_config_found_the_user_one_is_made_and_named(tmp_path: Path) -> None:
    chat = threadline_in(tmp_path, "chat", stdin="hi\n")
    assert chat.returncode == 0, chat.stderr
    assert f"config: {user_config()} (the user config file)" in chat.stderr.splitlines()
    assert user_config().exists()


def test_a_suggested_command_carries_the_working_directory_config(project: Path, tmp_path: Path) -> None:
    """Printed with --config and an absolute path, it means the same file from any folder."""
    error = threadline_in(project, "sessions", "show", "x").stderr
    command = shlex.split(error.split("`")[1])
    assert command[-4:] == ["--config", str(project / "threadline.toml"), "sessions", "list"]
    elsewhere = subprocess.run([*command[:-2], "sessions", "show", "x"], capture_output=True, text=True, cwd=tmp_path)
    assert tenant_used(elsewhere) == "from-cwd"


# -- ${VAR} in a provider table: resolved when the provider is used ---------------------------


@pytest.fixture
def unset_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose echo table names an environment variable that is not set."""
    monkeypatch.delenv(UNSET, raising=False)
    config = write(tmp_path / "unset.toml", "default")
    config.write_text(config.read_text() + f'[providers.echo]\ndefault_model = "${{{UNSET}}}"\n')
    return config


def test_commands_that_call_no_provider_work_with_its_variable_unset(unset_variable: Path, tmp_path: Path) -> None:
    listed = threadline_in(tmp_path, "--config", str(unset_variable), "sessions", "list")
    assert listed.returncode == 0 and "no sessions" in listed.stderr, listed.stderr
    out = tmp_path / "out.jsonl"
    exported = threadline_in(tmp_path, "--config", str(unset_variable), "sessions", "export", "-o", str(out))
    assert exported.returncode == 0 and "exported 0 records" in exported.stderr, exported.stderr


def test_config_check_and_the_chat_report_the_unset_variable(unset_variable: Path, tmp_path: Path) -> None:
    message = f"{unset_variable}: providers.echo.default_model: environment variable {UNSET} is not set"
    check = threadline_in(tmp_path, "--config", str(unset_variable), "config", "check")
    assert check.returncode == 1 and message in check.stderr and "Traceback" not in check.stderr
    chat = threadline_in(tmp_path, "--config", str(unset_variable), "chat", stdin="hi\n")
    assert chat.returncode == 1 and message in chat.stderr and chat.stdout == ""
    chat = threadline_in(tmp_path, "--config", str(unset_variable), "chat", stdin="hi\n", **{UNSET: "echo-set"})
    assert chat.returncode == 0 and chat.stdout == "hi\n", chat.stderr


@pytest.mark.usefixtures("only_builtins")
async def test_a_manager_resolves_a_provider_table_at_the_providers_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    config = Config.from_dict({"providers": {"echo": {"default_model": f"${{{UNSET}}}"}}}, file="tl.toml")
    async with SessionManager(config, storage=MemoryStorage()) as manager:
        assert not (await manager.list_sessions()).items
        session = await manager.create_session(provider="echo")
        with pytest.raises(ConfigError, match=f"tl.toml: providers.echo.default_model: .*{UNSET} is not set"):
            await session.send("hi")
        monkeypatch.setenv(UNSET, "echo-from-env")
        reply = await session.send("hi")
        assert reply.text == "hi" and reply.model == "echo-from-env"


async def test_an_unset_variable_in_a_list_waits_for_the_first_use_and_names_its_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    replies = [{"text": "fine"}, {"text": f"${{{UNSET}}}"}]
    config = Config.from_dict({"providers": {"echo": {"replies": replies}}}, file="tl.toml")
    async with SessionManager(config, storage=MemoryStorage()) as manager:
        session = await manager.create_session(provider="echo")
        with pytest.raises(ConfigError) as caught:
            await session.send("hi")
    assert str(caught.value) == (
        f"tl.toml: providers.echo.replies[1].text: environment variable {UNSET} is not set "
        f"(set it, or write ${{{UNSET}:-default}} for a fallback)"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"chunk": f"${{{UNSET}}}"}, f"^tl.toml: providers.echo.chunk: environment variable {UNSET} is not set"),
        (
            {"chunk_size": 0, "default_model": f"${{{UNSET}}}"},  # reported first, as before
            f"^tl.toml: providers.echo.default_model: environment variable {UNSET} is not set",
        ),
        ({"chunk_size": "big"}, "^tl.toml: providers.echo.chunk_size: expected int"),
    ],
)
@pytest.mark.usefixtures("only_builtins")
def test_a_table_with_another_mistake_is_still_refused_at_once(
    table: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    with pytest.raises(ConfigError, match=message):
        SessionManager(Config.from_dict({"providers": {"echo": table}}, file="tl.toml"))


@attrs.frozen(kw_only=True)
class KeyedConfig(ProviderConfig):
    default_model: str = "keyed-1"


@attrs.frozen(kw_only=True)
class EnvKeyedConfig(KeyedConfig):
    key_variables: ClassVar[tuple[str, ...]] = ("KEYED_API_KEY", "KEYED_TOKEN")


class Keyed:
    """A provider plugin whose table holds its API key, as `api_key = "${OPENAI_API_KEY}"`."""

    def __init__(self, config: type[KeyedConfig] = KeyedConfig) -> None:
        self.config = config

    @threadline.hookimpl
    def threadline_register_providers(self, register: Any) -> None:
        register("keyed", lambda config: None, config=self.config)


@pytest.mark.usefixtures("only_builtins")
def test_a_provider_whose_key_variable_is_unset_is_not_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    config = Config.from_dict({"providers": {"keyed": {"api_key": f"${{{UNSET}}}"}}}, file="tl.toml")
    manager = SessionManager(config, plugins=[Keyed()])
    assert manager.default_provider == "echo"
    with pytest.raises(ConfigError, match=f"providers.keyed.api_key: environment variable {UNSET} is not set"):
        manager.provider("keyed")
    monkeypatch.setenv(UNSET, "sk-test")
    assert SessionManager(config, plugins=[Keyed()]).default_provider == "keyed"


@pytest.mark.usefixtures("only_builtins")
def test_a_default_provider_without_a_key_fails_the_check_chat_and_config_check_run() -> None:
    config = Config.from_dict({"defaults": {"provider": "keyed"}}, file="tl.toml")
    manager = SessionManager(config, plugins=[Keyed()])
    refused = r"^keyed: no API key: set api_key in \[providers.keyed\] or run `threadline keys set keyed`$"
    with pytest.raises(AuthenticationError, match=refused):
        manager.check()
    with pytest.raises(AuthenticationError):
        manager.check_new_session()
    manager.check_new_session(provider="echo")  # a session on another provider is fine
    own_server = {**config.providers, "keyed": {"base_url": "http://127.0.0.1:9/v1"}}
    SessionManager(attrs.evolve(config, providers=own_server), plugins=[Keyed()]).check()


@pytest.mark.usefixtures("only_builtins")
def test_a_missing_key_names_the_environment_variables_that_would_hold_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EnvKeyedConfig.key_variables:
        monkeypatch.delenv(name, raising=False)
    manager = SessionManager(Config.from_dict({"defaults": {"provider": "keyed"}}), plugins=[Keyed(EnvKeyedConfig)])
    with pytest.raises(AuthenticationError) as caught:
        manager.check()
    assert str(caught.value) == (
        "keyed: no API key: set api_key in [providers.keyed], the KEYED_API_KEY or KEYED_TOKEN environment variable "
        "or run `threadline keys set keyed`"
    )
    monkeypatch.setenv("KEYED_TOKEN", "t")
    manager.check()


@pytest.mark.usefixtures("only_builtins")
def test_the_check_finds_a_template_tool_nobody_registered() -> None:
    templates = {"plain": {}, "support": {"tools": ["lookup"]}}
    manager = SessionManager(Config.from_dict({"templates": templates}, file="tl.toml"))
    manager.check_new_session(template="plain")
    with pytest.raises(ConfigError) as caught:
        manager.check()
    assert (caught.value.file, caught.value.key) == ("tl.toml", "templates.support.tools")
    assert str(caught.value) == "tl.toml: templates.support.tools: no tool named 'lookup'; registered tools: none"


@pytest.mark.usefixtures("only_builtins")
def test_with_every_provider_disabled_an_unknown_one_says_none_is_installed() -> None:
    config = Config.from_dict({"defaults": {"provider": "nope"}, "plugins": {"disable": ["echo"]}}, file="tl.toml")
    with pytest.raises(ConfigError) as caught:
        SessionManager(config)
    assert str(caught.value) == "tl.toml: defaults.provider: no provider plugin named 'nope'; installed: none"


@pytest.mark.usefixtures("only_builtins")
def test_a_storage_setting_its_plugin_does_not_take_names_the_storage_table() -> None:
    config = Config.from_dict({"storage": {"backend": "memory", "shelf": "top"}}, file="tl.toml")
    with pytest.raises(ConfigError) as caught:
        SessionManager(config)
    assert (caught.value.file, caught.value.key) == ("tl.toml", "storage")
    assert "extra fields found (shelf)" in str(caught.value)
