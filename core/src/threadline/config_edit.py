"""Setting keys of the config file's ``[defaults]`` table in place: the lines of those keys
are written, added or removed, and every other byte of the file is kept, comments included.

There is no TOML writer among threadline's dependencies, and rewriting a file the user wrote
from its parsed tables would lose its comments and layout. So the edit is made on lines, then
checked: the file as edited must read (``tomllib``) as exactly the old one with those keys
changed, or nothing is written and :class:`ConfigError` says what to write by hand. The new
file replaces the old one whole (written beside it, then renamed), with the old one's mode.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from threadline.errors import ConfigError

__all__ = ["set_defaults"]

TABLE: Final = "defaults"
_HEADER: Final = re.compile(rf"^\s*\[\s*{TABLE}\s*\]\s*(#.*)?$")
_ANY_HEADER: Final = re.compile(r"^\s*\[")


def set_defaults(path: Path, values: Mapping[str, str | None]) -> None:
    """Set each key of ``values`` in ``[defaults]`` of the config file at ``path`` to its value
    (a string), or take it out (``None``). The file must exist."""
    path = path.resolve()
    text = path.read_text(encoding="utf-8")
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    edited = _edit(text, values)
    if edited is None or not _reads_as(edited, _expected(before, values)):
        raise ConfigError(
            f"[{TABLE}] is written in a way this command does not edit (an inline table, dotted keys, a string "
            f"spanning lines); write it by hand:\n{_by_hand(values)}",
            file=str(path),
        )
    _replace(path, edited)


def _edit(text: str, values: Mapping[str, str | None]) -> str | None:
    """``text`` with the keys' lines of the ``[defaults]`` table set, added after its header,
    or removed; the table added at the end when there is none. ``None`` when the file names
    ``defaults`` some other way (the check would fail anyway: this says why sooner)."""
    lines = text.splitlines(keepends=True)
    headers = [index for index, line in enumerate(lines) if _HEADER.match(line)]
    if len(headers) > 1:
        return None
    new = {key: f"{key} = {_string(value)}\n" for key, value in values.items() if value is not None}
    if not headers:
        if not new:
            return text
        ending = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{ending}\n[{TABLE}]\n{''.join(new.values())}"
    start = headers[0] + 1
    end = next((index for index in range(start, len(lines)) if _ANY_HEADER.match(lines[index])), len(lines))
    for index in range(start, end):
        key = _key_of(lines[index])
        if key is not None and key in values:
            lines[index] = new.pop(key, "")  # set where it was, or taken out
    lines[start:start] = list(new.values())  # the ones it had not: after the header
    return "".join(lines)


def _key_of(line: str) -> str | None:
    match = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=", line)
    return match[1] if match else None


def _string(value: str) -> str:
    """``value`` as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


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
    lines += [f"{key} = {_string(value)}" if value is not None else f"# (no {key})" for key, value in values.items()]
    return "\n".join(lines)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a new file beside ``path`` with its mode, and rename it over ``path``."""
    mode = path.stat().st_mode & 0o7777
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, mode)  # the umask may have narrowed it
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
