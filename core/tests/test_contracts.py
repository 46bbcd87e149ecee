"""The built-ins pass the same contract suites every plugin runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from threadline.builtins.echo import EchoConfig, EchoProvider
from threadline.builtins.memory import MemoryStorage
from threadline.testing import ProviderContract, ProviderHarness, StorageContract


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[MemoryStorage]:
        storage = MemoryStorage()
        await storage.open()
        yield storage
        await storage.close()


class TestEchoProvider(ProviderContract):
    @pytest.fixture
    async def provider_harness(self) -> AsyncIterator[ProviderHarness]:
        provider = EchoProvider(EchoConfig(chunk_size=5))
        yield ProviderHarness(provider, model="echo-1", script=provider.script)
        await provider.close()
