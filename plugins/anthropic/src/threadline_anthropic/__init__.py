"""threadline-anthropic: Claude through Anthropic's Messages API.

This module only registers the plugin; the ``anthropic`` SDK is imported when a provider is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import attrs
from attrs import field, frozen

from threadline.plugin import ProviderConfig, hookimpl
from threadline_anthropic.models import KNOWN_MODELS

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_anthropic.provider import AnthropicProvider

__all__ = ["AnthropicConfig", "make_provider"]


@frozen(kw_only=True)
class AnthropicConfig(ProviderConfig):
    """``[providers.anthropic]``: the keys every provider takes (``api_key``, else
    ``ANTHROPIC_API_KEY``; ``base_url``; ``timeout``; ``max_retries``; ``default_model``), and:

    :param max_tokens: the reply's length limit when a call sets none (the API needs one).
    :param prompt_caching: mark the system prompt and the history before the newest turn
        for Anthropic's prompt cache (``cache_control``), so a long conversation's earlier
        turns are read from the cache at a tenth of the price.
    :param thinking: extended thinking: ``off`` (the default), ``adaptive`` (the model
        decides how much to think: what newer models want) or ``enabled`` (with
        ``thinking_budget``). Thinking blocks are kept with the reply and sent back to
        Anthropic on the next turn, as the API requires; never to another provider.
    :param thinking_budget: with ``thinking = "enabled"``, the tokens to think in (at least
        1024, and under ``max_tokens``).
    """

    key_variables: ClassVar[tuple[str, ...]] = ("ANTHROPIC_API_KEY",)
    key_even_with_base_url: ClassVar[bool] = True  # the SDK refuses to start without one
    known_models: ClassVar[tuple[str, ...]] = KNOWN_MODELS

    default_model: str = "claude-sonnet-4-6"
    max_tokens: int = field(default=8192, validator=attrs.validators.ge(1))
    prompt_caching: bool = False
    thinking: Literal["off", "adaptive", "enabled"] = "off"
    thinking_budget: int = field(default=4096, validator=attrs.validators.ge(1024))


def make_provider(config: AnthropicConfig) -> AnthropicProvider:
    from threadline_anthropic.provider import AnthropicProvider

    return AnthropicProvider(config)


@hookimpl
def threadline_register_providers(register: Register) -> None:
    register("anthropic", make_provider, config=AnthropicConfig)
