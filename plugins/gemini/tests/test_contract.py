"""The kernel's provider contract against the fake Gemini API."""

from __future__ import annotations

import pytest
from conftest import MakeProvider
from fake_gemini import FakeGemini

from threadline.testing import HTTPProviderContract, ProviderHarness


class TestGenerateContent(HTTPProviderContract):
    @pytest.fixture
    def provider_harness(self, fake_api: FakeGemini, make_provider: MakeProvider) -> ProviderHarness:
        return ProviderHarness(
            make_provider(),
            model="gemini-3.5-flash",
            script=fake_api.script,
            received=fake_api.last_body,
            at_url=lambda url: make_provider(base_url=url),
        )


class TestGenerateContentSigned(HTTPProviderContract):
    """The same promises when replies carry thought signatures, as thinking models' do."""

    @pytest.fixture
    def provider_harness(self, fake_api: FakeGemini, make_provider: MakeProvider) -> ProviderHarness:
        fake_api.signatures = True
        return ProviderHarness(
            make_provider(),
            model="gemini-3.5-flash",
            script=fake_api.script,
            received=fake_api.last_body,
            at_url=lambda url: make_provider(base_url=url),
        )
