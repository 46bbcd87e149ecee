"""threadline-gemini: Google's Gemini models through the Gemini API (``google-genai``).

This module only registers the plugin; the ``google-genai`` SDK is imported when a provider is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

from threadline.plugin import ProviderConfig, hookimpl
from threadline_gemini.models import KNOWN_MODELS

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_gemini.provider import GeminiProvider

__all__ = ["GeminiConfig", "make_provider"]


@frozen(kw_only=True)
class GeminiConfig(ProviderConfig):
    """``[providers.gemini]``: the keys every provider takes (``api_key``, else
    ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``; ``base_url``; ``timeout``; ``max_retries``;
    ``default_model``)."""

    key_variables: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    key_even_with_base_url: ClassVar[bool] = True  # the SDK refuses to start without one
    known_models: ClassVar[tuple[str, ...]] = KNOWN_MODELS

    default_model: str = "gemini-3.5-flash"


def make_provider(config: GeminiConfig) -> GeminiProvider:
    from threadline_gemini.provider import GeminiProvider

    return GeminiProvider(config)


@hookimpl
def threadline_register_providers(register: Register) -> None:
    register("gemini", make_provider, config=GeminiConfig)
