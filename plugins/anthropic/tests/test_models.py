"""The models: the API's list (``GET /v1/models``, in pages), and the ones the plugin knows of."""

from __future__ import annotations

import pytest
from conftest import MakeProvider
from fake_anthropic import ERRORS, MODELS, FakeAnthropic, error_body

import threadline
from threadline.plugin import context_window
from threadline.testing.wire_server import HTTPReply
from threadline_anthropic import AnthropicConfig
from threadline_anthropic.models import KNOWN_MODELS, PAGE
from threadline_anthropic.provider import CONTEXT_WINDOWS


async def test_the_models_are_the_apis_list_newest_first(make_provider: MakeProvider, fake_api: FakeAnthropic) -> None:
    assert await make_provider().list_models() == list(MODELS)
    request = fake_api.requests[-1]
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert "sk-ant-test" in request.headers.get("x-api-key", "") + request.headers.get("authorization", "")


async def test_every_page_is_read(make_provider: MakeProvider, fake_api: FakeAnthropic) -> None:
    fake_api.models = [f"claude-test-{number}" for number in range(PAGE + 5)]
    assert await make_provider().list_models() == fake_api.models
    assert [request.query.get("after_id") for request in fake_api.requests] == [None, [f"claude-test-{PAGE - 1}"]]


async def test_a_refused_key_is_an_authentication_error(make_provider: MakeProvider, fake_api: FakeAnthropic) -> None:
    status, kind, message = ERRORS["auth"]
    fake_api.answer_next(HTTPReply.json(error_body(kind, message), status))
    with pytest.raises(threadline.AuthenticationError, match="threadline keys set anthropic"):
        await make_provider().list_models()


def test_every_known_model_has_a_context_window_and_the_default_is_known() -> None:
    assert [name for name in KNOWN_MODELS if context_window(name, {}, CONTEXT_WINDOWS) is None] == []
    assert AnthropicConfig().default_model in AnthropicConfig.known_models == KNOWN_MODELS
