from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fake_anthropic import FakeAnthropic

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
from threadline_anthropic import AnthropicConfig
from threadline_anthropic.provider import AnthropicProvider

MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as api:
        yield api


@pytest.fixture
async def make_provider(fake_api: FakeAnthropic) -> AsyncIterator[MakeProvider]:
    """Providers on the fake API (no SDK retries, so a failure shows at once), closed after the test."""
    made: list[AnthropicProvider] = []

    def make(**config: Any) -> AnthropicProvider:
        settings: dict[str, Any] = {"api_key": "sk-ant-test", "base_url": fake_api.url, "max_retries": 0, "timeout": 5}
        made.append(AnthropicProvider(AnthropicConfig(**{**settings, **config})))
        return made[-1]

    yield make
    for provider in made:
        await provider.close()
