"""``OpenAIProvider``: threadline's provider contract on the ``openai`` SDK."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import openai

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
from threadline_openai import OpenAIConfig, chat, models, responses
from threadline_openai.errors import CREDENTIALS, PROVIDER, previous_response_gone, translate

# OpenAI's own models that take no images (and so no PDFs); every other one takes both
_TEXT_ONLY: Final = ("gpt-3.5", "o1-mini", "o3-mini", "gpt-4-0", "gpt-4-32k")
# the body keys passed to the SDK by name; the rest go as extra_body
CHAT: Final = ("model", "messages", "stream")
RESPONSES: Final = ("model", "input", "stream")
COUNT: Final = ("model", "input")
# context windows in tokens, from OpenAI's model pages; the first pattern that matches wins
CONTEXT_WINDOWS: Final[Mapping[str, int]] = {
    "gpt-5*-chat*": 128_000,
    "gpt-5.4-mini*": 400_000,
    "gpt-5.4-nano*": 400_000,
    "gpt-5.4*": 1_050_000,
    "gpt-5.5*": 1_050_000,
    "gpt-5*": 400_000,
    "gpt-4.1*": 1_047_576,
    "gpt-4o*": 128_000,
    "gpt-4-turbo*": 128_000,
    "o1-mini*": 128_000,
    "o1-preview*": 128_000,
    "o1*": 200_000,
    "o3*": 200_000,
    "o4-mini*": 200_000,
}


class OpenAIProvider:
    """The ``openai`` provider. Passes the full ``ProviderContract`` on both APIs."""

    def __init__(self, config: OpenAIConfig | None = None) -> None:
        self.config = config or OpenAIConfig()
        api_key = self.config.api_key or os.environ.get("OPENAI_API_KEY")
        if api_key is None and self.config.base_url is None:
            raise AuthenticationError(f"no API key: set {CREDENTIALS}", provider=PROVIDER)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",  # compatible servers mostly take none
            base_url=self.config.base_url,
            organization=self.config.organization,
            project=self.config.project,
            timeout=self.config.timeout,
            max_retries=self.config.max_retries,
        )
        self._translate = functools.partial(translate, timeout=self.config.timeout)

    def capabilities(self, model: str | None) -> Capabilities:
        name = model or self.config.default_model
        official = self.config.base_url is None
        vision = self.config.vision if self.config.vision is not None else official and not name.startswith(_TEXT_ONLY)
        pdf = self.config.pdf if self.config.pdf is not None else vision and official
        native = self.config.api == "responses" and self.config.native_state
        window = context_window(name, self.config.context_windows, CONTEXT_WINDOWS)
        return Capabilities(
            streaming=True,
            tools=True,
            vision=vision,
            pdf=pdf,
            native_state=native,
            max_context=window,
            structured_output=self.config.structured_output,
        )

    async def count_tokens(self, request: Request) -> int | None:
        """The input tokens ``request`` would take, counted by OpenAI
        (``POST /responses/input_tokens``): its instructions, input, tools and reasoning
        settings, as ``complete`` would send them (after ``previous_response_id``, the new
        turn only, and OpenAI counts the stored conversation too). ``None`` with
        ``api = "chat"``: Chat Completions have no way to count."""
        if self.config.api == "chat":
            return None
        self._check(request)

        def count(previous: tuple[str, int] | None) -> Awaitable[Any]:
            payload = responses.count_body(request, self.config, previous=previous)
            return send_body(self._client.responses.input_tokens.count, payload, named=COUNT)

        with translating(self._translate):
            counted = await self._continuing(request, count)
        return int(counted.input_tokens)

    async def complete(self, request: Request) -> Response:
        self._check(request)
        with translating(self._translate):
            if self.config.api == "chat":
                return chat.response(await self._chat(request, stream=False))
            return responses.response(await self._respond(request, stream=False), request, self.config)

    def stream(self, request: Request) -> AsyncIterator[Event]:
        async def open_stream() -> Any:
            self._check(request)
            if self.config.api == "chat":
                return await self._chat(request, stream=True)
            return await self._respond(request, stream=True)

        reader = chat.ChatStream() if self.config.api == "chat" else responses.ResponseStream(request, self.config)
        return read_stream(open_stream, reader, self._translate)

    async def _chat(self, request: Request, *, stream: bool) -> Any:
        """``POST /chat/completions``."""
        return await send_body(
            self._client.chat.completions.create, chat.body(request, self.config, stream=stream), named=CHAT
        )

    async def _respond(self, request: Request, *, stream: bool) -> Any:
        """``POST /responses``."""

        def create(previous: tuple[str, int] | None) -> Awaitable[Any]:
            payload = responses.body(request, self.config, stream=stream, previous=previous)
            return send_body(self._client.responses.create, payload, named=RESPONSES)

        return await self._continuing(request, create)

    async def _continuing(self, request: Request, send: Callable[[tuple[str, int] | None], Awaitable[Any]]) -> Any:
        """``send`` the request continuing the stored conversation when there is one, and
        again with the whole history when OpenAI no longer has it."""
        previous = responses.previous_response(request, self.config)
        try:
            return await send(previous)
        except openai.APIStatusError as exc:
            if previous is None or not previous_response_gone(exc):
                raise
        return await send(None)

    def _check(self, request: Request) -> None:
        capabilities = self.capabilities(request.model)
        check_attachments(capabilities, request.messages, model=request.model, provider=PROVIDER)

    async def list_models(self) -> list[str]:
        """The models the API offers this key (see :mod:`threadline_openai.models`)."""
        return await models.list_models(self._client, self._translate)

    async def close(self) -> None:
        await self._client.close()
