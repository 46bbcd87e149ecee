{%- set cls = cookiecutter.__class_name -%}
"""``{{ cls }}Middleware``: logs every provider call, how long it took and the tokens it used."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from threadline.plugin import Call, CompleteNext, Done, Event, Middleware, Response, StreamNext, Usage

from {{ cookiecutter.__module_name }} import {{ cls }}Config

log = logging.getLogger("{{ cookiecutter.__module_name }}")


class {{ cls }}Middleware(Middleware):
    """The ``{{ cookiecutter.plugin_name }}`` middleware. Its log lines go to the
    ``{{ cookiecutter.__module_name }}`` logger; a stream's also says when the first chunk came."""

    def __init__(self, config: {{ cls }}Config | None = None) -> None:
        self.config = config or {{ cls }}Config()
        self.level = logging.getLevelName(self.config.level)

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        started = time.perf_counter()
        response = await next(call)
        self._log(call, time.perf_counter() - started, response.usage, "")
        return response

    async def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        started = time.perf_counter()
        first: float | None = None
        async for event in next(call):
            if first is None:
                first = time.perf_counter() - started
            if isinstance(event, Done):
                first_chunk = f", first chunk after {first * 1000:.1f} ms"
                self._log(call, time.perf_counter() - started, event.usage, first_chunk)
            yield event

    def _log(self, call: Call, seconds: float, usage: Usage, more: str) -> None:
        log.log(
            self.level,
            "%s (%s): %.1f ms, %d tokens in, %d out%s",
            call.provider,
            call.request.model or "default model",
            seconds * 1000,
            usage.input_tokens,
            usage.output_tokens,
            more,
        )
