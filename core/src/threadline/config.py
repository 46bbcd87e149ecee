"""The ``threadline.toml`` config file: loading, ``${VAR}`` interpolation, and structuring
each section into an attrs class. Every error names the file, the key and what would be right."""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
from attrs import field, frozen

from threadline.errors import ConfigError

T = TypeVar("T")
SECTIONS: Final = ("defaults", "storage", "providers", "middleware", "templates", "aliases", "plugins")
_SECRET_KEY: Final = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)
_URL_PASSWORD: Final = re.compile(r"(//[^/:@]*:)[^/@]*@")


class Settings(dict[str, Any]):
    """A plugin's table as the config file gave it; its repr hides secrets (keys named like
    ``api_key``, ``token``, ``password``; the password in a URL)."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{name!r}: {_shown(name, value)}" for name, value in self.items()) + "}"


def _shown(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        return repr(Settings(value))
    if _SECRET_KEY.search(name):
        return "'***'"
    if isinstance(value, str):
        return repr(_URL_PASSWORD.sub(r"\1***@", value))
    return repr(value)


_VAR: Final = re.compile(r"\$(\$)|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def finite(_instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """An attrs validator: a number setting must be finite (TOML allows ``inf`` and ``nan``)."""
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value}")


def named(_instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """An attrs validator: a name setting must not be empty."""
    if not value:
        raise ValueError(f"{attribute.name} must be a non-empty name, or left out for its default")


@frozen
class StorageSection:
    """``[storage]``: ``backend`` names the storage plugin; the other keys are its settings."""

    backend: str | None = None
    settings: Mapping[str, Any] = field(factory=dict)


@frozen
class MiddlewareSection:
    """``[middleware]``: ``chain`` names the middleware in order; ``[middleware.<name>]`` tables
    are their settings."""

    chain: tuple[str, ...] = ()
    settings: Mapping[str, Mapping[str, Any]] = field(factory=dict)


@frozen
class Template:
    """``[templates.<name>]``: the defaults of a kind of session."""

    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    tools: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(factory=dict)


@frozen
class Alias:
    """``[aliases]``: another name for a model, and the provider that serves it when it says one
    (``fast = "gpt-4.1-mini"``, or ``fast = { model = "gpt-4.1-mini", provider = "openai" }``).
    Wherever a model name is taken (``create_session``, ``send(model=...)``, ``-m``), an alias
    stands for its model."""

    model: str = field(validator=named)
    provider: str | None = None


@frozen
class Defaults:
    """``[defaults]``: what a session uses when nothing else says. With no ``provider``, the
    first provider plugin (by name) that has its API key (in its table or its environment
    variable) or a ``base_url`` is the default, else the offline ``echo``."""

    provider: str | None = None
    model: str | None = None
    tenant: str = field(default="default", validator=named)
    max_tool_steps: int = field(default=10, validator=attrs.validators.ge(1))
    #: times a reply that does not match ``send(output=T)`` is sent back to the model, with
    #: what was wrong, before ``OutputError``
    output_retries: int = field(default=2, validator=attrs.validators.ge(0))
    #: seconds a turn waits for another process's turn on the same session to end
    turn_wait: float = field(default=60.0, validator=[attrs.validators.ge(0), finite])


@frozen
class PluginsSection:
    """``[plugins]``: ``disable`` lists entry-point names not to load; ``[plugins.<name>]``
    tables are the settings plugins registered with ``threadline_register_settings``."""

    disable: tuple[str, ...] = ()
    settings: Mapping[str, Mapping[str, Any]] = field(factory=dict)


@frozen
class Config:
    """A whole config file. ``Config()`` is the built-in default: echo provider, memory storage
    unless a storage plugin such as ``threadline-sqlite`` is installed."""

    defaults: Defaults = field(factory=Defaults)
    storage: StorageSection = field(factory=StorageSection)
    providers: Mapping[str, Mapping[str, Any]] = field(factory=dict)
    middleware: MiddlewareSection = field(factory=MiddlewareSection)
    templates: Mapping[str, Template] = field(factory=dict)
    plugins: PluginsSection = field(factory=PluginsSection)
    path: str | None = None
    aliases: Mapping[str, Alias] = field(factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Config:
        """Read a config file. Its plugin sections are checked when the plugins are known
        (:meth:`plugin_config`)."""
        return cls.from_dict(_read_toml(path), file=str(path))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, file: str | None = None) -> Config:
        """A config from the tables a TOML file holds, as a dict (``file`` names it in errors)."""
        unknown = set(raw) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"unknown section {min(unknown)!r}; the sections are {', '.join(SECTIONS)}", file=file)
        defaults, storage, middleware, plugins = (
            dict(_table(raw.get(name, {}), file, name)) for name in ("defaults", "storage", "middleware", "plugins")
        )
        return cls(
            defaults=structure(interpolate(defaults, file, "defaults"), Defaults, file, "defaults"),
            storage=StorageSection(
                interpolate(storage.pop("backend", None), file, "storage.backend"), Settings(storage)
            ),
            providers=_tables(raw.get("providers", {}), file, "providers"),
            middleware=MiddlewareSection(
                structure(middleware.pop("chain", ()), tuple[str, ...], file, "middleware.chain"),
                _tables(middleware, file, "middleware"),
            ),
            templates={
                name: structure(interpolate(table, file, f"templates.{name}"), Template, file, f"templates.{name}")
                for name, table in _tables(raw.get("templates", {}), file, "templates").items()
            },
            plugins=PluginsSection(
                structure(plugins.pop("disable", ()), tuple[str, ...], file, "plugins.disable"),
                _tables(plugins, file, "plugins"),
            ),
            path=file,
            aliases={
                name: read_alias(value, file, f"aliases.{name}")
                for name, value in _table(raw.get("aliases", {}), file, "aliases").items()
            },
        )

    def plugin_config(self, cls: type[T], settings: Mapping[str, Any], key: str) -> T:
        """Structure one plugin's settings (``[providers.openai]``, say) into its config class,
        ``${VAR}`` resolved: an unset variable is a :class:`ConfigError` naming it and the key."""
        settings_object: T = structure(interpolate(dict(settings), self.path, key), cls, self.path, key)
        return settings_object

    def check_plugin_config(self, cls: type[T], settings: Mapping[str, Any], key: str) -> T | None:
        """Check one plugin's settings without needing the environment variables they name:
        the settings structured, as :meth:`plugin_config` gives them, or ``None`` when a
        ``${VAR}`` in them is unset but nothing else is wrong (the error waits for the plugin's
        first use). Any other mistake raises now; so does an unset variable in a table that
        has one (it is reported first, as :meth:`plugin_config` does)."""
        unset: set[str] = set()
        lenient = interpolate(dict(settings), self.path, key, unset=unset)
        try:
            settings_object: T = structure(lenient, cls, self.path, key)  # unset values left as written
        except ConfigError as exc:
            if unset and exc.key in unset:
                return None  # what is wrong is only what the unset variables would have given
            if unset:
                self.plugin_config(cls, settings, key)  # raises: the unset variable is named first
            raise
        return None if unset else settings_object


def read_alias(value: Any, file: str | None, key: str) -> Alias:
    """An ``[aliases]`` value: a model name, or a table of ``model`` and ``provider``."""
    if not isinstance(value, str | Mapping):
        raise ConfigError(
            f"expected a model name or a table of model and provider, got {type(value).__name__}", file=file, key=key
        )
    alias: Alias = structure(
        interpolate({"model": value} if isinstance(value, str) else value, file, key), Alias, file, key
    )
    return alias


def read_disabled_plugins(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """``[plugins] disable`` of a config file, read without structuring the rest: what the
    command line needs before it knows which command runs."""
    plugins = _table(_read_toml(path).get("plugins", {}), str(path), "plugins")
    disable = plugins.get("disable", ())
    if not isinstance(disable, list | tuple) or not all(isinstance(name, str) for name in disable):
        raise ConfigError("expected a list of plugin names", file=str(path), key="plugins.disable")
    return tuple(disable)


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("no such config file", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("a folder, not a config file: name the threadline.toml in it", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror or exc}", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text (a TOML file is UTF-8, without a byte-order mark)", file=str(path)) from None
    except RecursionError:
        raise ConfigError("nested too deeply to read", file=str(path)) from None


def _table(value: Any, file: str | None, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a table ([{key}]), got {type(value).__name__}", file=file, key=key)
    return value


def _tables(value: Any, file: str | None, key: str) -> dict[str, Settings]:
    """A table of tables (``[providers.*]``), each checked to be one."""
    return {name: Settings(_table(table, file, f"{key}.{name}")) for name, table in _table(value, file, key).items()}


def structure(value: Any, cls: Any, file: str | None, key: str) -> Any:
    """``converter.structure`` with errors that name the file, the key and the expected type."""
    import cattrs  # with the data model, only once a config is structured

    from threadline.model import converter, describe_error

    try:
        return converter.structure(value, cls)
    except cattrs.BaseValidationError as exc:
        problem = describe_error(exc)[0]
        raise ConfigError(problem.what, file=file, key=key + problem.path) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc), file=file, key=key) from None


def interpolate(value: Any, file: str | None, key: str, *, unset: set[str] | None = None) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``.

    An unset variable with no default is a :class:`ConfigError`; when ``unset`` is given, it
    is left as written instead and the key of its value added to ``unset``."""
    if isinstance(value, str):
        return _VAR.sub(lambda match: _substitute(match, file, key, unset), value)
    if isinstance(value, list):
        return [interpolate(item, file, f"{key}[{index}]", unset=unset) for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {name: interpolate(item, file, f"{key}.{name}", unset=unset) for name, item in value.items()}
    return value


def _substitute(match: re.Match[str], file: str | None, key: str, unset: set[str] | None) -> str:
    if match.group(1):
        return "$"
    name, default = match.group(2), match.group(3)
    if name in os.environ:
        return os.environ[name]
    if default is not None:
        return default
    if unset is not None:
        unset.add(key)
        return match.group(0)
    raise ConfigError(
        f"environment variable {name} is not set (set it, or write ${{{name}:-default}} for a fallback)",
        file=file,
        key=key,
    )


def user_config_dir() -> Path:
    """Where the user's threadline config lives (``click.get_app_dir("threadline")``:
    ``$XDG_CONFIG_HOME/threadline`` on Linux): the user's config file, saved templates,
    aliases and the key file."""
    import click

    return Path(click.get_app_dir("threadline"))


def user_data_dir() -> Path:
    """Where threadline keeps data for this user (``$XDG_DATA_HOME/threadline``)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "threadline"
