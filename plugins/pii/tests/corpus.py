"""A generated corpus of messages with seeded values of every builtin entity, each valid as
issued (checksums right), in the forms people write them, and near-misses that must be left
alone: numbers that fail the Luhn check, order ids, dates, times, versions, SSNs the SSA never
issues, amounts, ISBNs, UUIDs. Every span is known, so precision and recall can be counted."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from attrs import frozen


@frozen
class Seeded:
    entity: str  # "" for a near-miss
    value: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.value)


@frozen
class Sample:
    text: str
    seeded: tuple[Seeded, ...]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _luhn_digit(body: str) -> str:
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def _grouped(text: str, sizes: list[int], sep: str) -> str:
    out, at = [], 0
    for size in sizes:
        out.append(text[at : at + size])
        at += size
    return sep.join(out)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16)])
    body = prefix + _digits(rng, length - len(prefix) - 1)
    number = body + _luhn_digit(body)
    sizes = [4, 6, 5] if length == 15 else [4, 4, 4, 4]
    return _grouped(number, sizes, rng.choice([" ", "-", ""]))


def not_luhn(rng: random.Random) -> str:
    body = rng.choice("45") + _digits(rng, 14)
    wrong = str((int(_luhn_digit(body)) + rng.randint(1, 9)) % 10)
    return _grouped(body + wrong, [4, 4, 4, 4], rng.choice([" ", ""]))


_IBAN_FORMS = {"DE": "n18", "GB": "a4n14", "FR": "n23", "NL": "a4n10", "ES": "n20", "IT": "a1n22", "CH": "n17"}


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_IBAN_FORMS))
    form = _IBAN_FORMS[country]
    bban = "".join(
        "".join(rng.choice(string.ascii_uppercase) for _ in range(int(n))) if kind == "a" else _digits(rng, int(n))
        for kind, n in _parts(form)
    )
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _parts(form: str) -> list[tuple[str, str]]:
    parts, kind, number = [], "", ""
    for c in form:
        if c.isalpha():
            if kind:
                parts.append((kind, number))
            kind, number = c, ""
        else:
            number += c
    parts.append((kind, number))
    return parts


def email(rng: random.Random) -> str:
    first = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
    local = first + rng.choice(["", ".", "_", "-", "+", "."]) + rng.choice(["", "lee", "x", _digits(rng, 2), "news"])
    local = local.rstrip(".+-_")
    domain = rng.choice(["example", "mail", "corp-1", "uni", "post"]) + rng.choice(["", ".eu", ".mail"])
    return f"{local}@{domain}.{rng.choice(['com', 'org', 'net', 'io', 'co.uk', 'de', 'info'])}"


def phone(rng: random.Random) -> str:
    area, exchange, line = str(rng.randint(201, 989)), str(rng.randint(200, 999)), _digits(rng, 4)
    forms: list[Callable[[], str]] = [
        lambda: f"+1{area}{exchange}{line}",
        lambda: f"+1 {area} {exchange} {line}",
        lambda: f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
        lambda: f"+49 30 {_digits(rng, 4)} {_digits(rng, 4)}",
        lambda: f"+33 1 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
        lambda: f"({area}) {exchange}-{line}",
        lambda: f"{area}-{exchange}-{line}",
        lambda: f"{area}.{exchange}.{line}",
        lambda: f"{area} {exchange} {line}",
        lambda: f"1-800-{exchange}-{line}",
        lambda: f"020 {rng.randint(7000, 8999)} {_digits(rng, 4)}",
    ]
    return rng.choice(forms)()


def us_ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.6:  # a host's: not loopback (127) nor multicast (224 and up)
        first = rng.choice([n for n in range(1, 224) if n != 127])
        return ".".join([str(first), *(str(rng.randint(1, 254)) for _ in range(3))])
    groups = [f"{rng.randint(0x2000, 0x3FFF):x}"] + [f"{rng.randint(0x100, 0xFFFF):x}" for _ in range(7)]  # global
    if rng.random() < 0.5:
        return ":".join(groups)
    return f"2001:db8::{groups[0]}:{groups[1]}"


def _token(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def api_key(rng: random.Random) -> str:
    b64 = string.ascii_letters + string.digits + "_-"
    forms: list[Callable[[], str]] = [
        lambda: "sk-proj-" + _token(rng, 48, b64),
        lambda: "sk-ant-api03-" + _token(rng, 40, b64),
        lambda: "sk-" + _token(rng, 32),
        lambda: "AKIA" + _token(rng, 16, string.ascii_uppercase + string.digits),
        lambda: "ghp_" + _token(rng, 36),
        lambda: "github_pat_" + _token(rng, 40, string.ascii_letters + string.digits + "_"),
        lambda: "xoxb-" + _digits(rng, 11) + "-" + _token(rng, 24),
        lambda: "sk_live_" + _token(rng, 24),
        lambda: "AIza" + _token(rng, 35, b64),
        lambda: "eyJhbGciOiJIUzI1NiJ9.eyJ" + _token(rng, 30, b64) + "." + _token(rng, 43, b64),
    ]
    return rng.choice(forms)()


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "email": email,
    "phone": phone,
    "credit_card": card,
    "iban": iban,
    "us_ssn": us_ssn,
    "ip": ip,
    "api_key": api_key,
}


def near_miss(rng: random.Random) -> str:
    forms: list[Callable[[], str]] = [
        lambda: not_luhn(rng),
        lambda: f"ORD-{rng.randint(2019, 2026)}-{_digits(rng, 6)}",
        lambda: f"#{rng.randint(10000, 99999)}",
        lambda: f"INV-{_digits(rng, 6)}",
        lambda: f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        lambda: f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2019, 2026)}",
        lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        lambda: f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}",
        lambda: f"{rng.choice(['000', '666', str(rng.randint(900, 999))])}-{rng.randint(1, 99):02d}-{_digits(rng, 4)}",
        lambda: f"${rng.randint(1, 99)},{_digits(rng, 3)}.{_digits(rng, 2)}",
        lambda: f"978-{rng.randint(0, 9)}-{_digits(rng, 2)}-{_digits(rng, 6)}-{rng.randint(0, 9)}",
        lambda: f"{_token(rng, 8, '0123456789abcdef')}-{_token(rng, 4, '0123456789abcdef')}-4{_digits(rng, 3)}",
        lambda: f"{rng.randint(10000, 99999)}-{_digits(rng, 4)}",
        lambda: f"1{_digits(rng, 12)}",  # a timestamp in ms
        lambda: f"PO {_digits(rng, 10)}",
        lambda: f"room {rng.randint(100, 4999)}",
        lambda: f"{rng.randint(1, 99)}.{rng.randint(0, 9)}%",
    ]
    return rng.choice(forms)()


TEMPLATES = [
    "Please reach me at {v}, thanks.",
    "My details: {v}",
    "{v} is the one to use.",
    "Can you check {v} for me?",
    "I wrote '{v}' on the form.",
    'The record says "{v}".',
    "see ({v}) below",
    "Use <{v}> when you reply.",
    "Line one.\n{v}\nLine three.",
    "Update it to {v}!",
]

FILLER = [
    "The order shipped yesterday.",
    "Nothing else changed.",
    "Let me know if that works.",
    "I have a question about my bill.",
    "Thanks in advance.",
]


def sample(rng: random.Random, entities: list[str]) -> Sample:
    """One message: a value of each of ``entities``, a near-miss and some filler, in order."""
    pieces: list[tuple[str, str]] = [(entity, GENERATORS[entity](rng)) for entity in entities]
    pieces.insert(rng.randint(0, len(pieces)), ("", near_miss(rng)))
    text, seeded = "", []
    for entity, value in pieces:
        template = rng.choice(TEMPLATES)
        before, after = template.split("{v}")
        text += (" " if text else "") + rng.choice(["", rng.choice(FILLER) + " "]) + before
        seeded.append(Seeded(entity, value, len(text)))
        text += value + after
    return Sample(text, tuple(seeded))


def generate(count: int, seed: int = 13) -> list[Sample]:
    """``count`` messages; each entity is seeded about equally often."""
    rng = random.Random(seed)
    kinds = sorted(GENERATORS)
    return [sample(rng, [kinds[i % len(kinds)], *rng.sample(kinds, rng.randint(0, 1))]) for i in range(count)]
