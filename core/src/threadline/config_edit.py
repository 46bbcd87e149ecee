"""Setting keys of the config file's ``[defaults]`` table in place: the lines of those keys
are written, added or removed, and every other byte of the file is kept, comments included.

There is no TOML writer among threadline's dependencies, and rewriting a file the user wrote
from its parsed tables would lose its comments and layout. So the edit is made on lines, then
checked: the file as edited must read (``tomllib``) as exactly the old one with those keys
changed, or nothing is written and :class:`ConfigError` says what to write by hand. The file
is read and written as bytes (CRLF line endings stay CRLF), and an edited line keeps its
trailing comment. The new file replaces the old one whole (:mod:`threadline.atomic_file`:
written beside it, then renamed, under a lock), with the old one's mode.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from threadline.atomic_file import locked, write_atomic
from threadline.errors import ConfigError
from threadline.user_files import toml_value

__all__ = ["set_defaults"]

TABLE: Final = "defaults"
_HEADER: Final = re.compile(rf"^\s*\[\s*{TABLE}\s*\]\s*(#.*)?$")
_ANY_HEADER: Final = re.compile(r"^\s*\[")
#: a ``key = value  # comment`` line, the value a one-line string or a bare word (a number, a boolean)
_LINE: Final = re.compile(
    r"""(?P<prefix>[ \t]*[A-Za-z0-9_-]+[ \t]*=[ \t]*)"""
    r"""(?:"(?:[^"\\\r\n]|\\.)*"|'[^'\r\n]*'|[^\s#"'\[{]+)"""
    r"""(?P<rest>[ \t]*(?:#[^\r\n]*)?)(?P<ending>\r?\n)?\Z"""
)


def set_defaults(path: Path, values: Mapping[str, str | None]) -> None:
    """Set each key of ``values`` in ``[defaults]`` of the config file at ``path`` to its value
    (a string), or take it out (``None``). The file must exist. The file is locked from the
    read to the write, so two edits at once both take effect."""
    path = path.resolve()
    with locked(path):
        try:
            text = path.read_bytes().decode("utf-8")  # bytes as they are: CRLF stays CRLF
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text (a TOML file is UTF-8)", file=str(path)) from None
        try:
            before = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
        edited = _edit(text, values)
        if edited is None or not _reads_as(edited, _expected(before, values)):
            raise ConfigError(
                f"[{TABLE}] is written in a way this command does not edit (an inline table, dotted keys, a "
                f"string spanning lines); write it by hand:\n{_by_hand(values)}",
                file=str(path),
            )
        write_atomic(path, edited, mode=path.stat().st_mode & 0o7777)


def _edit(text: str, values: Mapping[str, str | None]) -> str | None:
    """``text`` with the keys' lines of the ``[defaults]`` table set, added after its header,
    or removed; the table added at the end when there is none. A line set keeps its
    indentation, its trailing comment and its line ending; lines added end as the file's
    first line does (CRLF or LF). ``None`` when the file names ``defaults`` some other way
    (the check would fail anyway: this says why sooner)."""
    lines = [line for line in re.split(r"(?<=\n)", text) if line]  # on \n alone: not on \r, \f or \u2028
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    headers = [index for index, line in enumerate(lines) if _HEADER.match(line)]
    if len(headers) > 1:
        return None
    new = {key: f"{key} = {toml_value(value)}{newline}" for key, value in values.items() if value is not None}
    if not headers:
        if not new:
            return text
        ending = "" if not text or text.endswith("\n") else newline
        return f"{text}{ending}{newline}[{TABLE}]{newline}{''.join(new.values())}"
    start = headers[0] + 1
    end = next((index for index in range(start, len(lines)) if _ANY_HEADER.match(lines[index])), len(lines))
    for index in range(start, end):
        key = _key_of(lines[index])
        if key is not None and key in values:
            value = values[key]
            new.pop(key, None)
            lines[index] = "" if value is None else _set_value(lines[index], value, newline)  # set, or taken out
    lines[start:start] = list(new.values())  # the ones it had not: after the header
    return "".join(lines)


def _set_value(line: str, value: str, newline: str) -> str:
    """``line`` (``key = "old"  # note``) with ``value`` in the place of its value, the rest kept."""
    match = _LINE.match(line)
    if match is None:  # a value this does not parse (a string spanning lines): the check refuses it
        key = _key_of(line)
        return f"{key} = {toml_value(value)}{newline}"
    return f"{match['prefix']}{toml_value(value)}{match['rest']}{match['ending'] or ''}"


def _key_of(line: str) -> str | None:
    match = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=", line)
    return match[1] if match else None


def _expected(before: dict[str, Any], values: Mapping[str, str | None]) -> dict[str, Any]:
    after = copy.deepcopy(before)
    table = after.setdefault(TABLE, {})
    for key, value in values.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    if not table and TABLE not in before:
        del after[TABLE]
    return after


def _reads_as(text: str, expected: dict[str, Any]) -> bool:
    try:
        return tomllib.loads(text) == expected
    except tomllib.TOMLDecodeError:
        return False


def _by_hand(values: Mapping[str, str | None]) -> str:
    lines = [f"[{TABLE}]"]
    lines += [f"{key} = {toml_value(value)}" if value is not None else f"# (no {key})" for key, value in values.items()]
    return "\n".join(lines)
