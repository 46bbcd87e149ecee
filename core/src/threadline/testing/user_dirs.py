"""A fixture that keeps a test run out of the real user's folders."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's threadline config, data or cache: ``XDG_CONFIG_HOME``,
    ``XDG_DATA_HOME`` and ``XDG_CACHE_HOME`` point into a folder of the test's own (processes it
    starts inherit them), and ``THREADLINE_CONFIG``, ``THREADLINE_PLUGINS`` and
    ``THREADLINE_TRACE_PLUGINS`` are unset. Import it into a ``conftest.py``: it applies to
    every test there."""
    home = tmp_path_factory.mktemp("home")
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(variable, str(home / folder))
    for variable in ("THREADLINE_CONFIG", "THREADLINE_PLUGINS", "THREADLINE_TRACE_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
