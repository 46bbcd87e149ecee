"""The kernel's provider contract against the fake Anthropic API."""

from __future__ import annotations

import pytest
from conftest import MakeProvider
from fake_anthropic import FakeAnthropic

from threadline.testing import HTTPProviderContract, ProviderHarness


class TestMessagesAPI(HTTPProviderContract):
    @pytest.fixture
    def provider_harness(self, fake_api: FakeAnthropic, make_provider: MakeProvider) -> ProviderHarness:
        return ProviderHarness(
            make_provider(),
            model="claude-sonnet-4-6",
            script=fake_api.script,
            received=fake_api.last_body,
            at_url=lambda url: make_provider(base_url=url),
        )


class TestMessagesAPIThinking(HTTPProviderContract):
    """The same promises with extended thinking on: thinking blocks come first in every reply."""

    @pytest.fixture
    def provider_harness(self, fake_api: FakeAnthropic, make_provider: MakeProvider) -> ProviderHarness:
        fake_api.thinking = "Let me think about this step by step."
        return ProviderHarness(
            make_provider(thinking="adaptive"),
            model="claude-sonnet-4-6",
            script=fake_api.script,
            received=fake_api.last_body,
            at_url=lambda url: make_provider(thinking="adaptive", base_url=url),
        )
