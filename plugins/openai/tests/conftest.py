from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
from threadline_openai import OpenAIConfig
from threadline_openai.provider import OpenAIProvider
from threadline_openai.testing import FakeOpenAI

MakeProvider = Callable[..., OpenAIProvider]


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as api:
        yield api


@pytest.fixture
async def make_provider(fake_api: FakeOpenAI) -> AsyncIterator[MakeProvider]:
    """Providers on the fake API (no SDK retries, so a failure shows at once), closed after the test."""
    made: list[OpenAIProvider] = []

    def make(**config: Any) -> OpenAIProvider:
        settings: dict[str, Any] = {"api_key": "sk-test", "base_url": fake_api.url, "max_retries": 0, "timeout": 5}
        made.append(OpenAIProvider(OpenAIConfig(**{**settings, **config})))
        return made[-1]

    yield make
    for provider in made:
        await provider.close()
