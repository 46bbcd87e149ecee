"""Plugin discovery remembers the entry points between runs, and forgets them as soon as a
distribution is installed or removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugins import PROVIDER, install

from threadline.entry_points import _cache_file, installed_plugins

PROBE = """
import json, sys
from threadline.entry_points import installed_plugins
names = [plugin.name for plugin in installed_plugins()]
print(json.dumps({"names": names, "scanned": "importlib.metadata" in sys.modules}))
"""


def probe(env: dict[str, str]) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    result: dict[str, object] = json.loads(run.stdout)
    return result


def test_a_second_run_reads_the_cache_without_importlib_metadata(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    first, second = probe(env), probe(env)
    assert first["scanned"] is True and second["scanned"] is False
    assert first["names"] == second["names"] and {"echo", "memory"} <= set(second["names"])  # type: ignore[arg-type]


def test_installing_a_plugin_is_seen_at_once(site: Path) -> None:
    before = [p.name for p in installed_plugins()]
    install(site, "parrot", PROVIDER.format(provider="parrot"))
    after = {p.name: p for p in installed_plugins()}
    assert "parrot" not in before and after["parrot"].distribution == "threadline-test-parrot"
    assert after["parrot"].load().__name__ == "tl_test_parrot"
    (site / "threadline_test_parrot-1.2.3.dist-info" / "entry_points.txt").unlink()
    (site / "threadline_test_parrot-1.2.3.dist-info" / "METADATA").unlink()
    (site / "threadline_test_parrot-1.2.3.dist-info").rmdir()
    assert "parrot" not in [p.name for p in installed_plugins()]


@pytest.mark.parametrize("content", [b"\xff\xfe not json", b'{"key": 1}', b'{"key": [], "plugins": 3}', b""])
def test_a_damaged_cache_is_scanned_again_and_rewritten(content: bytes) -> None:
    expected = installed_plugins()
    cache = _cache_file()
    cache.write_bytes(content)
    assert installed_plugins() == expected
    assert json.loads(cache.read_text())["plugins"]


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert {"echo", "memory"} <= {p.name for p in installed_plugins()}
