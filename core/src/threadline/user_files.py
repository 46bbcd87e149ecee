"""Templates and model aliases a user saves from the command line, kept as files of their own
in the user config dir, beside (never inside) the hand-written config file:

- ``<config dir>/templates/NAME.toml``: one template, the keys of ``[templates.NAME]``;
- ``<config dir>/aliases.toml``: ``NAME = "model"`` or ``NAME = { model = "...", provider = "..." }``.

:func:`with_user_files` merges them into a loaded :class:`~threadline.config.Config` (the
command line does, for every command). A name that both the config file and a file here give
is an error naming both: neither silently hides the other. docs/decisions.md says why.

What is saved here is data, kept as given: no ``${VAR}`` in it is expanded (the config file's
own templates and aliases are config, and are). A saved file that cannot be read fails only
what uses it: the command line warns of it and leaves it out (``report`` of
:func:`with_user_files`). Each file is written whole, a read-modify-write under a lock
(:mod:`threadline.atomic_file`).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from threadline.atomic_file import locked, write_atomic
from threadline.config import Alias, Config, Template, _read_toml, structure, user_config_dir
from threadline.errors import ConfigError

NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
NAME_RULE: Final = "1 to 64 letters, digits, '_', '-' or '.', not starting with '-' or '.'"


def templates_dir(folder: Path | None = None) -> Path:
    return (folder or user_config_dir()) / "templates"


def aliases_file(folder: Path | None = None) -> Path:
    return (folder or user_config_dir()) / "aliases.toml"


def check_name(name: str, what: str) -> str:
    """``name`` if it can name a template or alias (and its file), else a ``ConfigError``."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"{name!r} cannot name {'an' if what[0] in 'aeiou' else 'a'} {what}: use {NAME_RULE}")
    return name


def template_path(name: str, folder: Path | None = None) -> Path:
    """The file template ``name`` is saved in (which need not exist); a ``ConfigError`` when
    ``name`` cannot name one."""
    return templates_dir(folder) / f"{check_name(name, 'template')}.toml"


def read_template(path: Path) -> Template:
    """A template file, checked as ``[templates.NAME]`` is; errors name the file. Its text is
    taken as it was saved: no ``${VAR}`` is expanded (it is data the user saved, not config)."""
    template: Template = structure(_read_toml(path), Template, str(path), "template")
    return template


def template_files(folder: Path | None = None) -> dict[str, Path]:
    """The file of every saved template by name, none of them read."""
    directory = templates_dir(folder)
    return {path.stem: path for path in sorted(directory.glob("*.toml"))} if directory.is_dir() else {}


def user_templates(folder: Path | None = None) -> dict[str, tuple[Path, Template]]:
    """Every saved template by name, with its file; a ``ConfigError`` for the first that
    cannot be read."""
    return {name: (path, read_template(path)) for name, path in template_files(folder).items()}


def user_aliases(folder: Path | None = None) -> dict[str, Alias]:
    """The saved aliases; ``{}`` without an aliases file. Taken as saved: no ``${VAR}`` is expanded."""
    path = aliases_file(folder)
    if not path.is_file():
        return {}
    return {name: _read_alias(value, str(path), name) for name, value in _read_toml(path).items()}


def _read_alias(value: Any, file: str, key: str) -> Alias:
    if not isinstance(value, str | Mapping):
        raise ConfigError(
            f"expected a model name or a table of model and provider, got {type(value).__name__}", file=file, key=key
        )
    alias: Alias = structure({"model": value} if isinstance(value, str) else value, Alias, file, key)
    return alias


def with_user_files(
    config: Config, folder: Path | None = None, *, report: Callable[[ConfigError], None] | None = None
) -> Config:
    """``config`` with the templates and aliases saved in ``folder`` (the user config dir) added.
    One the config file has too is a ``ConfigError`` naming both places. A saved file that
    cannot be read is a ``ConfigError`` naming it; with ``report``, it is given to ``report``
    instead and left out, so that it fails only what uses it (the command line does that)."""
    templates = dict(config.templates)
    for name, path in template_files(folder).items():
        if name in templates:
            raise _both("template", name, config, path, f"[templates.{name}]")
        try:
            templates[name] = read_template(path)
        except ConfigError as exc:
            if report is None:
                raise
            mend = f"`threadline templates edit {name}` or `threadline templates remove {name}`"
            report(_unreadable(exc, f"template {name!r}", mend))
    aliases = dict(config.aliases)
    try:
        saved_aliases = user_aliases(folder)
    except ConfigError as exc:
        if report is None:
            raise
        report(_unreadable(exc, "the saved aliases", f"edit or remove {aliases_file(folder)}"))
        saved_aliases = {}
    for name, alias in saved_aliases.items():
        if name in aliases:
            raise _both("alias", name, config, aliases_file(folder), f"[aliases] {name}")
        aliases[name] = alias
    return attrs.evolve(config, templates=templates, aliases=aliases)


def _unreadable(error: ConfigError, what: str, mend: str) -> ConfigError:
    return ConfigError(f"{error.reason}; {what} is left out until it is mended: {mend}", file=error.file, key=error.key)


_reported: set[str] = set()


def report_once(error: ConfigError) -> None:
    """``error`` as a warning on stderr, once a process (the config is loaded more than once)."""
    import click

    if str(error) not in _reported:
        _reported.add(str(error))
        click.echo(f"warning: {error}", err=True)


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


def save_template(name: str, template: Template, folder: Path | None = None, *, replace: bool = True) -> Path:
    """Write ``template`` to its file. ``replace=False``: a ``FileExistsError`` when one is
    saved already, even by another process a moment ago."""
    path = template_path(name, folder)
    with locked(path.parent):
        write_atomic(path, template_toml(template), replace=replace)
    return path


def save_template_text(path: Path, text: str) -> None:
    """Make ``text`` (checked: :func:`check_template_text`) the content of template file ``path``."""
    with locked(path.parent):
        write_atomic(path, text)


def remove_template(name: str, folder: Path | None = None) -> bool:
    """Remove saved template ``name``'s file, read or not; whether there was one."""
    path = template_path(name, folder)
    with locked(path.parent):
        try:
            path.unlink()
        except FileNotFoundError:
            return False
    return True


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
    path = aliases_file(folder)
    with locked(path):
        aliases = user_aliases(folder)
        aliases[check_name(name, "alias")] = alias
        write_atomic(path, aliases_toml(aliases))
    return path


def remove_alias(name: str, folder: Path | None = None) -> bool:
    path = aliases_file(folder)
    with locked(path):
        aliases = user_aliases(folder)
        if aliases.pop(name, None) is None:
            return False
        write_atomic(path, aliases_toml(aliases))
    return True


def describe_alias(alias: Alias) -> str:
    return f"{alias.provider}/{alias.model}" if alias.provider else alias.model


def template_lines(template: Template) -> Iterator[str]:
    for field in attrs.fields(Template):
        value = getattr(template, field.name)
        if value not in (None, (), {}):
            shown = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
            yield f"{field.name} = {toml_value(shown)}"
