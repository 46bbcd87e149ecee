"""Start-up stays light: importing threadline (threadline.sync too) and discovering plugins imports no SDK or driver,
and the commands that only list things (``--help``, ``plugins``) load no session machinery."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import threadline
import threadline.plugin

HEAVY = [
    "openai", "anthropic", "google.genai", "httpx", "httpx2", "pydantic",
    "aiosqlite", "sqlite3", "redis", "asyncpg", "psycopg", "prompt_toolkit",
]  # fmt: skip
SESSION_MACHINERY = ["asyncio", "cattrs", "threadline.model", "threadline.manager", "threadline.session"]

PROBE = """
import json, sys
import threadline, threadline.sync
manager = threadline.SessionManager()
threadline.sync.SessionManager().close()
from threadline.cli import cli
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""

COMMAND = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(m for m in {modules} if m in sys.modules)), file=sys.stderr))
from threadline.cli import main
main({argv})
"""


def test_import_and_discovery_load_no_sdk_or_driver() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["config", "path"]])
def test_listing_commands_load_no_session_machinery(argv: list[str]) -> None:
    modules = SESSION_MACHINERY + HEAVY
    result = subprocess.run(
        [sys.executable, "-c", COMMAND.format(modules=modules, argv=argv)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.splitlines()[-1]) == []


def test_import_threadline_loads_nothing_it_exports_until_asked() -> None:
    code = "import sys, threadline; print(sorted(m for m in sys.modules if m.startswith('threadline')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['threadline']"


@pytest.mark.parametrize("module", [threadline, threadline.plugin])
def test_every_lazy_export_resolves_and_all_lists_them(module: object) -> None:
    names = set(module.__all__)  # type: ignore[attr-defined]
    assert names - {"__version__"} == set(module._EXPORTS)  # type: ignore[attr-defined]
    for name in names:
        assert getattr(module, name) is not None, name
