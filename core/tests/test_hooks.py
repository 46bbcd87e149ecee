"""Hooks are called through pluggy: its order, wrappers and argument subsets hold for every
hook, one plugin's failure stays its own, and every hookspec is called (each has a test here
that fails when it is not)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_plugins import PROVIDER, install

import threadline
from threadline import Config, ConfigError, PluginError, SessionManager, get_plugin_manager, hookimpl, hookspecs
from threadline.builtins.echo import EchoProvider, Reply
from threadline.builtins.memory import MemoryStorage
from threadline.cli import main

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("threadline_"))


class Calls:
    """Every hook, implemented to record that it was called."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def _saw(self, name: str) -> None:
        self.names.append(name)

    @hookimpl
    def threadline_register_providers(self, register: Any) -> None:
        self._saw("threadline_register_providers")

    @hookimpl
    def threadline_register_storage(self, register: Any) -> None:
        self._saw("threadline_register_storage")

    @hookimpl
    def threadline_register_middleware(self, register: Any) -> None:
        self._saw("threadline_register_middleware")

    @hookimpl
    def threadline_register_tools(self, register: Any) -> None:
        self._saw("threadline_register_tools")

    @hookimpl
    def threadline_register_settings(self, register: Any) -> None:
        self._saw("threadline_register_settings")

    @hookimpl
    def threadline_register_commands(self, cli: Any) -> None:
        self._saw("threadline_register_commands")

    @hookimpl
    def threadline_startup(self) -> None:
        self._saw("threadline_startup")

    @hookimpl
    def threadline_shutdown(self) -> None:
        self._saw("threadline_shutdown")

    @hookimpl
    async def threadline_session_created(self) -> None:
        self._saw("threadline_session_created")

    @hookimpl
    def threadline_session_archived(self) -> None:
        self._saw("threadline_session_archived")

    @hookimpl
    async def threadline_session_deleted(self) -> None:
        self._saw("threadline_session_deleted")

    @hookimpl
    def threadline_message_appended(self) -> None:
        self._saw("threadline_message_appended")

    @hookimpl
    def threadline_provider_error(self) -> None:
        self._saw("threadline_provider_error")

    @hookimpl
    async def threadline_history_edited(self) -> None:
        self._saw("threadline_history_edited")


