from __future__ import annotations

import socket

import pytest

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)


@pytest.fixture
def port() -> int:
    """A free loopback port to serve ``/metrics`` on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
