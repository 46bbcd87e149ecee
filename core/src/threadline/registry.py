"""What the registration hooks registered: providers, storage, middleware and tools by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
from attrs import define, frozen

from threadline.errors import PluginError
from threadline.plugins import PluginManager
from threadline.tools import Tool


@frozen
class NoConfig:
    """The config class of a plugin that takes no settings."""


@frozen
class Registration:
    kind: str
    name: str
    factory: Callable[[Any], Any]
    config: type
    plugin: str


class Register(Protocol):
    def __call__(self, name: str, factory: Callable[[Any], Any], *, config: type = NoConfig) -> None: ...


class RegisterTool(Protocol):
    def __call__(self, tool: Tool) -> None: ...


KINDS = {"providers": "threadline_register_providers", "storage": "threadline_register_storage",
         "middleware": "threadline_register_middleware"}  # fmt: skip


@define
class Registry:
    providers: dict[str, Registration] = attrs.Factory(dict)
    storage: dict[str, Registration] = attrs.Factory(dict)
    middleware: dict[str, Registration] = attrs.Factory(dict)
    tools: dict[str, Tool] = attrs.Factory(dict)
    tool_owners: dict[str, str] = attrs.Factory(dict)

    @classmethod
    def collect(cls, pm: PluginManager) -> Registry:
        """Call every registration hook. A name registered twice is a ``PluginError`` naming both plugins."""
        registry = cls()
        for kind, hook_name in KINDS.items():
            impls = pm.each_impl(hook_name)
            pm.trace_call(hook_name, impls)
            for impl in impls:
                impl.function(register=registry._register_for(kind, impl.plugin_name))
        impls = pm.each_impl("threadline_register_tools")
        pm.trace_call("threadline_register_tools", impls)
        for impl in impls:
            impl.function(register=lambda tool, plugin=impl.plugin_name: registry.add_tool(tool, plugin))
        return registry

    def _register_for(self, kind: str, plugin: str) -> Register:
        table: dict[str, Registration] = getattr(self, kind)

        def register(name: str, factory: Callable[[Any], Any], *, config: type = NoConfig) -> None:
            if not attrs.has(config):
                raise PluginError(f"plugin {plugin!r}: config for {kind} {name!r} must be an attrs class")
            if name in table:
                raise PluginError(
                    f"{kind} {name!r} is registered by two plugins, {table[name].plugin!r} and {plugin!r}; "
                    f"disable one in [plugins] disable = [...]"
                )
            table[name] = Registration(kind, name, factory, config, plugin)

        return register

    def add_tool(self, tool: Tool, plugin: str) -> None:
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
