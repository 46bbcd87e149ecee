"""threadline-openai: OpenAI's models through the Responses API or Chat Completions, and any
OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) through ``base_url``.

This module only registers the plugin; the ``openai`` SDK is imported when a provider is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from attrs import frozen

from threadline.plugin import ProviderConfig, hookimpl
from threadline_openai.models import KNOWN_MODELS

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_openai.provider import OpenAIProvider

__all__ = ["OpenAIConfig", "make_provider"]


@frozen(kw_only=True)
class OpenAIConfig(ProviderConfig):
    """``[providers.openai]``: the keys every provider takes (``api_key``, else
    ``OPENAI_API_KEY``; ``base_url``; ``timeout``; ``max_retries``; ``default_model``), and:

    :param organization: the OpenAI organization to bill (else ``OPENAI_ORG_ID``).
    :param project: the OpenAI project (else ``OPENAI_PROJECT_ID``).
    :param api: ``responses`` (the default) or ``chat`` (Chat Completions: what
        OpenAI-compatible servers speak).
    :param native_state: with the Responses API, keep the conversation on OpenAI's side
        (``previous_response_id``) and send only each new turn.
    :param vision: whether the models take images; unset: known for OpenAI's own models,
        assumed not for a server at another ``base_url``.
    :param pdf: whether the models take PDF files; unset: as for ``vision``.
    :param structured_output: whether to ask for ``send(output=...)`` with a JSON schema
        (``response_format``, or the Responses API's ``text.format``); ``false`` for a
        compatible server that has none: the schema goes in the system prompt instead.
    """

    key_variables: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    known_models: ClassVar[tuple[str, ...]] = KNOWN_MODELS

    default_model: str = "gpt-4.1-mini"
    organization: str | None = None
    project: str | None = None
    api: Literal["responses", "chat"] = "responses"
    native_state: bool = True
    vision: bool | None = None
    pdf: bool | None = None
    structured_output: bool = True


def make_provider(config: OpenAIConfig) -> OpenAIProvider:
    from threadline_openai.provider import OpenAIProvider

    return OpenAIProvider(config)


@hookimpl
def threadline_register_providers(register: Register) -> None:
    register("openai", make_provider, config=OpenAIConfig)
