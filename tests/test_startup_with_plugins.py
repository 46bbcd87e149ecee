"""Start-up with every first-party plugin installed (the kernel's own start-up test runs where
only the kernel is): discovery and the listing commands import no SDK, driver or data model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = [
    "openai", "anthropic", "google.genai", "httpx", "httpx2", "pydantic", "aiosqlite", "sqlite3", "redis",
    "asyncio", "cattrs", "threadline.model",
]  # fmt: skip

COMMAND = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(m for m in {modules} if m in sys.modules)), file=sys.stderr))
from threadline.cli import main
main({argv})
"""


@pytest.mark.parametrize("argv", [["--help"], ["plugins"]])
def test_listing_with_every_plugin_installed_imports_nothing_heavy(argv: list[str]) -> None:
    run = subprocess.run(
        [sys.executable, "-c", COMMAND.format(modules=HEAVY, argv=argv)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    if argv == ["plugins"]:  # every first-party plugin was loaded, not skipped
        loaded = {line.split()[0] for line in run.stdout.splitlines() if line.endswith(" loaded")}
        assert {"sqlite", "redis", "openai", "anthropic", "gemini"} <= loaded
    assert json.loads(run.stderr.splitlines()[-1]) == []
