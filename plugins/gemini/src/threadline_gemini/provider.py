"""``GeminiProvider``: threadline's provider contract on the ``google-genai`` SDK."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from google import genai
from google.genai import types

from threadline.plugin import (
    AuthenticationError,
    Capabilities,
    Event,
    Request,
    Response,
    check_attachments,
    context_window,
    read_stream,
    translating,
)
from threadline_gemini import GeminiConfig, contents, models
from threadline_gemini.errors import CREDENTIALS, PROVIDER, translate

# input token limits, from Google's model pages; the first pattern that matches wins
CONTEXT_WINDOWS: Final[Mapping[str, int]] = {
    "gemini-1.5-pro*": 2_097_152,
    "gemini-1.5-flash*": 1_048_576,
    "gemini-2.0-*": 1_048_576,
    "gemini-2.5-*": 1_048_576,
    "gemini-3*": 1_048_576,
}


class GeminiProvider:
    """The ``gemini`` provider. Passes the full ``ProviderContract``."""

    def __init__(self, config: GeminiConfig | None = None) -> None:
        self.config = config or GeminiConfig()
        api_key = self.config.api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if api_key is None:
            raise AuthenticationError(f"no API key: set {CREDENTIALS}", provider=PROVIDER)
        http = types.HttpOptions(
            base_url=self.config.base_url,
            timeout=int(self.config.timeout * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=self.config.max_retries + 1),
        )
        self._client = genai.Client(api_key=api_key, http_options=http).aio
        self._translate = functools.partial(translate, timeout=self.config.timeout)

    def capabilities(self, model: str | None) -> Capabilities:
        name = model or self.config.default_model
        window = context_window(name, self.config.context_windows, CONTEXT_WINDOWS)
        json_output = not name.startswith("gemini-1")  # a JSON schema for the reply came with 2.0
        return Capabilities(
            streaming=True, tools=True, vision=True, pdf=True, max_context=window, structured_output=json_output
        )

    async def count_tokens(self, request: Request) -> int:
        """The input tokens ``request`` would take, counted by Gemini (``countTokens``).
        An approximation: for a count on the Gemini API the SDK takes contents only (it
        refuses a system instruction and tools), so the system instruction is counted as a
        user turn before the history, a few tokens off, and the tools are left out."""
        self._check(request)
        with translating(self._translate):
            counted = await self._client.models.count_tokens(**contents.count_arguments(request, self.config))
        return counted.total_tokens or 0

    async def complete(self, request: Request) -> Response:
        self._check(request)
        with translating(self._translate):
            return contents.response(
                await self._client.models.generate_content(**contents.call_arguments(request, self.config))
            )

    def stream(self, request: Request) -> AsyncIterator[Event]:
        async def open_stream() -> Any:
            self._check(request)
            return await self._client.models.generate_content_stream(**contents.call_arguments(request, self.config))

        return read_stream(open_stream, contents.ContentStream(), self._translate)

    def _check(self, request: Request) -> None:
        check_attachments(self.capabilities(request.model), request.messages, model=request.model, provider=PROVIDER)

    async def list_models(self) -> list[str]:
        """The models the API offers this key (see :mod:`threadline_gemini.models`)."""
        return await models.list_models(self._client, self._translate)

    async def close(self) -> None:
        await self._client.aclose()
