from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fake_gemini import FakeGemini

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
from threadline_gemini import GeminiConfig
from threadline_gemini.provider import GeminiProvider

MakeProvider = Callable[..., GeminiProvider]


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as api:
        yield api


@pytest.fixture
async def make_provider(fake_api: FakeGemini) -> AsyncIterator[MakeProvider]:
    """Providers on the fake API (no SDK retries, so a failure shows at once), closed after the test."""
    made: list[GeminiProvider] = []

    def make(**config: Any) -> GeminiProvider:
        settings: dict[str, Any] = {"api_key": "gm-test", "base_url": fake_api.url, "max_retries": 0, "timeout": 5}
        made.append(GeminiProvider(GeminiConfig(**{**settings, **config})))
        return made[-1]

    yield make
    for provider in made:
        await provider.close()
