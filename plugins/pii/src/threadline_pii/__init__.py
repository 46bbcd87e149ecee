"""threadline-pii: personal data never reaches the provider or the disk unless allowed.

This module only registers the middleware ``pii``; its work is in
:mod:`threadline_pii.middleware`, its detector in :mod:`threadline_pii.entities`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

import attrs
from attrs import field, frozen

from threadline.plugin import hookimpl

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_pii.middleware import PIIMiddleware

__all__ = ["ENTITIES", "CustomEntity", "PIIConfig", "make_middleware"]

#: the builtin kinds of value (threadline_pii.entities has their patterns, which are only
#: compiled when a middleware is made: discovering plugins stays light)
ENTITIES = ("api_key", "email", "iban", "credit_card", "us_ssn", "ip", "phone")

Scope = Literal["provider", "storage"]


def _pattern(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    try:
        compiled = re.compile(value)
    except re.error as exc:
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
class PIIConfig:
    """``[middleware.pii]``.

    :param entities: the builtin kinds of value to find (all of them by default): ``email``,
        ``phone``, ``credit_card`` (Luhn-checked), ``iban`` (mod-97-checked), ``us_ssn``,
        ``ip`` (v4 and v6) and ``api_key`` (OpenAI, Anthropic, AWS, GitHub and Slack keys, JWTs).
    :param custom: kinds of value of your own, each a name and a regular expression.
    :param action: ``"mask"``: each value is replaced by its kind, ``[EMAIL]``; ``"block"``: a
        user message holding one is refused (``BadRequest`` naming its kinds, nothing stored
        or sent), and everything else (replies, tool results, session records) is masked.
    :param scope: where values must not go: ``"provider"`` (every request, the system prompt
        included), ``"storage"`` (every message and session record before it is stored, so
        also every later request, the title and the hooks), or both (the default).
    :param metadata: keys of session and message metadata whose values are masked too (in
        storage: metadata is not sent to providers).
    """

    entities: tuple[str, ...] = field(default=ENTITIES, converter=tuple, validator=_known_entities)
    custom: tuple[CustomEntity, ...] = field(default=(), converter=tuple)
    action: Literal["mask", "block"] = "mask"
    scope: tuple[Scope, ...] = field(default=("provider", "storage"), converter=tuple, validator=_scope)
    metadata: tuple[str, ...] = field(default=(), converter=tuple)


def make_middleware(config: PIIConfig) -> PIIMiddleware:
    from threadline_pii.middleware import PIIMiddleware

    return PIIMiddleware(config)


@hookimpl
def threadline_register_middleware(register: Register) -> None:
    register("pii", make_middleware, config=PIIConfig)
