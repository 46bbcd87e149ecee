"""The models: the ones this plugin knows of (listed when the API cannot be asked), and the
API's own list (``GET /v1/models``, newest first, in pages). Importing this module imports no
SDK: the client comes from the provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from threadline.plugin import translating

__all__ = ["KNOWN_MODELS", "list_models"]

#: Anthropic's models, from its model pages, newest first
KNOWN_MODELS: Final = (
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-1",
)
#: models a page of ``GET /v1/models`` holds (the API allows 1 to 1000)
PAGE: Final = 1000


async def list_models(client: Any, translate: Callable[[Exception], BaseException]) -> list[str]:
    """The ids ``GET /v1/models`` gives, newest first, every page (``client``: an
    ``anthropic.AsyncAnthropic``)."""
    with translating(translate):
        return [model.id async for model in client.models.list(limit=PAGE)]
