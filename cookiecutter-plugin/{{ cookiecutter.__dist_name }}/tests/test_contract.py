{%- set cls = cookiecutter.__class_name -%}
{%- set module = cookiecutter.__module_name -%}
"""The kernel's contract for every {{ cookiecutter.kind }}, run against this one."""

from __future__ import annotations
{% if cookiecutter.kind == "provider" %}
import pytest
from threadline.testing import ProviderContract, ProviderHarness

from {{ module }} import {{ cls }}Config
from {{ module }}.provider import {{ cls }}Provider


class Test{{ cls }}Provider(ProviderContract):
    @pytest.fixture
    def provider_harness(self) -> ProviderHarness:
        provider = {{ cls }}Provider({{ cls }}Config())
        return ProviderHarness(provider, model=None, script=provider.script, received=lambda: repr(provider.requests))
{% elif cookiecutter.kind == "storage" %}
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from threadline.testing import StorageContract

from {{ module }} import {{ cls }}Config
from {{ module }}.storage import {{ cls }}Storage


class Test{{ cls }}Storage(StorageContract):
    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[{{ cls }}Storage]:
        storage = {{ cls }}Storage({{ cls }}Config(path=tmp_path / "sessions.jsonl"))
        await storage.open()
        yield storage
        await storage.close()
{% endif -%}
