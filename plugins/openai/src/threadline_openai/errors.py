"""The ``openai`` SDK's exceptions as threadline's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx2
import openai

from threadline.plugin import (
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    error_for_status,
    error_object,
    transport_error,
)

PROVIDER: Final = "openai"
CREDENTIALS: Final = (
    "api_key in [providers.openai], the OPENAI_API_KEY environment variable or `threadline keys set openai`"
)
_CONTEXT_CODES: Final = {"context_length_exceeded", "string_above_max_length"}


def translate(exc: BaseException, timeout: float) -> BaseException:
    """``exc`` as a threadline error when it is the SDK's or its transport's; else unchanged."""
    if isinstance(exc, openai.APIStatusError):
        detail = error_object(exc.body)
        message = detail.get("message") or exc.message
        context = detail.get("code") in _CONTEXT_CODES or "context length" in message.lower()
        return error_for_status(
            PROVIDER,
            exc.status_code,
            message,
            headers=exc.response.headers,
            credentials=CREDENTIALS,
            context_too_long=context,
        )
    transport = transport_error(
        exc,
        PROVIDER,
        timeout=timeout,
        timeouts=(openai.APITimeoutError, httpx2.TimeoutException),
        broken=(openai.APIConnectionError, httpx2.HTTPError),
        not_json=(openai.APIResponseValidationError,),
    )
    if transport is not None:
        return transport
    if isinstance(exc, openai.APIError):  # an error sent inside a stream
        return stream_error(error_object(exc.body) or {"message": exc.message})
    return exc


def stream_error(error: Mapping[str, Any]) -> ProviderError:
    """An error the API reported inside a 200 response (a stream's ``error`` event, a
    ``response.failed``), by its ``code``."""
    code = str(error.get("code") or error.get("type") or "")
    message = str(error.get("message") or code or "the API reported an error")
    if code in _CONTEXT_CODES:
        return error_for_status(PROVIDER, 400, message, headers={}, credentials=CREDENTIALS, context_too_long=True)
    if code in ("rate_limit_exceeded", "insufficient_quota"):
        return RateLimited(message, provider=PROVIDER)
    if code in ("invalid_prompt", "invalid_request_error", "invalid_image", "invalid_request"):
        return error_for_status(PROVIDER, 400, message, headers={}, credentials=CREDENTIALS)
    return ProviderUnavailable(message, provider=PROVIDER)


def previous_response_gone(exc: BaseException) -> bool:
    """Whether the call failed because the ``previous_response_id`` it named is gone."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 404):
        return False
    detail = error_object(exc.body)
    return detail.get("param") == "previous_response_id" or detail.get("code") == "previous_response_not_found"
