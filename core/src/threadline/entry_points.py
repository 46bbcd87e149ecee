"""The ``threadline`` entry points of the installed distributions, remembered between runs.

Importing ``importlib.metadata`` and reading every distribution's metadata is most of a
command's start-up (about 55 ms of ``threadline plugins`` on the project machine). The scan's
result is kept in a small JSON file in the user's cache directory, valid while no directory
on ``sys.path`` has changed: installing, upgrading or removing a distribution adds or removes
a ``.dist-info`` directory, which changes its parent's modification time. A cache that cannot
be read or written is ignored; the scan is the truth.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import zlib
from pathlib import Path
from typing import Any, Final

from attrs import frozen

GROUP: Final = "threadline"
_FORMAT: Final = 1


@frozen
class InstalledPlugin:
    """One entry point of the ``threadline`` group: ``name = module:attribute``."""

    name: str
    value: str
    distribution: str | None
    version: str | None

    def load(self) -> Any:
        """Import the module the entry point names and return the object it names."""
        module, _, attribute = self.value.partition(":")
        found: Any = importlib.import_module(module.strip())
        for part in filter(None, attribute.strip().split(".")):
            found = getattr(found, part)
        return found


def installed_plugins() -> list[InstalledPlugin]:
    """Every ``threadline`` entry point, sorted by name (the first of a duplicated name wins)."""
    key = _sys_path_state()
    cache = _cache_file()
    try:
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored["key"] == key:
            return [InstalledPlugin(*entry) for entry in stored["plugins"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    plugins = _scan()
    _store(cache, {"key": key, "plugins": [[p.name, p.value, p.distribution, p.version] for p in plugins]})
    return plugins


def _scan() -> list[InstalledPlugin]:
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
        dist = ep.dist
        found.append(
            InstalledPlugin(ep.name, ep.value, dist.metadata["Name"] if dist else None, dist.version if dist else None)
        )
    return found


def _sys_path_state() -> list[Any]:
    """What the scan's result depends on: the interpreter and each ``sys.path`` directory
    with its modification time."""
    state: list[Any] = [_FORMAT, sys.executable, sys.version]
    for entry in sys.path:
        try:
            state.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            state.append([entry, None])
    return state


def _cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "threadline"
    return base / f"entry-points-{zlib.crc32(sys.prefix.encode()):08x}.json"


def _store(cache: Path, data: dict[str, Any]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(data), encoding="utf-8")
        os.replace(partial, cache)
    except OSError:
        pass  # a read-only home: every run scans
