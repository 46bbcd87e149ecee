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


#: the first digits of the card schemes' numbers (Visa, Mastercard, Amex, Discover, Diners,
#: JCB, UnionPay, Maestro): a 13-digit timestamp or an order id that passes Luhn is no card
_CARD_PREFIX = re.compile(r"4|5[0-5]|2[2-7]|3[0-8]|6[0-9]")


def luhn(text: str) -> bool:
    """A card number of 13 to 19 digits whose Luhn check digit is right."""
    digits = _digits(text)
    if not 13 <= len(digits) <= 19:
        return False
    return _luhn_sum(digits) % 10 == 0


def card(text: str) -> bool:
    """A card number: a scheme's first digits, 13 to 19 digits, the Luhn check right."""
    return bool(_CARD_PREFIX.match(_digits(text))) and luhn(text)


def _luhn_sum(digits: str) -> int:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total


def iban(text: str) -> bool:
    """An IBAN whose mod-97 check (ISO 13616) comes out at 1."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def us_ssn(text: str) -> bool:
    """Area 001-899 but not 666, group 01-99, serial 0001-9999: the SSA never issues the rest."""
    parts = text.split("-")
    if len(parts) != 3:
        return False
    area, group, serial = parts
    return area not in ("000", "666") and area < "900" and group != "00" and serial != "0000"


def ip(text: str) -> bool:
    """An address ``ipaddress`` reads; an IPv6 one of at least three groups, one of them of
    three digits or more (``a[::2]`` and ``1:2::3:4`` are Python slices and ratios)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    groups = [group for group in text.split(":") if group]
    return ":" not in text or (len(groups) >= 3 and any(len(group) >= 3 for group in groups))


def phone(text: str) -> bool:
    """7 to 15 digits (9 at least with a country code), not a run of one or two digits."""
    digits = _digits(text)
    least = 9 if text.startswith("+") else 7
    return least <= len(digits) <= 15 and len(set(digits)) >= 3


def _always(_text: str) -> bool:
    return True


@frozen
class Entity:
    name: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] = _always
    #: a match that fails ``valid`` may be the value and more (a card and its CVV): it is
    #: cut back at a space or dash, group by group, until it passes
    trim: bool = False


def _entity(name: str, patterns: Sequence[str], valid: Callable[[str], bool] = _always, trim: bool = False) -> Entity:
    return Entity(name, re.compile("|".join(f"(?:{p})" for p in patterns)), valid, trim)


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
                r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
                r"\bAIza[0-9A-Za-z_-]{35}",  # Google
                # JWTs; a run of its characters is tried from its start only (else quadratic)
                r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
            ],
        ),
        _entity(
            "email",
            # not an image's name at a pixel density (icon@2x.png)
            [
                r"(?<![\w.+%'-])[\w.+%'-]+@(?![0-9]x\.)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*"
                r"\.(?!(?:png|jpe?g|gif|svg|webp)\b)[A-Za-z]{2,}\b"
            ],
        ),
        _entity("iban", [r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b"], iban, trim=True),
        _entity("credit_card", [r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"], card, trim=True),
        _entity("us_ssn", [r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"], us_ssn),
        _entity(
            "ip",
            [
                r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)",
                rf"(?<![\w:])(?:{_HEX4}:){{7}}{_HEX4}(?![\w:])",
                rf"(?<![\w:])(?:(?:{_HEX4}:){{1,6}}|:):(?:{_HEX4}(?::{_HEX4}){{0,5}})?(?![\w:])(?!\.\d)",
            ],
            ip,
        ),
        _entity(
            "phone",
            [
                r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])",  # E.164, spaced or not
                r"(?<![\w(])\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?![\w-])",  # (555) 123-4567
                r"(?<![\w.-])(?:1[ .-])?\d{3}([.-]|\s)\d{3}\1\d{4}(?![\w-])(?!\.\d)",  # 555-123-4567, 1-800-...
                r"(?<![\w.-])0\d{2,4}[ /]\d{3,4} ?\d{3,4}(?![\w-])(?!\.\d)",  # 020 7946 0958, 030/1234567
            ],
            phone,
        ),
    )
}


def custom(name: str, pattern: str) -> Entity:
    """An entity of the config's ``[[middleware.pii.custom]]``: any match of ``pattern``."""
    return Entity(name, re.compile(pattern))


def _valid_end(entity: Entity, text: str, start: int, end: int) -> int:
    """Where the valid value that ``text[start:end]`` begins with ends (``start``: none): the
    match, or it cut at a space or dash from its end, as a card followed by its CVV or an
    IBAN by the next word would have to be."""
    cuts = (i for i in range(end - 1, start, -1) if text[i] in " -") if entity.trim else ()
    for cut in [end, *cuts][:8]:
        if entity.valid(text[start:cut].rstrip(" -")):
            return len(text[:cut].rstrip(" -"))
    return start


def find(text: str, entities: Iterable[Entity]) -> list[Found]:
    """The values of ``entities`` in ``text``, in order, none overlapping another: where two
    do, the one that starts first wins, then the longer, then the entity named first."""
    candidates = [
        (match.start(), -(end - match.start()), rank, Found(entity.name, match.start(), end))
        for rank, entity in enumerate(entities)
        for match in entity.pattern.finditer(text)
        if (end := _valid_end(entity, text, match.start(), match.end())) > match.start()
    ]
    found: list[Found] = []
    for *_, candidate in sorted(candidates, key=lambda c: c[:3]):
        if not found or candidate.start >= found[-1].end:
            found.append(candidate)
    return found
