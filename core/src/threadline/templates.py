"""Templates and model aliases a user saves from the command line, kept as files of their own
in the user config dir, beside (never inside) the hand-written config file:

- ``<config dir>/templates/NAME.toml``: one template, the keys of ``[templates.NAME]``;
- ``<config dir>/aliases.toml``: ``NAME = "model"`` or ``NAME = { model = "...", provider = "..." }``.

:func:`with_user_files` merges them into a loaded :class:`~threadline.config.Config` (the
command line does, for every command). A name that both the config file and a file here give
is an error naming both: neither silently hides the other. docs/decisions.md says why.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from threadline.config import Alias, Config, Template, _read_toml, interpolate, read_alias, structure
from threadline.errors import ConfigError

NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
NAME_RULE: Final = "1 to 64 letters, digits, '_', '-' or '.', not starting with '-' or '.'"


def user_dir() -> Path:
    """The user config dir (``click.get_app_dir("threadline")``: ``$XDG_CONFIG_HOME/threadline``)."""
    import click

    return Path(click.get_app_dir("threadline"))


def templates_dir(folder: Path | None = None) -> Path:
    return (folder or user_dir()) / "templates"


def aliases_file(folder: Path | None = None) -> Path:
    return (folder or user_dir()) / "aliases.toml"


def check_name(name: str, what: str) -> str:
    """``name`` if it can name a template or alias (and its file), else a ``ConfigError``."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"{name!r} cannot name a {what}: use {NAME_RULE}")
    return name


def read_template(path: Path) -> Template:
    """A template file, checked as ``[templates.NAME]`` is; errors name the file."""
    raw = _read_toml(path)
    template: Template = structure(interpolate(raw, str(path), "template"), Template, str(path), "template")
    return template


def user_templates(folder: Path | None = None) -> dict[str, tuple[Path, Template]]:
    """Every saved template by name, with its file."""
    found = {}
    directory = templates_dir(folder)
    for path in sorted(directory.glob("*.toml")) if directory.is_dir() else ():
        found[path.stem] = (path, read_template(path))
    return found


def user_aliases(folder: Path | None = None) -> dict[str, Alias]:
    path = aliases_file(folder)
    if not path.is_file():
        return {}
    return {name: read_alias(value, str(path), name) for name, value in _read_toml(path).items()}


def with_user_files(config: Config, folder: Path | None = None) -> Config:
    """``config`` with the templates and aliases saved in ``folder`` (the user config dir) added.
    One the config file has too is a ``ConfigError`` naming both places."""
    templates = dict(config.templates)
    for name, (path, template) in user_templates(folder).items():
        if name in templates:
            raise _both("template", name, config, path, f"[templates.{name}]")
        templates[name] = template
    aliases = dict(config.aliases)
    for name, alias in user_aliases(folder).items():
        if name in aliases:
            raise _both("alias", name, config, aliases_file(folder), f"[aliases] {name}")
        aliases[name] = alias
    return attrs.evolve(config, templates=templates, aliases=aliases)


def _both(what: str, name: str, config: Config, path: Path, key: str) -> ConfigError:
    return ConfigError(
        f"{what} {name!r} is both {key} in {config.path or 'the config'} and in {path}: remove one of them",
        file=str(path),
    )


# -- writing ----------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """``value`` as TOML: strings, numbers, booleans, lists and tables (inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{value} cannot be kept in TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # JSON's escapes are TOML's
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise ConfigError(f"a {type(value).__name__} cannot be kept in TOML")


def template_toml(template: Template) -> str:
    header = "# a threadline template: `threadline templates edit NAME` changes it (docs/cli.md)"
    return "\n".join([header, *template_lines(template)]) + "\n"


def write_whole(path: Path, text: str) -> None:
    """``text`` into ``path``, which shows the old text or the new, never part of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def save_template(name: str, template: Template, folder: Path | None = None) -> Path:
    path = templates_dir(folder) / f"{check_name(name, 'template')}.toml"
    write_whole(path, template_toml(template))
    return path


def check_template_text(text: str, path: Path) -> Template:
    """The template ``text`` would be, for an edit of ``path``; a ``ConfigError`` naming it."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    template: Template = structure(raw, Template, str(path), "template")
    return template


def aliases_toml(aliases: Mapping[str, Alias]) -> str:
    lines = ["# threadline model aliases: `threadline aliases set|remove` change them (docs/cli.md)"]
    for name, alias in sorted(aliases.items()):
        value = alias.model if alias.provider is None else {"model": alias.model, "provider": alias.provider}
        lines.append(f"{json.dumps(name)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def set_alias(name: str, alias: Alias, folder: Path | None = None) -> Path:
    aliases = user_aliases(folder)
    aliases[check_name(name, "alias")] = alias
    path = aliases_file(folder)
    write_whole(path, aliases_toml(aliases))
    return path


def remove_alias(name: str, folder: Path | None = None) -> bool:
    aliases = user_aliases(folder)
    if aliases.pop(name, None) is None:
        return False
    write_whole(aliases_file(folder), aliases_toml(aliases))
    return True


def describe_alias(alias: Alias) -> str:
    return f"{alias.provider}/{alias.model}" if alias.provider else alias.model


def template_lines(template: Template) -> Iterator[str]:
    for field in attrs.fields(Template):
        value = getattr(template, field.name)
        if value not in (None, (), {}):
            shown = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
            yield f"{field.name} = {toml_value(shown)}"
