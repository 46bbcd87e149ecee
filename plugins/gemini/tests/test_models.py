"""The models: the API's list (``models.list``, in pages) of those that generate content,
and the ones the plugin knows of."""

from __future__ import annotations

import pytest
from conftest import MakeProvider
from fake_gemini import ERRORS, FakeGemini, error

import threadline
from threadline.plugin import context_window
from threadline_gemini import GeminiConfig
from threadline_gemini.models import KNOWN_MODELS
from threadline_gemini.provider import CONTEXT_WINDOWS


async def test_the_models_are_the_apis_that_generate_content(make_provider: MakeProvider, fake_api: FakeGemini) -> None:
    assert await make_provider().list_models() == ["gemini-2.5-flash", "gemini-2.5-flash-preview-09-2025"]
    request = fake_api.requests[-1]
    assert request.method == "GET" and request.path in ("/v1/models", "/v1beta/models")
    assert request.headers["x-goog-api-key"] == "gm-test"


async def test_every_page_is_read(make_provider: MakeProvider, fake_api: FakeGemini) -> None:
    fake_api.models = {f"models/gemini-test-{number}": ["generateContent"] for number in range(120)}
    assert await make_provider().list_models() == [f"gemini-test-{number}" for number in range(120)]
    assert len(fake_api.requests) > 1


async def test_a_refused_key_is_an_authentication_error(make_provider: MakeProvider, fake_api: FakeGemini) -> None:
    fake_api.answer_next(error(*ERRORS["auth"]))
    with pytest.raises(threadline.AuthenticationError, match="threadline keys set gemini"):
        await make_provider().list_models()


def test_every_known_model_has_a_context_window_and_the_default_is_known() -> None:
    assert [name for name in KNOWN_MODELS if context_window(name, {}, CONTEXT_WINDOWS) is None] == []
    assert GeminiConfig().default_model in GeminiConfig.known_models == KNOWN_MODELS
