"""The ``openai`` SDK's exceptions as threadline's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import httpx2
import openai

from threadline.errors import ProviderError, ProviderUnavailable, RateLimited
from threadline.providers import error_for_status

PROVIDER: Final = "openai"
CREDENTIALS: Final = "api_key in [providers.openai] or the OPENAI_API_KEY environment variable"
_CONTEXT_CODES: Final = {"context_length_exceeded", "string_above_max_length"}


def translate(exc: BaseException, timeout: float) -> BaseException:
    """``exc`` as a threadline error when it is the SDK's or its transport's; else unchanged."""
    if isinstance(exc, openai.APIStatusError):
        detail = _detail(exc.body)
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
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderUnavailable(f"no reply within {timeout:g}s ([providers.openai] timeout)", provider=PROVIDER)
    if isinstance(exc, openai.APIConnectionError | httpx2.HTTPError):
        return ProviderUnavailable(f"the connection to the API failed: {exc.__cause__ or exc}", provider=PROVIDER)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        return ProviderUnavailable(f"the reply was not the JSON the API sends: {exc}", provider=PROVIDER)
    if isinstance(exc, openai.APIError):  # an error sent inside a stream
        return stream_error(_detail(exc.body) or {"message": exc.message})
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
    detail = _detail(exc.body)
    return detail.get("param") == "previous_response_id" or detail.get("code") == "previous_response_not_found"


def _detail(body: object) -> dict[str, Any]:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        return dict(inner) if isinstance(inner, Mapping) else {}
    return {}
