"""``AnthropicProvider``: threadline's provider contract on the ``anthropic`` SDK."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import anthropic

from threadline.plugin import (
    AuthenticationError,
    Capabilities,
    Event,
    Request,
    Response,
    check_attachments,
    context_window,
    read_stream,
    send_body,
    translating,
)
from threadline_anthropic import AnthropicConfig, messages, models
from threadline_anthropic.errors import CREDENTIALS, PROVIDER, translate

# the body keys passed to the SDK by name; the rest go as extra_body
NAMED: Final = ("model", "messages", "max_tokens", "stream")
COUNT_NAMED: Final = ("model", "messages")
_TEXT_ONLY: Final = ("claude-2", "claude-instant")
# models from before structured outputs (Sonnet 4.5, Opus 4.5, Haiku 4.5; Opus 4.1 had only
# the beta): told in the prompt
_NO_JSON_OUTPUT: Final = (*_TEXT_ONLY, "claude-3", "claude-sonnet-4-0", "claude-sonnet-4-2025", "claude-opus-4-0",
                          "claude-opus-4-1", "claude-opus-4-2025")  # fmt: skip
# context windows in tokens, from Anthropic's model pages; the first pattern that matches wins
CONTEXT_WINDOWS: Final[Mapping[str, int]] = {
    "claude-opus-4-6*": 1_000_000,
    "claude-opus-4-7*": 1_000_000,
    "claude-opus-4-8*": 1_000_000,
    "claude-sonnet-4-6*": 1_000_000,
    "claude-opus-5*": 1_000_000,
    "claude-sonnet-5*": 1_000_000,
    "claude-haiku-5-5*": 1_000_000,
    "claude-fable-5*": 1_000_000,
    "claude-*": 200_000,
}


class AnthropicProvider:
    """The ``anthropic`` provider. Passes the full ``ProviderContract``."""

    def __init__(self, config: AnthropicConfig | None = None) -> None:
        self.config = config or AnthropicConfig()
        api_key = self.config.api_key or os.environ.get("ANTHROPIC_API_KEY")
        if api_key is None:
            raise AuthenticationError(f"no API key: set {CREDENTIALS}", provider=PROVIDER)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=self.config.base_url,
            timeout=self.config.timeout,
            max_retries=self.config.max_retries,
        )
        self._translate = functools.partial(translate, timeout=self.config.timeout)

    def capabilities(self, model: str | None) -> Capabilities:
        name = model or self.config.default_model
        takes_media = not name.startswith(_TEXT_ONLY)
        window = context_window(name, self.config.context_windows, CONTEXT_WINDOWS)
        return Capabilities(
            streaming=True,
            tools=True,
            vision=takes_media,
            pdf=takes_media,
            max_context=window,
            structured_output=not name.startswith(_NO_JSON_OUTPUT),
        )

    async def count_tokens(self, request: Request) -> int:
        """The input tokens ``request`` would take, counted by Anthropic
        (``POST /v1/messages/count_tokens``): its system prompt, messages, tools and
        thinking setting, as ``complete`` would send them. Free, but rate limited apart
        from messages."""
        self._check(request)
        with translating(self._translate):
            counted = await send_body(
                self._client.messages.count_tokens, messages.count_body(request, self.config), named=COUNT_NAMED
            )
        return int(counted.input_tokens)

    async def complete(self, request: Request) -> Response:
        self._check(request)
        with translating(self._translate):
            return messages.response(await self._send(request, stream=False))

    def stream(self, request: Request) -> AsyncIterator[Event]:
        async def open_stream() -> Any:
            self._check(request)
            return await self._send(request, stream=True)

        return read_stream(open_stream, messages.MessageStream(), self._translate)

    async def _send(self, request: Request, *, stream: bool) -> Any:
        """``POST /v1/messages``."""
        return await send_body(
            self._client.messages.create, messages.body(request, self.config, stream=stream), named=NAMED
        )

    def _check(self, request: Request) -> None:
        check_attachments(self.capabilities(request.model), request.messages, model=request.model, provider=PROVIDER)

    async def list_models(self) -> list[str]:
        """The models the API offers this key (see :mod:`threadline_anthropic.models`)."""
        return await models.list_models(self._client, self._translate)

    async def close(self) -> None:
        await self._client.close()
