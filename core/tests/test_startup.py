"""Start-up stays light: importing threadline and discovering plugins imports no SDK or driver."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["openai", "anthropic", "google.genai", "httpx", "aiosqlite", "sqlite3", "redis", "asyncpg", "psycopg"]

PROBE = """
import json, sys
import threadline
manager = threadline.SessionManager()
from threadline.cli import cli
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""


def test_import_and_discovery_load_no_sdk_or_driver() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
