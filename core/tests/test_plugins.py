"""Plugin discovery through entry points, as an installed plugin would be found."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from threadline import Config, ConfigError, PluginError, SessionManager, get_plugin_manager


def install(site: Path, name: str, code: str, *, entry_point: str | None = None) -> None:
    """Write a module and a .dist-info with a `threadline` entry point, as pip would."""
    module = f"tl_test_{name}"
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"threadline_test_{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: threadline-test-{name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[threadline]\n{entry_point or name} = {module}\n")


PROVIDER = """
import threadline
from threadline.builtins.echo import EchoProvider

@threadline.hookimpl
def threadline_register_providers(register):
    register("{provider}", EchoProvider)
"""


def test_builtins_are_found_through_entry_points() -> None:
    infos = {info.name: info for info in get_plugin_manager().infos}
    assert infos["echo"].distribution == "threadline" and infos["echo"].status == "loaded"
    assert infos["memory"].hooks == ("threadline_register_storage",)


def test_an_installed_plugin_is_loaded_and_its_provider_used(site: Path) -> None:
    install(site, "parrot", PROVIDER.format(provider="parrot"))
    manager = SessionManager()
    assert "parrot" in manager.registry.providers
    info = next(i for i in manager.plugin_manager.infos if i.name == "parrot")
    assert (info.distribution, info.version, info.status) == ("threadline-test-parrot", "1.2.3", "loaded")


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(site: Path) -> None:
    install(site, "broken", "import does_not_exist_anywhere\n")
    install(site, "parrot", PROVIDER.format(provider="parrot"))
    pm = get_plugin_manager()
    broken = next(i for i in pm.infos if i.name == "broken")
    assert broken.status == "failed" and "does_not_exist_anywhere" in (broken.error or "")
    assert {i.name for i in pm.infos if i.status == "loaded"} >= {"echo", "memory", "parrot"}


def test_a_misspelled_hook_fails_that_plugin_with_the_right_names(site: Path) -> None:
    install(site, "typo", """
        import threadline

        @threadline.hookimpl
        def threadline_register_provider(register):
            pass
    """)  # fmt: skip
    typo = next(i for i in get_plugin_manager().infos if i.name == "typo")
    assert typo.status == "failed"
    assert "unknown hook 'threadline_register_provider'" in (typo.error or "")
    assert "threadline_register_providers" in (typo.error or "")


def test_two_plugins_registering_one_name_is_an_error_naming_both(site: Path) -> None:
    install(site, "first", PROVIDER.format(provider="dup"))
    install(site, "second", PROVIDER.format(provider="dup"))
    with pytest.raises(PluginError, match=r"'dup' is registered by two plugins, '(first|second)' and '(second|first)'"):
        SessionManager()


def test_config_can_disable_a_plugin_even_a_builtin(site: Path) -> None:
    install(site, "first", PROVIDER.format(provider="dup"))
    install(site, "second", PROVIDER.format(provider="dup"))
    manager = SessionManager(Config.from_dict({"plugins": {"disable": ["second"]}}))
    assert manager.registry.providers["dup"].plugin == "first"
    pm = get_plugin_manager(disable=["echo"])
    assert next(i for i in pm.infos if i.name == "echo").status == "disabled"
    with pytest.raises(ConfigError, match="no provider plugin named 'echo'"):
        SessionManager(Config.from_dict({"plugins": {"disable": ["echo", "second"]}}))


def test_threadline_plugins_env_is_an_allowlist(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, "parrot", PROVIDER.format(provider="parrot"))
    monkeypatch.setenv("THREADLINE_PLUGINS", "memory, echo")
    statuses = {i.name: i.status for i in get_plugin_manager().infos}
    assert {name: statuses[name] for name in ("echo", "memory", "parrot")} == {
        "echo": "loaded",
        "memory": "loaded",
        "parrot": "disabled",
    }
    assert set(statuses.values()) == {"loaded", "disabled"}


@pytest.mark.usefixtures("only_builtins")
def test_tracing_prints_each_hook_call(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("THREADLINE_TRACE_PLUGINS", "1")
    SessionManager()
    err = capsys.readouterr().err
    assert "threadline hook threadline_register_providers -> echo" in err
    assert "threadline hook threadline_register_storage -> memory" in err


def test_two_plugin_managers_are_independent() -> None:
    class Extra:
        import threadline

        @threadline.hookimpl
        def threadline_register_providers(self, register):  # type: ignore[no-untyped-def]
            from threadline.builtins.echo import EchoProvider

            register("extra", EchoProvider)

    with_extra = SessionManager(plugins=[Extra()])
    plain = SessionManager()
    assert "extra" in with_extra.registry.providers and "extra" not in plain.registry.providers


def test_a_plugin_adds_a_cli_command(site: Path) -> None:
    install(site, "hello", """
        import click
        import threadline

        @threadline.hookimpl
        def threadline_register_commands(cli):
            @cli.command()
            @click.argument("name")
            def hello(name):
                "Say hello."
                click.echo(f"hello, {name}")
    """)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    run = subprocess.run([sys.executable, "-m", "threadline", "hello", "ann"], capture_output=True, text=True, env=env)
    assert (run.returncode, run.stdout) == (0, "hello, ann\n"), run.stderr
    listed = subprocess.run([sys.executable, "-m", "threadline", "--help"], capture_output=True, text=True, env=env)
    assert "Say hello." in listed.stdout


def test_a_broken_plugin_does_not_take_the_cli_down(site: Path) -> None:
    install(site, "broken", "raise RuntimeError('plugin exploded on import')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    run = subprocess.run([sys.executable, "-m", "threadline", "plugins"], capture_output=True, text=True, env=env)
    assert run.returncode == 0
    assert "broken" in run.stdout and "RuntimeError: plugin exploded on import" in run.stdout
    assert "echo" in run.stdout
