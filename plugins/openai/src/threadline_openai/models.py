"""The models: the ones this plugin knows of (listed when the API cannot be asked), and the
API's own list (``GET /v1/models``, which OpenAI-compatible servers serve too). Importing
this module imports no SDK: the client comes from the provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from threadline.plugin import translating

__all__ = ["KNOWN_MODELS", "list_models"]

#: OpenAI's chat models, from its model pages, newest first
KNOWN_MODELS: Final = (
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
)


async def list_models(client: Any, translate: Callable[[Exception], BaseException]) -> list[str]:
    """The ids ``GET /models`` gives, sorted (``client``: an ``openai.AsyncOpenAI``)."""
    with translating(translate):
        return sorted([model.id async for model in client.models.list()])
