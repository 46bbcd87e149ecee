"""The models: the API's list (``GET /v1/models``), and the ones the plugin knows of."""

from __future__ import annotations

import pytest
from conftest import MakeProvider

import threadline
from threadline.plugin import context_window
from threadline_openai import OpenAIConfig
from threadline_openai.models import KNOWN_MODELS
from threadline_openai.provider import CONTEXT_WINDOWS
from threadline_openai.testing import ERRORS, MODELS, FakeOpenAI, error


async def test_the_models_are_the_apis_list(make_provider: MakeProvider, fake_api: FakeOpenAI) -> None:
    assert await make_provider().list_models() == sorted(MODELS)
    request = fake_api.requests[-1]
    assert (request.method, request.path, request.headers["authorization"]) == ("GET", "/v1/models", "Bearer sk-test")


async def test_a_refused_key_is_an_authentication_error(make_provider: MakeProvider, fake_api: FakeOpenAI) -> None:
    fake_api.answer_next(error(*ERRORS["auth"]))
    with pytest.raises(threadline.AuthenticationError, match="threadline keys set openai"):
        await make_provider().list_models()


async def test_an_api_that_cannot_be_reached_is_unavailable(make_provider: MakeProvider) -> None:
    with pytest.raises(threadline.ProviderUnavailable):
        await make_provider(base_url="http://127.0.0.1:9/v1").list_models()


def test_every_known_model_has_a_context_window_and_the_default_is_known() -> None:
    provider_windows = {name: context_window(name, {}, CONTEXT_WINDOWS) for name in KNOWN_MODELS}
    assert [name for name, window in provider_windows.items() if window is None] == []
    assert OpenAIConfig().default_model in OpenAIConfig.known_models == KNOWN_MODELS
