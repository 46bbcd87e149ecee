"""The plugin manager: discovery through the ``threadline`` entry-point group, enable and
disable, and calling hooks one implementation at a time so one plugin's failure is its own."""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final, TypeVar

import pluggy
from attrs import frozen

from threadline import hookspecs

ENTRY_POINT_GROUP: Final = "threadline"
log = logging.getLogger("threadline.plugins")
F = TypeVar("F", bound=Callable[..., Any])


@frozen
class PluginInfo:
    """What ``threadline plugins`` shows for one entry point or in-process plugin."""

    name: str
    distribution: str | None
    version: str | None
    status: str  # "loaded", "disabled" or "failed"
    error: str | None = None
    hooks: tuple[str, ...] = ()


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which plugins loaded, which were disabled and why
    some failed."""

    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        #: print every hook call with its implementations to stderr
        self.tracing = os.environ.get("THREADLINE_TRACE_PLUGINS", "") not in ("", "0")

    def add(self, plugin: object, name: str, *, distribution: str | None = None, version: str | None = None) -> bool:
        """Register ``plugin``; a hook implementation with no matching hookspec (a misspelled
        name) fails this plugin alone, with the name it should have had."""
        try:
            self.register(plugin, name=name)
            self._check_hooks_of(plugin)
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.is_registered(plugin):
                self.unregister(plugin)
            self._record(name, distribution, version, "failed", str(exc))
            log.error("threadline plugin %r not loaded: %s", name, exc)
            return False
        hooks = tuple(sorted(impl_name for impl_name in self._hook_names_of(plugin)))
        self.infos.append(PluginInfo(name, distribution, version, "loaded", None, hooks))
        return True

    def _hook_names_of(self, plugin: object) -> Iterator[str]:
        for hook in self.get_hookcallers(plugin) or []:
            yield hook.name

    def _check_hooks_of(self, plugin: object) -> None:
        for hook in self.get_hookcallers(plugin) or []:
            if not hook.has_spec():
                known = [name for name in dir(hookspecs) if name.startswith("threadline_")]
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook {hook.name!r}; the hooks are: {', '.join(known)}"
                )

    def _record(self, name: str, dist: str | None, version: str | None, status: str, error: str | None) -> None:
        self.infos.append(PluginInfo(name, dist, version, status, error))

    def load_entry_points(self, disable: Iterable[str] = ()) -> None:
        """Load every plugin of the ``threadline`` group except those in ``disable`` and, when
        ``THREADLINE_PLUGINS`` is set, except those it does not name. A plugin that fails to
        import is recorded with its error; the others still load."""
        disabled = set(disable)
        allowed = _allowlist()
        seen: set[str] = set()
        for ep in _entry_points():
            if ep.name in seen:
                continue
            seen.add(ep.name)
            dist, version = _distribution_of(ep)
            if ep.name in disabled or (allowed is not None and ep.name not in allowed):
                self._record(ep.name, dist, version, "disabled", None)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not stop the others
                self._record(ep.name, dist, version, "failed", f"{type(exc).__name__}: {exc}")
                log.error("threadline plugin %r failed to import: %s: %s", ep.name, type(exc).__name__, exc)
                continue
            self.add(plugin, ep.name, distribution=dist, version=version)

    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos if info.status == "failed"]

    # -- calling hooks ------------------------------------------------------

    def each_impl(self, hook_name: str) -> list[pluggy.HookImpl]:
        impls: list[pluggy.HookImpl] = getattr(self.hook, hook_name).get_hookimpls()
        return impls

    def call_each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[pluggy.HookImpl, Any]]:
        """Call each implementation of ``hook_name`` in registration order, yielding its result
        with the implementation (so callers know which plugin answered)."""
        impls = self.each_impl(hook_name)
        self.trace_call(hook_name, impls)
        for impl in impls:
            yield impl, impl.function(**{arg: kwargs[arg] for arg in impl.argnames})

    async def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook: await what an implementation returns if it is awaitable; log
        a failing implementation with its plugin's name and go on, unless it is critical."""
        impls = self.each_impl(hook_name)
        if not impls:
            return
        self.trace_call(hook_name, impls)
        for impl in impls:
            try:
                result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
                if inspect.isawaitable(result):
                    await result
            except Exception:
                if is_critical(impl):
                    raise
                log.exception("threadline plugin %r failed in %s", impl.plugin_name, hook_name)

    def trace_call(self, hook_name: str, impls: list[pluggy.HookImpl]) -> None:
        if self.tracing:
            names = ", ".join(impl.plugin_name for impl in impls) or "(no implementations)"
            print(f"threadline hook {hook_name} -> {names}", file=sys.stderr)


def critical(function: F) -> F:
    """Mark a lifecycle hook implementation critical: if it raises, the call fails with it
    (an audit log that cannot write must stop the conversation)."""
    function.threadline_critical = True  # type: ignore[attr-defined]
    return function


def is_critical(impl: pluggy.HookImpl) -> bool:
    return bool(
        getattr(impl.function, "threadline_critical", False) or getattr(impl.plugin, "threadline_critical", False)
    )


def get_plugin_manager(
    *, disable: Iterable[str] = (), plugins: Iterable[object] = (), load_entry_points: bool = True
) -> PluginManager:
    """A new plugin manager with the installed plugins loaded.

    :param disable: entry-point names not to load (``[plugins] disable`` in config).
    :param plugins: extra in-process plugin objects (modules, classes, instances) to register.
    :param load_entry_points: ``False`` loads only ``plugins``.
    """
    pm = PluginManager()
    if load_entry_points:
        pm.load_entry_points(disable)
    for index, plugin in enumerate(plugins):
        pm.add(plugin, getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{index}")
    return pm


def _allowlist() -> set[str] | None:
    value = os.environ.get("THREADLINE_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _distribution_of(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = ep.dist
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version
