"""What provider plugins share: the config keys every provider takes, the mapping of an
HTTP failure onto threadline's errors (and :func:`translating`, which applies a plugin's
mapping), and the check that a request's attachments are ones the model accepts. A provider
plugin subclasses :class:`ProviderConfig` and calls the rest."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import attrs
from attrs import field, frozen

from threadline.config import finite
from threadline.errors import (
    AuthenticationError,
    BadRequest,
    ContextTooLong,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ThreadlineError,
)

if TYPE_CHECKING:  # the model loads when a request is checked, not when a plugin's config class is defined
    from threadline.model import Capabilities, Done, Event, Message

__all__ = [
    "ProviderConfig",
    "StreamReader",
    "check_attachments",
    "context_window",
    "data_url",
    "error_for_status",
    "error_object",
    "read_stream",
    "retry_after",
    "send_body",
    "translating",
    "transport_error",
]

PDF: Final = "application/pdf"
"""The media type of a PDF ``File``."""


def windows_validator(_instance: object, _attribute: object, windows: Mapping[str, int]) -> None:
    """A ``context_windows`` table: each a model name (or pattern) and 1 or more tokens."""
    for pattern, tokens in windows.items():
        if not pattern or type(tokens) is not int or tokens < 1:
            raise ValueError(
                f"context_windows.{pattern!r} = {tokens!r}: name a model (a * matches any text) "
                "and give its window in tokens, a whole number of 1 or more"
            )


@frozen(kw_only=True)
class ProviderConfig:
    """The keys of every ``[providers.<name>]`` table.

    :ivar api_key: the API key; when unset, the provider's usual environment variable.
    :ivar base_url: where the API is (a proxy, a compatible server); unset: the provider's own.
    :ivar timeout: seconds to wait for a reply before giving up (``ProviderUnavailable``).
    :ivar max_retries: how many times the SDK itself retries a failed call (connection
        errors, 408/409/429/5xx) with backoff before the error reaches threadline.
    :ivar default_model: the model when neither the call nor the session names one.
    :ivar context_windows: context windows in tokens by model name, ``*`` matching any
        text (``{"llama3.1*" = 131072}``), before the ones the plugin knows: what
        ``Capabilities.max_context`` says for a model.
    """

    #: the environment variables the provider's SDK reads its API key from
    key_variables: ClassVar[tuple[str, ...]] = ()
    #: whether its SDK needs a key even at another ``base_url`` (a proxy of the provider's
    #: own API): ``False`` for one that talks to keyless compatible servers
    key_even_with_base_url: ClassVar[bool] = False
    #: the models the plugin knows of, the default first or among them: what ``threadline
    #: models`` lists when the provider's API cannot be asked (no key, offline)
    known_models: ClassVar[tuple[str, ...]] = ()

    api_key: str | None = field(default=None, repr=False)  # never shown
    base_url: str | None = None
    timeout: float = field(default=120.0, validator=[attrs.validators.gt(0), finite])
    max_retries: int = field(default=2, validator=attrs.validators.ge(0))
    default_model: str
    context_windows: Mapping[str, int] = field(factory=dict, validator=windows_validator)

    def ready(self) -> bool:
        """Whether the provider can be used as it is: its key is set, here or in the
        environment, or it talks to a server of the user's own (``base_url``) that needs
        none. ``threadline config check``, the chat's start and the choice of the default
        provider ask it; a provider that signs in some other way overrides it."""
        keyless_server = self.base_url is not None and not self.key_even_with_base_url
        return bool(self.api_key or keyless_server or any(os.environ.get(name) for name in self.key_variables))


def context_window(model: str, configured: Mapping[str, int], known: Mapping[str, int]) -> int | None:
    """The context window of ``model`` in tokens: the first pattern of ``configured`` (a
    provider's ``context_windows``), then of ``known`` (the plugin's table), that matches
    it (``fnmatch``: ``*`` is any text); ``None`` when none does."""
    for table in (configured, known):
        for pattern, tokens in table.items():
            if fnmatchcase(model, pattern):
                return tokens
    return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return float(lowered["retry-after-ms"]) / 1000
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime  # ~8 ms to import: only for an HTTP date

            when = parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def error_for_status(
    provider: str,
    status: int,
    message: str,
    *,
    headers: Mapping[str, str],
    credentials: str,
    context_too_long: bool = False,
    wait: float | None = None,
) -> ProviderError:
    """The threadline error for an HTTP failure. ``credentials`` says where the key is set
    (named in an authentication error); ``context_too_long`` is the provider's own verdict,
    read from its error body; ``wait`` is a retry delay the body gave, for when no header did."""
    if status in (401, 403):
        return AuthenticationError(f"{message} (HTTP {status}); check {credentials}", provider=provider)
    if status == 429:
        return RateLimited(message, provider=provider, retry_after=retry_after(headers) or wait)
    if context_too_long or status == 413:
        return ContextTooLong(message, provider=provider)
    if status >= 500:
        return ProviderUnavailable(f"{message} (HTTP {status})", provider=provider)
    return BadRequest(f"{message} (HTTP {status})", provider=provider)


def error_object(body: object) -> dict[str, Any]:
    """The ``error`` object of an API's error body (``{"error": {"message": ...}}``), or the
    body itself when it has none; ``{}`` when the body is not a JSON object."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        return dict(inner) if isinstance(inner, Mapping) else {}
    return {}


