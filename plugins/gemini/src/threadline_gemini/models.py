"""The models: the ones this plugin knows of (listed when the API cannot be asked), and the
API's own list (``models.list``: ``GET /v1beta/models``, in pages), those that generate
content. Importing this module imports no SDK: the client comes from the provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from threadline.plugin import translating

__all__ = ["KNOWN_MODELS", "list_models"]

#: Google's Gemini models, from its model pages, newest first
KNOWN_MODELS: Final = (
    "gemini-3.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
)
#: the method a model must support to answer a conversation
GENERATE: Final = "generateContent"


async def list_models(client: Any, translate: Callable[[Exception], BaseException]) -> list[str]:
    """The names ``models.list`` gives of the models that generate content, without their
    ``models/`` prefix (``client``: a ``genai.Client(...).aio``)."""
    with translating(translate):
        listed = [model async for model in await client.models.list()]
    return [
        model.name.removeprefix("models/")
        for model in listed
        if model.name and GENERATE in (model.supported_actions or [GENERATE])
    ]
