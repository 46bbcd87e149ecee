"""The personal data the builtin detector finds. Each entity is a pattern; those with a
check digit (cards, IBANs) or a fixed form (SSNs, IP addresses) must also pass it, so that an
order number or a date is left alone."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence

from attrs import frozen


@frozen
class Found:
    """One value found in a text: ``text[start:end]`` is an ``entity``."""

    entity: str
    start: int
    end: int


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn(text: str) -> bool:
    """A card number of 13 to 19 digits whose Luhn check digit is right."""
    digits = _digits(text)
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def iban(text: str) -> bool:
    """An IBAN whose mod-97 check (ISO 13616) comes out at 1."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def us_ssn(text: str) -> bool:
    """Area 001-899 but not 666, group 01-99, serial 0001-9999: the SSA never issues the rest."""
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area < "900" and group != "00" and serial != "0000"


def ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def phone(text: str) -> bool:
    return 7 <= len(_digits(text)) <= 15


def _always(_text: str) -> bool:
    return True


@frozen
class Entity:
    name: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] = _always


def _entity(name: str, patterns: Sequence[str], valid: Callable[[str], bool] = _always) -> Entity:
    return Entity(name, re.compile("|".join(f"(?:{p})" for p in patterns)), valid)


_HEX4 = r"[0-9A-Fa-f]{1,4}"

#: in the order they win when two overlap: the more specific first
BUILTIN: dict[str, Entity] = {
    entity.name: entity
    for entity in (
        _entity(
            "api_key",
            [
                r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
                r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
                r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub
                r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
                r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
                r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",  # JWTs
            ],
        ),
        _entity(
            "email",
            [r"(?<![\w.+%-])[\w.+%-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"],
        ),
        _entity("iban", [r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"], iban),
        _entity("credit_card", [r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"], luhn),
        _entity("us_ssn", [r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"], us_ssn),
        _entity(
            "ip",
            [
                r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)",
                rf"(?<![\w:])(?:{_HEX4}:){{7}}{_HEX4}(?![\w:])",
                rf"(?<![\w:])(?:(?:{_HEX4}:){{1,6}}|:):(?:{_HEX4}(?::{_HEX4}){{0,5}})?(?![\w:])",
            ],
            ip,
        ),
        _entity(
            "phone",
            [
                r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])",  # E.164, spaced or not
                r"(?<![\w(])\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?![\w-])",  # (555) 123-4567
                r"(?<![\w.-])\d{3}[.-]\d{3}[.-]\d{4}(?![\w-])(?!\.\d)",  # 555-123-4567
                r"(?<![\w.-])0\d{1,4}[ /-]\d{3,4}[ -]?\d{3,4}(?![\w-])(?!\.\d)",  # 020 7946 0958
            ],
            phone,
        ),
    )
}


def custom(name: str, pattern: str) -> Entity:
    """An entity of the config's ``[[middleware.pii.custom]]``: any match of ``pattern``."""
    return Entity(name, re.compile(pattern))


def find(text: str, entities: Iterable[Entity]) -> list[Found]:
    """The values of ``entities`` in ``text``, in order, none overlapping another: where two
    do, the one that starts first wins, then the longer, then the entity named first."""
    candidates = [
        (match.start(), -(match.end() - match.start()), rank, Found(entity.name, match.start(), match.end()))
        for rank, entity in enumerate(entities)
        for match in entity.pattern.finditer(text)
        if match.end() > match.start() and entity.valid(match.group())
    ]
    found: list[Found] = []
    for *_, candidate in sorted(candidates, key=lambda c: c[:3]):
        if not found or candidate.start >= found[-1].end:
            found.append(candidate)
    return found
