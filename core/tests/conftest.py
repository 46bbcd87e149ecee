from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline import SessionManager
from threadline.builtins.echo import EchoProvider
from threadline.builtins.memory import MemoryStorage
from threadline.testing import EventRecorder, isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path where tests "install" plugin distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A threadline.toml for the command line: the echo provider, memory storage."""
    path = tmp_path / "threadline.toml"
    path.write_text('[defaults]\nprovider = "echo"\n[storage]\nbackend = "memory"\n')
    return path


@pytest.fixture
def only_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load only the kernel's own plugins, whatever else is installed beside it."""
    monkeypatch.setenv("THREADLINE_PLUGINS", "echo,memory")


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
async def manager(recorder: EventRecorder) -> AsyncIterator[SessionManager]:
    async with SessionManager(storage=MemoryStorage(), plugins=[recorder]) as tl:
        yield tl


@pytest.fixture
def echo(manager: SessionManager) -> EchoProvider:
    provider = manager.provider("echo")
    assert isinstance(provider, EchoProvider)
    return provider
