"""The personal data the builtin detector finds. Each entity is a pattern; those with a
check digit (cards, IBANs) or a fixed form (SSNs, IP addresses) must also pass it, so that an
order number or a date is left alone.

Patterns are compiled with ``regex`` rather than ``re`` for its partial matches: a stream is
held back only from where a value could still be under way (:func:`open_from`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence

import regex
from attrs import Factory, field, frozen


@frozen
class Found:
    """One value found in a text: ``text[start:end]`` is an ``entity``."""

    entity: str
    start: int
    end: int


#: what separates the groups of a number as people write them: spaces (no-break and thin
#: ones too) and dashes (the Unicode ones too)
_SPACES = " \u00a0\u2009\u202f"
_DASHES = "\u2010-\u2015-"
SEPARATORS = frozenset(" \u00a0\u2009\u202f-\u2010\u2011\u2012\u2013\u2014\u2015")


def _digits(text: str) -> str:
    """The digits of ``text``, as ASCII digits (a fullwidth four is a ``4``)."""
    return "".join(str(int(c)) for c in text if c.isdecimal())


#: the first digits of the card schemes' numbers (Visa, Mastercard, Amex, Discover, Diners,
#: JCB, UnionPay, Maestro): a 13-digit timestamp or an order id that passes Luhn is no card
_CARD_PREFIX = regex.compile(r"4|5[0-5]|2[2-7]|3[0-8]|6[0-9]")


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


#: the length of each registered country's IBANs (the ISO 13616 registry); another
#: country's may be from 15 to 34 characters
_IBAN_LENGTHS = {
    **dict.fromkeys(["NO"], 15),
    **dict.fromkeys(["BE"], 16),
    **dict.fromkeys(["DK", "FI", "FO", "GL", "NL"], 18),
    **dict.fromkeys(["MK", "SI"], 19),
    **dict.fromkeys(["AT", "BA", "EE", "KZ", "LT", "LU", "XK"], 20),
    **dict.fromkeys(["CH", "HR", "LI", "LV"], 21),
    **dict.fromkeys(["BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"], 22),
    **dict.fromkeys(["AE", "GI", "IL", "IQ", "TL"], 23),
    **dict.fromkeys(["AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"], 24),
    **dict.fromkeys(["PT", "ST"], 25),
    **dict.fromkeys(["IS", "TR"], 26),
    **dict.fromkeys(["FR", "GR", "IT", "MC", "MR", "SM"], 27),
    **dict.fromkeys(["AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "PL", "SV"], 28),
    **dict.fromkeys(["BR", "EG", "PS", "QA", "UA"], 29),
    **dict.fromkeys(["JO", "KW", "MU"], 30),
    **dict.fromkeys(["MT", "SC"], 31),
    **dict.fromkeys(["LC"], 32),
}


def iban(text: str) -> bool:
    """An IBAN of its country's length whose mod-97 check (ISO 13616) comes out at 1."""
    compact = "".join(c for c in text if c not in SEPARATORS).upper()
    length = _IBAN_LENGTHS.get(compact[:2])
    if not (len(compact) == length if length else 15 <= len(compact) <= 34):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def us_ssn(text: str) -> bool:
    """Area 001-899 but not 666, group 01-99, serial 0001-9999: the SSA never issues the rest."""
    parts = [_digits(part) for part in regex.split(f"[{_DASHES}]", text)]
    if [len(part) for part in parts] != [3, 2, 4]:
        return False
    area, group, serial = parts
    return area not in ("000", "666") and area < "900" and group != "00" and serial != "0000"


def ip(text: str) -> bool:
    """An address ``ipaddress`` reads that may be a host's (not a loopback, unspecified or
    multicast one, nor a netmask such as ``255.255.255.0``); an IPv6 one of at least three
    groups, one of them of three digits or more (``a[::2]`` and ``1:2::3:4`` are Python
    slices and ratios)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified or address.is_multicast or _netmask(address):
        return False
    groups = [group for group in text.split(":") if group]
    return ":" not in text or (len(groups) >= 3 and any(len(group) >= 3 for group in groups))


def _netmask(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Ones, then zeros: ``255.255.255.0``, ``255.255.255.255``."""
    inverse = (1 << address.max_prefixlen) - 1 - int(address)
    return inverse & (inverse + 1) == 0


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
    pattern: regex.Pattern[str]
    valid: Callable[[str], bool] = _always
    #: a match that fails ``valid`` may be the value and more (a card and its CVV): it is
    #: cut back at a space or dash, group by group, until it passes
    trim: bool = False
    #: every value of it holds a match of ``HINT`` (the builtin entities): a text without
    #: one need not be searched, and can only be starting a value in its last word
    hinted: bool = False
    #: the pattern run to the end of the text: where it matches, whole or partly, a value
    #: could still be under way (``+44 20 `` may go on as ``7946 0958``)
    tail: regex.Pattern[str] = field(
        default=Factory(
            lambda self: regex.compile(rf"(?:{self.pattern.pattern})\Z", self.pattern.flags), takes_self=True
        )
    )


