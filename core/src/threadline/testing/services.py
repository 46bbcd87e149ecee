"""Tests that need a server running beside them (Redis, PostgreSQL)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def server_missing(message: str) -> NoReturn:
    """End a test whose server is not reachable: skipped on a developer's machine, failed in
    CI (``CI`` set), where a missing server must never pass as a skip. ``message`` says which
    server was looked for where, and how to point the tests at another."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
