"""The kernel's provider contract, on both APIs, against the fake OpenAI API."""

from __future__ import annotations

import pytest
from conftest import MakeProvider

from threadline.testing import HTTPProviderContract, ProviderHarness
from threadline_openai.testing import FakeOpenAI


class TestResponsesAPI(HTTPProviderContract):
    @pytest.fixture
    def provider_harness(self, fake_api: FakeOpenAI, make_provider: MakeProvider) -> ProviderHarness:
        return ProviderHarness(
            make_provider(api="responses"),
            model="gpt-4.1-mini",
            script=fake_api.script,
            received=fake_api.last_body,
            at_url=lambda url: make_provider(api="responses", base_url=url),
        )


class TestChatCompletions(HTTPProviderContract):
    @pytest.fixture
    def provider_harness(self, fake_api: FakeOpenAI, make_provider: MakeProvider) -> ProviderHarness:
        return ProviderHarness(
            make_provider(api="chat"),
            model="gpt-4.1-mini",
            script=fake_api.script,
            received=fake_api.last_body,
            at_url=lambda url: make_provider(api="chat", base_url=url),
        )