def _entity(name: str, patterns: Sequence[str], valid: Callable[[str], bool] = _always, trim: bool = False) -> Entity:
    return Entity(name, regex.compile("|".join(f"(?:{p})" for p in patterns)), valid, trim, hinted=True)


#: what each builtin value holds: a digit (numbers, IBANs, IPv4), ``@`` (addresses), ``:``
#: (IPv6) or a key's prefix. Most of a stream's pieces hold none, and are searched no further
HINT = regex.compile(r"[\d@:]|[sr]k[-_]|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abprs]-|AIza|eyJ")
_LAST_WORD = regex.compile(r"\S*\Z")


_HEX4 = r"[0-9A-Fa-f]{1,4}"
#: not part of a longer word or number: an underscore around a value is Markdown's
_NOT_AFTER = r"(?<![A-Za-z0-9])"
_NOT_BEFORE = r"(?![A-Za-z0-9])"
#: nor the rest of a number written with dots or dashes (a version, a date, an id)
_NOT_AFTER_NUMBER = rf"{_NOT_AFTER}(?<!\d[.{_DASHES}])"
_NOT_BEFORE_NUMBER = rf"(?![A-Za-z0-9]|[.{_DASHES}]\d)"
#: an IPv6 address is not part of a longer run of hex groups; a colon after it ends a clause
_NOT_IN_HEX = rf"{_NOT_AFTER}(?<![0-9A-Fa-f]:)"
_NOT_ON_HEX = r"(?![A-Za-z0-9]|:[0-9A-Fa-f:])"
_GROUP = rf"[{_SPACES}{_DASHES}]"  # between the groups of a card or an SSN

#: in the order they win when two overlap: the more specific first
BUILTIN: dict[str, Entity] = {
    entity.name: entity
    for entity in (
        _entity(
            "api_key",
            [
                rf"{_NOT_AFTER}sk-(?:proj-|ant-)?[A-Za-z0-9_-]{{20,}}",  # OpenAI, Anthropic
                rf"{_NOT_AFTER}(?:AKIA|ASIA)[0-9A-Z]{{16}}{_NOT_BEFORE}",  # AWS access key ids
                rf"{_NOT_AFTER}gh[pousr]_[A-Za-z0-9]{{36,}}",  # GitHub
                rf"{_NOT_AFTER}github_pat_[A-Za-z0-9_]{{22,}}",
                rf"{_NOT_AFTER}xox[abprs]-[A-Za-z0-9-]{{10,}}",  # Slack
                rf"{_NOT_AFTER}[rs]k_(?:live|test)_[A-Za-z0-9]{{16,}}",  # Stripe
                rf"{_NOT_AFTER}AIza[0-9A-Za-z_-]{{35}}",  # Google
                # JWTs; a run of its characters is tried from its start only (else quadratic)
                r"(?<![A-Za-z0-9-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
            ],
        ),
        _entity(
            "email",
            [  # labels of at most 63 characters, so that a long run cannot make it backtrack
                r"(?<![A-Za-z0-9.+%-])[A-Za-z0-9][\w.+%'-]{0,63}@(?![0-9]x\.)"
                r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
                # not an image's name at a pixel density (icon@2x.png), nor git's user@host:path
                r"(?!(?:png|jpe?g|gif|svg|webp)(?![A-Za-z0-9]))[A-Za-z]{2,24}(?![A-Za-z0-9]|-[A-Za-z0-9]|:[\w.~-]*/)"
            ],
        ),
        _entity(
            "iban",
            [rf"{_NOT_AFTER}[A-Za-z]{{2}}\d{{2}}(?:[{_SPACES}]?[A-Za-z0-9]){{11,30}}{_NOT_BEFORE}"],
            iban,
            trim=True,
        ),
        _entity(
            "credit_card",
            [  # written whole or in the groups cards print: 4-4-4-4 (to 19 digits), 4-6-5, 4-6-4
                rf"{_NOT_AFTER_NUMBER}\d{{13,19}}{_NOT_BEFORE_NUMBER}",
                rf"{_NOT_AFTER_NUMBER}\d{{4}}(?P<a>{_GROUP})\d{{4}}(?P=a)\d{{4}}(?P=a)\d{{4}}(?:(?P=a)\d{{1,3}})?"
                rf"{_NOT_BEFORE_NUMBER}",
                rf"{_NOT_AFTER_NUMBER}\d{{4}}(?P<b>{_GROUP})\d{{6}}(?P=b)\d{{4,5}}{_NOT_BEFORE_NUMBER}",
            ],
            card,
            trim=True,
        ),
        _entity(
            "us_ssn", [rf"{_NOT_AFTER_NUMBER}\d{{3}}(?P<s>[{_DASHES}])\d{{2}}(?P=s)\d{{4}}{_NOT_BEFORE_NUMBER}"], us_ssn
        ),
        _entity(
            "ip",
            [
                r"(?<![A-Za-z0-9.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d|/\d)",  # not a version (v1.2.3.4), nor a network
                rf"{_NOT_IN_HEX}(?:{_HEX4}:){{7}}{_HEX4}{_NOT_ON_HEX}",
                rf"{_NOT_IN_HEX}(?:(?:{_HEX4}:){{1,6}}|:):(?:{_HEX4}(?::{_HEX4}){{0,5}})?{_NOT_ON_HEX}(?!\.\d)",
            ],
            ip,
        ),
        _entity(
            "phone",
            [
                # E.164, spaced or not, but not the start of an IPv6 address
                rf"(?<![A-Za-z0-9+])\+[1-9]\d{{0,2}}(?:[.{_SPACES}{_DASHES}]?\(?\d{{1,4}}\)?){{2,5}}"
                rf"(?![A-Za-z0-9]|[/{_DASHES}]\d|:[0-9A-Fa-f])",  # nor run into a date
                rf"{_NOT_AFTER}\(\d{{3}}\)[.{_SPACES}{_DASHES}]?\d{{3}}[.{_SPACES}{_DASHES}]\d{{4}}{_NOT_BEFORE_NUMBER}",
                # 555-123-4567, 555.123.4567, 555 123 4567, 1-800-...
                rf"{_NOT_AFTER_NUMBER}(?:1[.{_SPACES}{_DASHES}])?\d{{3}}([.{_DASHES}]|\s)\d{{3}}\1\d{{4}}{_NOT_BEFORE_NUMBER}",
                # 020 7946 0958, 030/1234567, but not the last groups of a 4-4-4-4 number
                rf"{_NOT_AFTER_NUMBER}(?!(?<=\d{{4}}{_GROUP})\d{{4}}{_GROUP}\d{{4}}{_GROUP}\d{{4}}\b)"
                rf"0\d{{2,4}}[{_SPACES}/]\d{{3,4}}[{_SPACES}]?\d{{3,4}}{_NOT_BEFORE_NUMBER}",
            ],
            phone,
            trim=True,
        ),
    )
}