@pytest.mark.parametrize("hook", HOOKS)
async def test_every_hook_is_called(hook: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls()
    await _exercise(hook, [calls], monkeypatch)
    assert hook in calls.names


def test_every_hook_has_a_test_above() -> None:
    implemented = {name for name in vars(Calls) if name.startswith("threadline_")}
    assert implemented == set(HOOKS)


# -- pluggy's order and wrappers ----------------------------------------------------


def _on(hook: str, name: str, log: list[str], **opts: bool) -> object:
    """A plugin implementing ``hook`` alone, logging ``name`` when called (a wrapper logs
    before and after the implementations it wraps)."""
    if opts.get("wrapper"):

        def implementation() -> Generator[None, Any, Any]:
            log.append(f"{name} before")
            result = yield
            log.append(f"{name} after")
            return result
    else:

        def implementation() -> None:
            log.append(name)

    return type(name, (), {hook: staticmethod(hookimpl(**opts)(implementation))})()


async def _exercise(hook: str, plugins: list[object], monkeypatch: pytest.MonkeyPatch) -> None:
    """Call ``hook``: through the command line for commands, else through a conversation."""
    if hook == "threadline_register_commands":
        monkeypatch.setattr(
            threadline.cli, "get_plugin_manager", lambda **kw: get_plugin_manager(plugins=plugins, **kw)
        )
        with pytest.raises(SystemExit):
            main(["--help"])
        return
    echo = EchoProvider()
    async with SessionManager(storage=MemoryStorage(), providers={"echo": echo}, plugins=plugins) as tl:
        session = await tl.create_session()
        await session.send("hello")
        echo.script([Reply(error="unavailable")])
        with pytest.raises(threadline.ProviderUnavailable):
            await session.send("again")
        await session.undo()
        await session.archive()
        await session.delete()


@pytest.mark.parametrize("hook", HOOKS)
async def test_every_hook_runs_in_pluggys_order_inside_its_wrappers(hook: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    plugins = [  # registered in an order that neither registration order nor its reverse gives back
        _on(hook, "first", log, tryfirst=True),
        _on(hook, "wrapper", log, wrapper=True),
        _on(hook, "last", log, trylast=True),
        _on(hook, "plain", log),
    ]
    await _exercise(hook, plugins, monkeypatch)
    assert log[:5] == ["wrapper before", "first", "plain", "last", "wrapper after"]


def _ordered_plugins(order: list[str]) -> list[object]:
    """Three plugins on the same async and sync lifecycle hooks: plain, tryfirst, trylast."""

    def plugin(name: str, **opts: bool) -> object:
        class Plugin:
            @hookimpl(**opts)
            async def threadline_session_created(self) -> None:
                order.append(f"{name} awaited")

            @hookimpl(**opts)
            def threadline_message_appended(self) -> None:
                order.append(name)

        Plugin.__name__ = name
        return Plugin()

    # registered in an order that neither registration order nor its reverse would give back
    return [plugin("first", tryfirst=True), plugin("last", trylast=True), plugin("plain")]


async def test_lifecycle_hooks_run_in_pluggys_order_sync_and_async() -> None:
    order: list[str] = []
    plugins = _ordered_plugins(order)
    async with SessionManager(storage=MemoryStorage(), plugins=plugins) as tl:
        session = await tl.create_session()
        assert order == ["first awaited", "plain awaited", "last awaited"]
        order.clear()
        await session.send("hi")
    assert order == ["first", "plain", "last"] * 2


async def test_a_wrapper_runs_around_the_other_implementations() -> None:
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def threadline_session_created(self, session: Any) -> Generator[None, list[Any], list[Any]]:
            seen.append("before")
            results = yield
            seen.append(f"after {len(results)}")
            return results

        @hookimpl(wrapper=True)
        def threadline_register_providers(self, register: Any) -> Generator[None, None, None]:
            yield
            register("wrapped", EchoProvider)

    class Plain:
        @hookimpl
        async def threadline_session_created(self) -> None:
            seen.append("plain")

    async with SessionManager(storage=MemoryStorage(), plugins=[Plain(), Wrapper()]) as tl:
        await tl.create_session()
        assert "wrapped" in tl.registry.providers
    assert seen == ["before", "after 1", "plain"]  # pluggy calls, then the kernel awaits


async def test_an_implementation_gets_only_the_arguments_it_names() -> None:
    got: list[tuple[Any, ...]] = []

    class Plugin:
        @hookimpl
        def threadline_message_appended(self, message: Any, manager: Any) -> None:
            got.append((message.seq, manager))

    async with SessionManager(storage=MemoryStorage(), plugins=[Plugin()]) as tl:
        await (await tl.create_session()).send("hi")
    assert got == [(1, tl), (2, tl)]


# -- one plugin's failure stays its own -----------------------------------------------


async def test_a_failing_lifecycle_hook_is_logged_with_its_plugin(caplog: pytest.LogCaptureFixture) -> None:
    class Sync:
        @hookimpl
        def threadline_session_created(self) -> None:
            raise RuntimeError("sync boom")

    class Async:
        @hookimpl
        async def threadline_session_created(self) -> None:
            raise RuntimeError("async boom")

    after: list[str] = []

    class Healthy:
        @hookimpl(trylast=True)
        def threadline_session_created(self) -> None:
            after.append("ran")

    with caplog.at_level(logging.ERROR, logger="threadline.plugins"):
        async with SessionManager(storage=MemoryStorage(), plugins=[Sync(), Async(), Healthy()]) as tl:
            await tl.create_session()
    assert after == ["ran"]
    assert [r.getMessage() for r in caplog.records] == [  # in pluggy's order, whether raised or awaited
        "threadline plugin 'Async-1' failed in threadline_session_created",
        "threadline plugin 'Sync-0' failed in threadline_session_created",
    ]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_critical_hook_fails_the_call_after_the_others_ran(kind: str) -> None:
    class Audit:
        if kind == "sync":

            @hookimpl(tryfirst=True)
            @threadline.critical
            def threadline_session_created(self) -> None:
                raise OSError("audit log is full")
        else:

            @hookimpl(tryfirst=True)
            @threadline.critical
            async def threadline_session_created(self) -> None:
                raise OSError("audit log is full")

    later: list[str] = []

    class Later:
        @hookimpl
        async def threadline_session_created(self) -> None:
            later.append("ran")

    async with SessionManager(storage=MemoryStorage(), plugins=[Later(), Audit()]) as tl:
        with pytest.raises(OSError, match="audit log is full"):
            await tl.create_session()
    assert later == ["ran"]


def test_a_registration_hook_that_raises_fails_its_plugin_alone(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    install(site, "halfway", """
        import threadline
        from threadline.builtins.echo import EchoProvider

        @threadline.hookimpl
        def threadline_register_storage(register):
            from threadline.builtins.memory import MemoryStorage
            register("halfway-store", MemoryStorage)

        @threadline.hookimpl
        def threadline_register_providers(register):
            register("halfway", EchoProvider)
            raise KeyError("settings missing")

        @threadline.hookimpl
        def threadline_session_created(session):
            raise AssertionError("an unloaded plugin's hooks must not run")
    """)  # fmt: skip
    install(site, "parrot", PROVIDER.format(provider="parrot"))
    manager = SessionManager()
    assert "parrot" in manager.registry.providers
    assert "halfway" not in manager.registry.providers and "halfway-store" not in manager.registry.storage
    info = next(i for i in manager.plugin_manager.infos if i.name == "halfway")
    assert info.status == "failed"
    assert info.error == "threadline_register_providers raised KeyError: 'settings missing'"
    assert not manager.plugin_manager.has_plugin("halfway")


async def test_registering_an_already_loaded_builtin_again_changes_nothing() -> None:
    import threadline.builtins.echo_plugin

    async with SessionManager(storage=MemoryStorage(), plugins=[threadline.builtins.echo_plugin]) as tl:
        assert (await (await tl.create_session(provider="echo")).send("still here")).text == "still here"
    assert next(i for i in tl.plugin_manager.infos if i.name == "echo").status == "loaded"


def test_register_after_start_up_is_an_error() -> None:
    kept: list[Callable[..., None]] = []

    class Hoarder:
        @hookimpl
        def threadline_register_providers(self, register: Callable[..., None]) -> None:
            kept.append(register)

    manager = SessionManager(plugins=[Hoarder()])
    with pytest.raises(PluginError, match="called after start-up; call it inside the registration hook"):
        kept[0]("late", EchoProvider)
    assert "late" not in manager.registry.providers


# -- settings for any kind of plugin ---------------------------------------------------


@attrs.frozen
class AuditSettings:
    path: str = "audit.jsonl"
    fsync: bool = False


class AuditPlugin:
    def __init__(self) -> None:
        self.paths: list[str] = []

    @hookimpl
    def threadline_register_settings(self, register: Any) -> None:
        register("audit", AuditSettings)

    @hookimpl
    def threadline_session_created(self, manager: SessionManager) -> None:
        self.paths.append(manager.settings("audit").path)


async def test_a_lifecycle_plugin_reads_its_own_validated_settings() -> None:
    plugin = AuditPlugin()
    config = Config.from_dict({"plugins": {"audit": {"path": "/var/log/tl.jsonl"}}}, file="tl.toml")
    async with SessionManager(config, storage=MemoryStorage(), plugins=[plugin]) as tl:
        await tl.create_session()
        assert tl.settings("audit") == AuditSettings("/var/log/tl.jsonl")
    assert plugin.paths == ["/var/log/tl.jsonl"]
    defaults = SessionManager(plugins=[AuditPlugin()])
    assert defaults.settings("audit") == AuditSettings()


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ({"audit": {"fsync": "yes"}}, "tl.toml: plugins.audit.fsync: .*bool"),
        ({"audit": {"paht": "x"}}, "tl.toml: plugins.audit: extra fields found .*the keys are: path, fsync"),
        ({"nope": {"x": 1}}, "tl.toml: plugins.nope: no settings plugin named 'nope'; installed: audit"),
        ({"audit": 3}, r"tl.toml: plugins.audit: expected a table \(\[plugins.audit\]\), got int"),
    ],
)
def test_bad_plugin_settings_name_the_file_and_key(plugins: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SessionManager(Config.from_dict({"plugins": plugins}, file="tl.toml"), plugins=[AuditPlugin()])


# -- the command line honours the config's plugins ------------------------------------

HELLO = """
    import click
    import threadline

    @threadline.hookimpl
    def threadline_register_commands(cli):
        @cli.command()
        def hello():
            "Say hello."
            click.echo("hello")
"""


def test_a_disabled_plugin_adds_no_command(site: Path, tmp_path: Path) -> None:
    install(site, "hello", HELLO)
    config = tmp_path / "tl.toml"
    config.write_text('[plugins]\ndisable = ["hello"]\n')
    env = {"PYTHONPATH": str(site), "THREADLINE_CONFIG": str(config)}
    run = _threadline("hello", env=env)
    assert run.returncode == 2 and "No such command 'hello'" in run.stderr
    assert "Say hello." not in _threadline("--help", env=env).stdout
    only_echo = {"PYTHONPATH": str(site), "THREADLINE_PLUGINS": "echo"}
    assert "Say hello." not in _threadline("--help", env=only_echo).stdout
    other = _threadline("--config", str(tmp_path / "other.toml"), "hello", env={"PYTHONPATH": str(site)})
    assert other.stdout == "hello\n"


def _threadline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full = {**os.environ, **env}
    full["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *sys.path])
    return subprocess.run([sys.executable, "-m", "threadline", *args], capture_output=True, text=True, env=full)


@pytest.mark.parametrize("argv", [["plugins"], ["config", "check"], ["sessions", "list"]])
def test_a_cli_run_discovers_plugins_once(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import threadline.plugins

    scans: list[int] = []
    scan = threadline.plugins.installed_plugins
    monkeypatch.setattr(threadline.plugins, "installed_plugins", lambda: scans.append(1) or scan())
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 0
    assert len(scans) == 1


# -- what a plugin's own code raises stays its own, whatever the implementation's shape --------


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_wrapper_registration_hook_that_raises_fails_its_plugin_alone(when: str) -> None:
    class Wrapping:
        @hookimpl(wrapper=True)
        def threadline_register_providers(self, register: Any) -> Generator[None, None, None]:
            if when == "before":
                raise RuntimeError("wrapper bug")
            yield
            raise RuntimeError("wrapper bug")

    manager = SessionManager(plugins=[Wrapping()])
    assert "echo" in manager.registry.providers  # the implementations it wrapped still ran
    info = next(i for i in manager.plugin_manager.infos if i.name == "Wrapping-0")
    assert (info.status, info.error) == ("failed", "threadline_register_providers raised RuntimeError: wrapper bug")


async def test_a_lifecycle_wrapper_that_raises_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    class Wrapping:
        @hookimpl(wrapper=True)
        def threadline_session_created(self) -> Generator[None, list[Any], list[Any]]:
            results = yield
            raise RuntimeError(f"wrapper bug after {len(results)}")

    class Plain:
        @hookimpl
        async def threadline_session_created(self) -> None:
            ran.append("plain")

    with caplog.at_level(logging.ERROR, logger="threadline.plugins"):
        async with SessionManager(storage=MemoryStorage(), plugins=[Plain(), Wrapping()]) as tl:
            await tl.create_session()
    assert ran == ["plain"]
    assert [r.getMessage() for r in caplog.records] == [
        "threadline plugin 'Wrapping-1' failed in threadline_session_created"
    ]


async def test_implementations_with_defaults_are_guarded_and_bound(caplog: pytest.LogCaptureFixture) -> None:
    class Defaults:
        @hookimpl
        def threadline_register_providers(self, register: Any = None) -> None:
            register("defaulted", EchoProvider)

        @hookimpl
        def threadline_startup(self, manager: Any = None) -> None:
            raise RuntimeError("startup bug")

    with caplog.at_level(logging.ERROR, logger="threadline.plugins"):
        async with SessionManager(storage=MemoryStorage(), plugins=[Defaults()]) as tl:
            assert tl.registry.providers["defaulted"].plugin == "Defaults-0"
    assert [r.getMessage() for r in caplog.records] == ["threadline plugin 'Defaults-0' failed in threadline_startup"]


def test_two_in_process_plugins_with_one_name_both_load() -> None:
    def named(provider: str) -> object:
        class Same:  # a class is registered under its __name__
            @staticmethod
            @hookimpl
            def threadline_register_providers(register: Any) -> None:
                register(provider, EchoProvider)

        return Same

    manager = SessionManager(plugins=[named("one"), named("two")])
    assert {"one", "two"} <= set(manager.registry.providers)
    assert all(i.status == "loaded" for i in manager.plugin_manager.infos)