def transport_error(
    exc: BaseException,
    provider: str,
    *,
    timeout: float,
    timeouts: tuple[type[BaseException], ...],
    broken: tuple[type[BaseException], ...],
    not_json: tuple[type[BaseException], ...] = (),
) -> ProviderUnavailable | None:
    """``exc`` as ``ProviderUnavailable`` when it is one of the failures every API shares, as
    the SDK and its HTTP library name them: no reply in time (``timeouts``, checked first:
    they are often connection errors too), a connection that failed or broke off
    (``broken``), a reply that is not JSON (``not_json``, and ``json.JSONDecodeError``).
    ``None`` for any other exception."""
    where = _requested_url(exc)
    if isinstance(exc, timeouts):
        return ProviderUnavailable(
            f"no reply from {where} within {timeout:g}s ([providers.{provider}] timeout)", provider=provider
        )
    if isinstance(exc, broken):
        return ProviderUnavailable(f"the connection to {where} failed: {exc.__cause__ or exc}", provider=provider)
    if isinstance(exc, (*not_json, json.JSONDecodeError)):
        return ProviderUnavailable(f"the reply was not the JSON the API sends: {exc}", provider=provider)
    return None


def _requested_url(exc: BaseException) -> str:
    """Where the failed request went, as the SDK or its HTTP library recorded it, without its
    query or user part (which may hold a key); ``the API`` when neither did."""
    for error in (exc, exc.__cause__, exc.__context__):
        try:
            url = getattr(getattr(error, "request", None), "url", None)
        except RuntimeError:  # httpx: an error raised without its request
            continue
        if url is not None:
            parts = urlsplit(str(url))
            return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    return "the API"


def check_attachments(
    capabilities: Capabilities, messages: Iterable[Message], *, model: str | None, provider: str
) -> None:
    """Refuse, before any network call, an image or PDF the model does not take."""
    from threadline.model import File, Image

    for message in messages:
        for part in message.parts:
            if isinstance(part, Image) and not capabilities.vision:
                raise BadRequest(f"model {model or '(default)'} does not accept images", provider=provider)
            if isinstance(part, File) and part.media_type == PDF and not capabilities.pdf:
                raise BadRequest(f"model {model or '(default)'} does not accept PDF files", provider=provider)


def data_url(media_type: str, data: bytes) -> str:
    """``data:<type>;base64,...``: how several APIs take inline bytes."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


async def send_body(create: Callable[..., Awaitable[Any]], payload: Mapping[str, Any], *, named: Iterable[str]) -> Any:
    """Call an SDK method so that it sends ``payload`` as the JSON body: the ``named`` keys
    as keyword arguments (what the SDK needs to know, such as ``stream``), the rest through
    ``extra_body``, so that options passed through reach the API whether the SDK knows
    them or not. For the SDKs that take ``extra_body`` (``openai``, ``anthropic``)."""
    rest = dict(payload)
    arguments = {key: rest.pop(key) for key in named if key in rest}
    return await create(**arguments, extra_body=rest)


class StreamReader(Protocol):
    """Turns one SDK stream's chunks into threadline events, keeping what it needs between them."""

    def feed(self, chunk: Any) -> Sequence[Event]:
        """The events one chunk (an SDK stream item) makes: often one, sometimes none."""

    def finish(self) -> Done:
        """The ``Done`` event, once the SDK stream has ended."""


@contextlib.contextmanager
def translating(translate: Callable[[Exception], BaseException]) -> Iterator[None]:
    """Raise what the block raises as ``translate`` maps it (the SDK's errors as threadline's),
    chained ``from`` the original. A threadline error, an exception ``translate`` returns
    unchanged and anything not an ``Exception`` (a cancellation) pass through untouched.
    A plain context manager, so it can wrap ``await`` and ``async with``::

        with translating(self._translate):
            return response(await client.create(**body))
    """
    try:
        yield
    except ThreadlineError:
        raise
    except Exception as exc:
        translated = translate(exc)
        if translated is exc:
            raise
        raise translated from exc


async def read_stream(
    open_stream: Callable[[], Awaitable[Any]],
    reader: StreamReader,
    translate: Callable[[Exception], BaseException],
) -> AsyncIterator[Event]:
    """A provider's ``stream``: the SDK stream ``open_stream`` opens, read through ``reader``,
    its errors through ``translate`` (see :func:`translating`), closed however the reading
    ends. One generator, so each chunk costs one hand-off, not one per layer."""
    with translating(translate):
        source = await open_stream()
    try:
        with translating(translate):
            async for chunk in source:
                for event in reader.feed(chunk):
                    yield event
            yield reader.finish()
    finally:
        close = getattr(source, "aclose", None) or source.close
        await close()
