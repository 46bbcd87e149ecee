"""The ``anthropic`` SDK's exceptions as threadline's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import anthropic
import httpx2

from threadline.plugin import ProviderError, RateLimited, error_for_status, error_object, transport_error

PROVIDER: Final = "anthropic"
CREDENTIALS: Final = (
    "api_key in [providers.anthropic], the ANTHROPIC_API_KEY environment variable or `threadline keys set anthropic`"
)


def translate(exc: BaseException, timeout: float) -> BaseException:
    """``exc`` as a threadline error when it is the SDK's or its transport's; else unchanged."""
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code < 400:  # an error event mid-stream
        return stream_error(error_object(exc.body) or {"message": exc.message})
    if isinstance(exc, anthropic.APIStatusError):
        detail = error_object(exc.body)
        message = str(detail.get("message") or exc.message)
        return error_for_status(
            PROVIDER,
            exc.status_code,
            message,
            headers=exc.response.headers,
            credentials=CREDENTIALS,
            context_too_long=_too_long(message),
        )
    transport = transport_error(
        exc,
        PROVIDER,
        timeout=timeout,
        timeouts=(anthropic.APITimeoutError, httpx2.TimeoutException),
        broken=(anthropic.APIConnectionError, httpx2.HTTPError),
        not_json=(anthropic.APIResponseValidationError,),
    )
    return exc if transport is None else transport


def stream_error(error: Mapping[str, Any]) -> ProviderError:
    """An ``error`` event inside a stream, by its ``type``."""
    kind = str(error.get("type") or "")
    message = str(error.get("message") or kind or "the API reported an error")
    status = {"rate_limit_error": 429, "invalid_request_error": 400, "authentication_error": 401,
              "permission_error": 403, "request_too_large": 413}.get(kind, 529)  # fmt: skip
    if status == 429:
        return RateLimited(message, provider=PROVIDER)
    return error_for_status(
        PROVIDER, status, message, headers={}, credentials=CREDENTIALS, context_too_long=_too_long(message)
    )


def _too_long(message: str) -> bool:
    return "prompt is too long" in message or "context window" in message or "too many tokens" in message