def custom(name: str, pattern: str) -> Entity:
    """An entity of the config's ``[[middleware.pii.custom]]``: any match of ``pattern``."""
    return Entity(name, regex.compile(pattern))


def _valid_span(entity: Entity, text: str, match: regex.Match[str]) -> tuple[int, int] | None:
    """The valid value in ``match``, if any: the match itself or, for an entity that trims,
    one that starts at a later group of it (a card after a room number) and ends at an
    earlier one (a card followed by its CVV, an IBAN by the next word)."""
    if not entity.trim:
        return match.span() if entity.valid(match[0]) else None
    groups = [
        i for i in range(match.start() + 1, match.end()) if text[i - 1] in SEPARATORS and text[i] not in SEPARATORS
    ]
    for first in [match.start(), *groups[:3]]:
        longest = match if first == match.start() else entity.pattern.match(text, first)
        if longest is None:
            continue
        cuts = [i for i in range(longest.end() - 1, first, -1) if text[i] in SEPARATORS]
        for cut in [longest.end(), *cuts[:7]]:
            value = text[first:cut].rstrip("".join(SEPARATORS))
            if entity.valid(value):
                return first, first + len(value)
    return None


def _spans(entity: Entity, text: str, pos: int) -> Iterator[tuple[int, int]]:
    """Where the valid values of ``entity`` are in ``text`` from ``pos``; after one cut short
    (an IBAN that a word followed), the search goes on from its end, not the match's."""
    while (match := entity.pattern.search(text, pos)) is not None:
        span = _valid_span(entity, text, match)
        if span is not None:
            yield span
        pos = max(span[1] if span is not None else match.end(), match.start() + 1)


def find(text: str, entities: Sequence[Entity], pos: int = 0, more: Iterable[Found] = ()) -> list[Found]:
    """The values of ``entities`` in ``text`` (from ``pos``: what comes before is only looked
    at, as a match's surroundings), and ``more`` found otherwise, in order, none overlapping
    another: where two do, the one that starts first wins, then the longer, then the entity
    named first (``more`` last)."""
    hinted = HINT.search(text, pos) is not None
    candidates = [
        (start, start - end, rank, Found(entity.name, start, end))
        for rank, entity in enumerate(entities)
        if hinted or not entity.hinted
        for start, end in _spans(entity, text, pos)
    ]
    candidates += [(found.start, found.start - found.end, len(entities), found) for found in more]
    found: list[Found] = []
    for *_, candidate in sorted(candidates, key=lambda c: c[:3]):
        if not found or candidate.start >= found[-1].end:
            found.append(candidate)
    return found


def open_from(text: str, entities: Sequence[Entity], pos: int = 0) -> int:
    """Where, in ``text`` from ``pos``, the first value starts that more text could still make
    or change (``ann.lee@exa``, ``+44 20 ``, or a plain word, which an ``@`` could make an
    address); ``len(text)`` when none could."""
    last_word = pos
    if HINT.search(text, pos) is None and (word := _LAST_WORD.search(text, pos)) is not None:
        last_word = word.start()
    froms = [last_word if entity.hinted else pos for entity in entities]
    start, earliest = len(text), min(froms, default=pos)
    for entity, begin in zip(entities, froms, strict=True):
        match = entity.tail.search(text, begin, partial=True)
        if match is not None and match.start() < start:
            start = match.start()
            if start == earliest:  # a word under way, an address's start: none can start sooner
                break
    return start
