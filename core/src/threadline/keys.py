"""The key file: API keys by provider name, in ``keys.json`` in the user's config directory
(``~/.config/threadline/keys.json`` on Linux), readable and writable by the user alone.

``threadline keys set NAME`` writes it; a provider whose key is set neither in its
``[providers.<name>]`` table nor in its environment variable takes the key stored under its
name here (:func:`stored_key`, which the :class:`~threadline.SessionManager` asks last).

The file is written whole to a new file created with mode 0600, then renamed over the old
one, so it is never seen half written nor, for an instant, with wider permissions; each
change is a read-modify-write under a lock, so two processes storing two keys keep both
(:mod:`threadline.atomic_file`). A key
file that others may read or write (its mode has any group or other bit) is refused until
its mode is 0600 again: ``chmod 600 PATH``, or ``threadline keys set``, which writes it anew.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from pathlib import Path
from typing import Final, TypeVar

import attrs

from threadline.atomic_file import locked, write_atomic
from threadline.config import user_config_dir
from threadline.errors import ConfigError

__all__ = [
    "KeyFileError",
    "delete_key",
    "keys_path",
    "read_keys",
    "stored_key",
    "unset_variable",
    "with_stored_key",
    "write_key",
]

T = TypeVar("T")

FILE_NAME: Final = "keys.json"
NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_ONLY_VARIABLE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class KeyFileError(ConfigError):
    """The key file cannot be used: others may read it (``insecure``), or it is not a JSON
    object of names and keys."""

    def __init__(self, message: str, *, file: str, insecure: bool = False) -> None:
        super().__init__(message, file=file)
        self.insecure = insecure


log = logging.getLogger("threadline.keys")
_WARNED: set[str] = set()


def keys_path() -> Path:
    """Where the keys are: ``keys.json`` beside the user's config file."""
    return user_config_dir() / FILE_NAME


def check_name(name: str) -> str:
    """A key's name: a provider's name (``openai``), in lower case; a :class:`ValueError` saying
    what a name is, else."""
    if not NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a key name: a key is named as its provider is (openai, anthropic, gemini), "
            "lower-case letters, digits, '-', '_' and '.'"
        )
    return name


def read_keys(path: Path | None = None) -> dict[str, str]:
    """The stored keys by name; ``{}`` when there is no key file. Raises :class:`KeyFileError`
    when others may read or write the file, or it is not what :func:`write_key` writes."""
    path = path or keys_path()
    try:
        with open(path, encoding="utf-8") as handle:
            _check_mode(path, os.fstat(handle.fileno()).st_mode)
            text = handle.read()
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        text = ""
    try:
        keys = json.loads(text)
    except json.JSONDecodeError:
        keys = None
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise KeyFileError(
            "not a key file: expected a JSON object of key names and keys, as `threadline keys set` writes it "
            "(remove the file and set the keys again)",
            file=str(path),
        )
    return keys


def _check_mode(path: Path, mode: int) -> None:
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"others may read or change this key file (mode {stat.S_IMODE(mode):04o}), so it is not used: "
            f"make it yours alone with `chmod 600 {path}` (or `threadline keys set NAME`, which writes it anew)",
            file=str(path),
            insecure=True,
        )


def stored_key(name: str, path: Path | None = None) -> str | None:
    """The key stored under ``name``; ``None`` when there is none (or no key file)."""
    return read_keys(path).get(name) or None


def write_key(name: str, key: str, path: Path | None = None) -> bool:
    """Store ``key`` under ``name``, over any key stored under it; the other keys are kept,
    even those another process stores at the same time (the file is locked meanwhile).
    The file is created or replaced with mode 0600 (a file whose mode was wider is repaired
    so). Returns whether the old file's mode was wider, and so was repaired."""
    path = path or keys_path()
    check_name(name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with locked(path):
        keys, repaired = _keys_to_rewrite(path)
        keys[name] = key
        _write(path, keys)
    return repaired


def delete_key(name: str, path: Path | None = None) -> bool:
    """Remove the key stored under ``name``; whether there was one."""
    path = path or keys_path()
    if not path.parent.is_dir():
        return False
    with locked(path):
        keys, _ = _keys_to_rewrite(path)
        if keys.pop(name, None) is None:
            return False
        _write(path, keys)
    return True


def _keys_to_rewrite(path: Path) -> tuple[dict[str, str], bool]:
    """The keys of the file about to be written anew, read even when its mode is too wide
    (the new file will not be); and whether it was."""
    try:
        return read_keys(path), False
    except KeyFileError as exc:
        if not exc.insecure:
            raise
        os.chmod(path, 0o600)  # it is ours: read it, then write it anew
        return read_keys(path), True


def _write(path: Path, keys: dict[str, str]) -> None:
    """Write ``keys`` whole to ``path``, with mode 0600 from the start."""
    write_atomic(path, json.dumps(dict(sorted(keys.items())), indent=2) + "\n", mode=0o600)


def unset_variable(value: object) -> str | None:
    """The variable ``value`` is made of alone (``"${OPENAI_API_KEY}"``), when it is not set
    and names no default; ``None`` else. Such an ``api_key`` counts as no key: the provider's
    environment variables and the key file are looked at, as when there is no ``api_key``."""
    match = _ONLY_VARIABLE.fullmatch(value) if isinstance(value, str) else None
    return match[1] if match and match[1] not in os.environ else None


def with_stored_key(name: str, settings: T, *, lenient: bool = False) -> T:
    """Provider ``name``'s ``settings`` with the key stored under ``name`` as their ``api_key``,
    when they are a :class:`~threadline.plugin.ProviderConfig` that has no key of its own and
    none of its environment variables is set: the key file is the last place a key is looked
    for. ``lenient``: a key file that cannot be used counts as no key (for the choice of the
    default provider, which must not stop a command that calls no provider); else it raises
    :class:`KeyFileError`."""
    from threadline.providers import ProviderConfig

    if not isinstance(settings, ProviderConfig) or settings.api_key:
        return settings
    if any(os.environ.get(variable) for variable in settings.key_variables):
        return settings
    try:
        key = stored_key(name)
    except KeyFileError as exc:
        if not lenient:
            raise
        _warn_once(exc)
        return settings
    return settings if key is None else attrs.evolve(settings, api_key=key)


def _warn_once(error: KeyFileError) -> None:
    """Say once a run why the key file was passed over, where it is only counted as no key."""
    if str(error) not in _WARNED:
        _WARNED.add(str(error))
        log.warning("%s", error)
