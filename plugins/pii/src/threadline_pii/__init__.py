"""threadline-pii: personal data never reaches the provider or the disk unless allowed.

This module only registers the middleware ``pii``; its work is in
:mod:`threadline_pii.middleware`, its detector in :mod:`threadline_pii.entities`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

import attrs
from attrs import field, frozen

from threadline.plugin import hookimpl

if TYPE_CHECKING:
    from collections.abc import Sequence

    from threadline import Message, Session, SessionManager
    from threadline.plugin import Register
    from threadline_pii.middleware import PIIMiddleware

__all__ = ["ENTITIES", "CustomEntity", "PIIConfig", "PresidioConfig", "make_middleware", "reveal"]

#: the builtin kinds of value (threadline_pii.entities has their patterns, which are only
#: compiled when a middleware is made: discovering plugins stays light)
ENTITIES = ("api_key", "email", "iban", "credit_card", "us_ssn", "ip", "phone")

Scope = Literal["provider", "storage"]


def _pattern(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    import regex  # only when a config names a pattern: discovering plugins stays light

    try:
        compiled = regex.compile(value)
    except regex.error as exc:
        raise ValueError(f"pattern {value!r} is not a regular expression Python reads: {exc}") from None
    if compiled.match(""):
        raise ValueError(f"pattern {value!r} matches the empty text; it must match a value")


@frozen
class CustomEntity:
    """One ``[[middleware.pii.custom]]`` entry: a kind of value of your own, masked as
    ``[NAME]``."""

    name: str = field(validator=attrs.validators.matches_re(r"[a-z][a-z0-9_]*"))
    pattern: str = field(validator=_pattern)


def _known_entities(_instance: object, _attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    if unknown := [name for name in value if name not in ENTITIES]:
        raise ValueError(f"unknown entities {unknown}; the builtin ones are {sorted(ENTITIES)}")


def _scope(_instance: object, _attribute: attrs.Attribute[tuple[Scope, ...]], value: tuple[str, ...]) -> None:
    if not value or any(part not in ("provider", "storage") for part in value):
        raise ValueError(f'scope must name "provider", "storage" or both, got {list(value)}')


@frozen
class PresidioConfig:
    """``[middleware.pii.presidio]``, read with ``detector = "presidio"``.

    :param entities: the kinds of value Presidio is asked for (its names: ``PERSON``,
        ``LOCATION``, ``NRP``, ``DATE_TIME``, ...); each is masked as ``[PERSON]``, named
        ``person`` in errors.
    :param model: the spaCy model Presidio reads text with: a package's name
        (``python -m spacy download en_core_web_lg``) or a model's directory.
    :param language: the language of the conversations, as the model reads it.
    :param score_threshold: the least confidence (0 to 1) of what is taken for a value.
    """

    entities: tuple[str, ...] = field(default=("PERSON", "LOCATION"), converter=tuple)
    model: str = "en_core_web_lg"
    language: str = "en"
    score_threshold: float = field(default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)])


@frozen
class PIIConfig:
    """``[middleware.pii]``.

    :param entities: the builtin kinds of value to find (all of them by default): ``email``,
        ``phone``, ``credit_card`` (Luhn-checked), ``iban`` (mod-97-checked), ``us_ssn``,
        ``ip`` (v4 and v6) and ``api_key`` (OpenAI, Anthropic, AWS, GitHub and Slack keys, JWTs).
    :param custom: kinds of value of your own, each a name and a regular expression.
    :param action: ``"mask"``: each value is replaced by its kind, ``[EMAIL]``;
        ``"pseudonymize"``: by a token that stands for it in the whole session, ``<EMAIL_1>``,
        put back to the value in the reply the user sees (streamed, in tool calls' arguments,
        with :func:`reveal`); ``"block"``: a user message holding one is refused
        (``BadRequest`` naming its kinds, nothing stored or sent), and everything else
        (replies, tool results, session records) is masked.
    :param scope: where values must not go: ``"provider"`` (every request, the system prompt
        included), ``"storage"`` (every message and session record before it is stored, so
        also every later request, the title and the hooks), or both (the default).
    :param metadata: keys of session and message metadata whose values are masked too (in
        storage: metadata is not sent to providers).
    :param detector: ``"builtin"`` (patterns and checksums, no dependency) or ``"presidio"``:
        the builtin entities and what Presidio finds (names, places; see ``presidio``),
        with ``pip install "threadline-pii[presidio]"`` and a spaCy model.
    :param presidio: ``[middleware.pii.presidio]``: what Presidio looks for, and with which model.
    """

    entities: tuple[str, ...] = field(default=ENTITIES, converter=tuple, validator=_known_entities)
    custom: tuple[CustomEntity, ...] = field(default=(), converter=tuple)
    action: Literal["mask", "pseudonymize", "block"] = "mask"
    scope: tuple[Scope, ...] = field(default=("provider", "storage"), converter=tuple, validator=_scope)
    metadata: tuple[str, ...] = field(default=(), converter=tuple)
    detector: Literal["builtin", "presidio"] = "builtin"
    presidio: PresidioConfig = field(factory=PresidioConfig)


def make_middleware(config: PIIConfig) -> PIIMiddleware:
    from threadline_pii.middleware import PIIMiddleware

    return PIIMiddleware(config)


@hookimpl
def threadline_register_middleware(register: Register) -> None:
    register("pii", make_middleware, config=PIIConfig)


@hookimpl
def threadline_startup(manager: SessionManager) -> None:
    """Give the manager's ``pii`` middleware its storage, where pseudonymize reads a session's
    tokens."""
    if (layer := _layer(manager)) is not None:
        layer.storage = manager.storage


@hookimpl
def threadline_session_deleted(session_id: str, manager: SessionManager) -> None:
    """Forget the deleted session's tokens that the ``pii`` middleware kept at hand."""
    if (layer := _layer(manager)) is not None:
        layer.forget(session_id)


def _layer(manager: SessionManager) -> PIIMiddleware | None:
    """The manager's ``pii`` middleware, if its chain names it."""
    return cast("PIIMiddleware | None", manager.middleware.get("pii"))


async def reveal(session: Session, messages: Sequence[Message] | None = None) -> list[Message]:
    """``messages`` of ``session`` (default: its whole history) with each pseudonym token put
    back to the value it stands for: what the user said and was told, as they saw it.

    With ``action = "pseudonymize"`` the storage holds ``<EMAIL_1>`` where the user wrote an
    address; a stream is restored as it goes, but ``send``'s reply and ``history()`` are
    the messages as stored."""
    from threadline_pii.pseudonyms import Pseudonyms
    from threadline_pii.rewrite import rewrite_message

    history = await session.history()
    known = Pseudonyms.of(history)
    return [rewrite_message(message, (), known.restore) for message in (history if messages is None else messages)]
