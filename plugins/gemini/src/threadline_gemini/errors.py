"""The ``google-genai`` SDK's exceptions as threadline's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx2
from google.genai import errors as genai_errors

from threadline.plugin import error_for_status, error_object, transport_error

PROVIDER: Final = "gemini"
CREDENTIALS: Final = (
    "api_key in [providers.gemini], the GEMINI_API_KEY environment variable or `threadline keys set gemini`"
)
_BAD_KEY: Final = {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"}


def translate(exc: BaseException, timeout: float) -> BaseException:
    """``exc`` as a threadline error when it is the SDK's or its transport's; else unchanged."""
    if isinstance(exc, genai_errors.APIError):
        error = error_object(exc.details)
        details = [d for d in error.get("details", ()) if isinstance(d, Mapping)]
        status = exc.code or 500
        if status == 400 and any(d.get("reason") in _BAD_KEY for d in details):
            status = 401  # the Gemini API refuses a bad key as a 400
        message = str(error.get("message") or exc.message or exc)
        return error_for_status(
            PROVIDER,
            status,
            message,
            headers=exc.response.headers if exc.response is not None else {},
            credentials=CREDENTIALS,
            context_too_long="exceeds the maximum number of tokens" in message,
            wait=_retry_delay(details),
        )
    transport = transport_error(
        exc,
        PROVIDER,
        timeout=timeout,
        timeouts=(httpx2.TimeoutException,),
        broken=(httpx2.HTTPError,),
        not_json=(genai_errors.UnknownApiResponseError,),
    )
    return exc if transport is None else transport


def _retry_delay(details: list[Mapping[str, Any]]) -> float | None:
    """The ``retryDelay`` of a ``google.rpc.RetryInfo`` detail (``"37s"``), in seconds."""
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                return None
    return None
