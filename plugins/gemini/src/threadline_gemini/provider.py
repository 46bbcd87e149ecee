"""``GeminiProvider``: threadline's provider contract on the ``google-genai`` SDK."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from typing import Any

from google import genai
from google.genai import types

from threadline.plugin import (
    AuthenticationError,
    Capabilities,
    Event,
    Request,
    Response,
    check_attachments,
    read_stream,
    translating,
)
from threadline_gemini import GeminiConfig, contents
from threadline_gemini.errors import CREDENTIALS, PROVIDER, translate


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
        return Capabilities(streaming=True, tools=True, vision=True, pdf=True)

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

    async def close(self) -> None:
        await self._client.aclose()
