"""The plugin manager: entry-point discovery, enable and disable, and the one place hooks are
called. Every hook goes through pluggy's own caller, so ``tryfirst``/``trylast``,
``wrapper=True`` and ``firstresult`` mean what they mean in pytest; the kernel only guards each
implementation so that one plugin's failure stays its own."""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs
import pluggy
from attrs import frozen

from threadline import hookspecs
from threadline.entry_points import installed_plugins
from threadline.errors import PluginError

REGISTRATION_PREFIX: Final = "threadline_register_"
log = logging.getLogger("threadline.plugins")
F = TypeVar("F", bound=Callable[..., Any])

_registering: contextvars.ContextVar[str] = contextvars.ContextVar("threadline_registering")


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
    some failed, and guards each hook implementation it registers:

    - a registration hook (``threadline_register_*``) that raises fails its plugin alone: the
      plugin is unregistered and reported with its name, like a plugin that failed to import;
    - a lifecycle hook that raises, or whose awaitable raises, is logged with its plugin's name
      and the call goes on, unless the implementation is :func:`critical`.
    """

    def __init__(self) -> None:
        super().__init__("threadline")
        self.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        if os.environ.get("THREADLINE_TRACE_PLUGINS", "") not in ("", "0"):
            self.add_hookcall_monitoring(_trace, lambda *_: None)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        plugin_name = super().register(plugin, name)
        for hook in self.get_hookcallers(plugin) or []:
            for impl in hook.get_hookimpls():
                if impl.plugin is plugin:
                    impl.function = self._guard(hook.name, impl)  # type: ignore[misc]
        return plugin_name

    def _guard(self, hook_name: str, impl: pluggy.HookImpl) -> Callable[..., Any]:
        """``impl``'s function as the kernel calls it: a registration hook's ``register`` acts
        on behalf of its plugin, and what the function raises is its plugin's failure alone
        (for a wrapper, before or after its ``yield``). An old-style ``hookwrapper`` is only
        bound, as pluggy deprecates it."""
        function = _bound(impl)
        if impl.hookwrapper:
            return function
        failed = self._on_failure(hook_name, impl)
        if impl.wrapper:
            return _guard_wrapper(function, failed)
        if hook_name.startswith(REGISTRATION_PREFIX):
            return _guard_call(function, failed)
        return _guard_lifecycle(function, failed)

    def _on_failure(self, hook_name: str, impl: pluggy.HookImpl) -> Callable[[Exception], None]:
        """What an implementation's exception means: a registration hook's fails its plugin
        (the kernel's own ``PluginError``, such as a name claimed twice, is raised); a lifecycle
        hook's is logged, or raised when the implementation is critical."""
        plugin = impl.plugin_name
        if hook_name.startswith(REGISTRATION_PREFIX):

            def failed(exc: Exception) -> None:
                if isinstance(exc, PluginError):
                    raise exc
                self.fail(plugin, f"{hook_name} raised {type(exc).__name__}: {exc}")

            return failed
        critical = is_critical(impl)

        def logged(exc: Exception) -> None:
            if critical:
                raise exc
            log.error("threadline plugin %r failed in %s", plugin, hook_name, exc_info=exc)

        return logged

    def add(self, plugin: object, name: str, *, distribution: str | None = None, version: str | None = None) -> bool:
        """Register ``plugin`` (a plugin already registered is left as it is); a hook
        implementation with no matching hookspec (a misspelled name) fails this plugin alone,
        with the name it should have had."""
        if self.is_registered(plugin):
            return True
        try:
            self.register(plugin, name=name)
            self._check_hooks_of(plugin)
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.get_plugin(name) is plugin:
                self.unregister(plugin)
            self._record(PluginInfo(name, distribution, version, "failed", str(exc)))
            log.error("threadline plugin %r not loaded: %s", name, exc)
            return False
        hooks = tuple(sorted(hook.name for hook in self.get_hookcallers(plugin) or []))
        self._record(PluginInfo(name, distribution, version, "loaded", None, hooks))
        return True

    def fail(self, name: str, error: str) -> None:
        """Unregister plugin ``name`` and report it failed with ``error``."""
        if self.has_plugin(name):
            self.unregister(name=name)
        info = next((i for i in self.infos if i.name == name), PluginInfo(name, None, None, "failed"))
        self._record(attrs.evolve(info, status="failed", error=error, hooks=()))
        log.error("threadline plugin %r failed: %s", name, error)

    def _record(self, info: PluginInfo) -> None:
        self.infos = [i for i in self.infos if i.name != info.name] + [info]

    def _check_hooks_of(self, plugin: object) -> None:
        for hook in self.get_hookcallers(plugin) or []:
            if not hook.has_spec():
                known = [name for name in dir(hookspecs) if name.startswith("threadline_")]
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook {hook.name!r}; the hooks are: {', '.join(known)}"
                )

    def load_entry_points(self, disable: Iterable[str] = ()) -> None:
        """Load every plugin of the ``threadline`` group except those in ``disable`` and, when
        ``THREADLINE_PLUGINS`` is set, except those it does not name. A plugin that fails to
        import is recorded with its error; the others still load."""
        disabled = set(disable)
        allowed = _allowlist()
        seen: set[str] = set()
        for ep in installed_plugins():
            if ep.name in seen:
                continue
            seen.add(ep.name)
            dist, version = ep.distribution, ep.version
            if ep.name in disabled or (allowed is not None and ep.name not in allowed):
                self._record(PluginInfo(ep.name, dist, version, "disabled"))
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not stop the others
                self._record(PluginInfo(ep.name, dist, version, "failed", f"{type(exc).__name__}: {exc}"))
                log.error("threadline plugin %r failed to import: %s: %s", ep.name, type(exc).__name__, exc)
                continue
            self.add(plugin, ep.name, distribution=dist, version=version)

    def implemented(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name``: a hot path skips building the hook's
        arguments when nobody listens."""
        return bool(getattr(self.hook, hook_name).get_hookimpls())

    async def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook through pluggy, then await what its implementations returned,
        in the order pluggy called them. A critical implementation's error is raised once
        every implementation has run."""
        critical_error: Exception | None = None
        for result in getattr(self.hook, hook_name)(**kwargs):
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception as exc:  # only a critical implementation's error gets here
                    critical_error = critical_error or exc
        if critical_error is not None:
            raise critical_error


def registering_plugin() -> str:
    """The name of the plugin whose ``register`` is being called."""
    try:
        return _registering.get()
    except LookupError:
        raise PluginError("register() was called with no plugin to register for") from None


def _bound(impl: pluggy.HookImpl) -> Callable[..., Any]:
    """``impl``'s function, with its ``register`` argument (if it takes one, positional or
    with a default) acting on behalf of its plugin."""
    function, plugin = impl.function, impl.plugin_name
    if "register" not in (*impl.argnames, *impl.kwargnames):
        return function
    position = impl.argnames.index("register") if "register" in impl.argnames else None

    def on_behalf(register: Callable[..., Any]) -> Callable[..., Any]:
        def registering(*args: Any, **kwargs: Any) -> Any:
            token = _registering.set(plugin)
            try:
                return register(*args, **kwargs)
            finally:
                _registering.reset(token)

        return registering

    def bound(*args: Any, **kwargs: Any) -> Any:
        if "register" in kwargs:
            kwargs["register"] = on_behalf(kwargs["register"])
        elif position is not None:
            args = (*args[:position], on_behalf(args[position]), *args[position + 1 :])
        return function(*args, **kwargs)

    return bound


def _guard_call(function: Callable[..., Any], failed: Callable[[Exception], None]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            failed(exc)
            return None

    return guarded


def _guard_lifecycle(function: Callable[..., Any], failed: Callable[[Exception], None]) -> Callable[..., Any]:
    """Returns an awaitable or ``None``; the awaitable raises only a critical implementation's
    error (also one its function raised when called), so every implementation gets to run."""

    async def awaited(result: Awaitable[Any] | None, error: Exception | None) -> None:
        try:
            if error is not None:
                raise error
            await result  # type: ignore[misc]
        except Exception as exc:
            failed(exc)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except Exception as exc:
            return awaited(None, exc)
        return awaited(result, None) if inspect.isawaitable(result) else None

    return guarded


def _guard_wrapper(function: Callable[..., Any], failed: Callable[[Exception], None]) -> Callable[..., Any]:
    """A ``wrapper=True`` implementation run inside a generator of the same protocol, so that
    what it raises itself, before or after its ``yield``, goes to ``failed``; the result or
    error of the implementations it wraps passes through it as pluggy would pass it."""

    def guarded(*args: Any, **kwargs: Any) -> Generator[None, Any, Any]:
        try:
            inner = function(*args, **kwargs)
            next(inner)
        except Exception as exc:
            failed(exc)
            return (yield)
        try:
            result = yield
        except BaseException as exc:  # an implementation it wraps raised: the wrapper sees it
            try:
                inner.throw(exc)
            except StopIteration as stop:
                return stop.value
            except Exception as own:
                if own is not exc:
                    failed(own)
                raise exc from None
            raise RuntimeError(f"{function.__qualname__} yielded twice") from None
        try:
            inner.send(result)
        except StopIteration as stop:
            return stop.value
        except Exception as exc:
            failed(exc)
            return result
        raise RuntimeError(f"{function.__qualname__} yielded twice")

    return guarded


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
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{index}"
        while pm.has_plugin(name) and pm.get_plugin(name) is not plugin:
            name += "+"  # an in-process plugin's name is only a label: keep two same-named ones apart
        pm.add(plugin, name)
    return pm


def _trace(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
    names = ", ".join(impl.plugin_name for impl in reversed(impls)) or "(no implementations)"
    print(f"threadline hook {hook_name} -> {names}", file=sys.stderr)


def _allowlist() -> set[str] | None:
    value = os.environ.get("THREADLINE_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}
