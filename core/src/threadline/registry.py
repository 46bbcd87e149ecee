"""What the registration hooks registered: providers, storage, middleware, settings and tools by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from attrs import define, frozen

from threadline.errors import PluginError
from threadline.plugins import PluginManager, registering_plugin

if TYPE_CHECKING:
    from threadline.tools import Tool


@frozen
class NoConfig:
    """The config class of a plugin that takes no settings."""


@frozen
class Registration:
    name: str
    factory: Callable[[Any], Any]
    config: type
    plugin: str


class Register(Protocol):
    """The ``register`` a provider, storage or middleware registration hook is given:
    ``register(name, factory, config=ConfigClass)``."""

    def __call__(self, name: str, factory: Callable[[Any], Any], *, config: type = NoConfig) -> None: ...


class RegisterTool(Protocol):
    """The ``register`` of ``threadline_register_tools``: ``register(tool)``, a ``@threadline.tool``."""

    def __call__(self, tool: Tool) -> None: ...


class RegisterSettings(Protocol):
    """The ``register`` of ``threadline_register_settings``: ``register(name, ConfigClass)``."""

    def __call__(self, name: str, config: type) -> None: ...


def _settings_themselves(settings: Any) -> Any:
    """The factory of a settings registration: what it makes is the structured settings."""
    return settings


@define
class Registry:
    providers: dict[str, Registration] = attrs.Factory(dict)
    storage: dict[str, Registration] = attrs.Factory(dict)
    middleware: dict[str, Registration] = attrs.Factory(dict)
    settings: dict[str, Registration] = attrs.Factory(dict)
    tools: dict[str, Tool] = attrs.Factory(dict)
    tool_owners: dict[str, str] = attrs.Factory(dict)
    _sealed: bool = False

    @classmethod
    def collect(cls, pm: PluginManager) -> Registry:
        """Call every registration hook through pluggy. A name registered twice is a
        ``PluginError`` naming both plugins; what a plugin that then failed registered is dropped."""
        registry = cls()
        hook = pm.hook
        hook.threadline_register_providers(register=registry._register_for("providers"))
        hook.threadline_register_storage(register=registry._register_for("storage"))
        hook.threadline_register_middleware(register=registry._register_for("middleware"))
        register_settings = registry._register_for("settings")
        hook.threadline_register_settings(
            register=lambda name, config: register_settings(name, _settings_themselves, config=config)
        )
        hook.threadline_register_tools(register=registry._register_tool)
        registry._drop_failed(pm)
        registry._sealed = True
        return registry

    def _register_tool(self, tool: Tool) -> None:
        self._check_open()
        self.add_tool(tool, registering_plugin())

    def _check_open(self) -> None:
        if self._sealed:
            raise PluginError("register() was called after start-up; call it inside the registration hook")

    def _register_for(self, kind: str) -> Callable[..., None]:
        table: dict[str, Registration] = getattr(self, kind)

        def register(name: str, factory: Callable[[Any], Any], *, config: type = NoConfig) -> None:
            self._check_open()
            plugin = registering_plugin()
            if not attrs.has(config):
                raise PluginError(f"plugin {plugin!r}: config for {kind} {name!r} must be an attrs class")
            if name in table:
                raise PluginError(
                    f"{kind} {name!r} is registered by two plugins, {table[name].plugin!r} and {plugin!r}; "
                    f"disable one in [plugins] disable = [...]"
                )
            table[name] = Registration(name, factory, config, plugin)

        return register

    def _drop_failed(self, pm: PluginManager) -> None:
        for table in (self.providers, self.storage, self.middleware, self.settings):
            for name in [name for name, entry in table.items() if not pm.has_plugin(entry.plugin)]:
                del table[name]
        for name in [name for name, plugin in self.tool_owners.items() if not pm.has_plugin(plugin)]:
            del self.tools[name], self.tool_owners[name]

    def add_tool(self, tool: Tool, plugin: str) -> None:
        from threadline.tools import Tool  # the data model loads when a tool is first registered

        if not isinstance(tool, Tool):
            raise PluginError(f"plugin {plugin!r} registered {tool!r}; decorate the function with @threadline.tool")
        owner = self.tool_owners.get(tool.name)
        if owner is not None and self.tools[tool.name] is not tool:
            raise PluginError(f"tool {tool.name!r} is registered by two plugins, {owner!r} and {plugin!r}")
        self.tools[tool.name] = tool
        self.tool_owners[tool.name] = plugin

    def lookup(self, kind: str, name: str) -> Registration:
        table: dict[str, Registration] = getattr(self, kind)
        if name not in table:
            installed = ", ".join(sorted(table)) or "none"
            raise PluginError(f"no {kind} plugin named {name!r}; installed: {installed}")
        return table[name]
