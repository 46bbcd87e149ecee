"""The builtin detector finds each kind of value, checksums and forms checked, and leaves
alone what only looks like one: an order number, a date, a version."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from threadline_pii import ENTITIES
from threadline_pii.entities import BUILTIN, custom, find, iban, luhn, open_from


def found(text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in find(text, list(BUILTIN.values()))]


@pytest.mark.parametrize(
    ("entity", "value"),
    [
        ("email", "ann.lee@example.com"),
        ("email", "o'brien+tag@mail.example.co.uk".replace("'", "")),
        ("phone", "+44 20 7946 0958"),
        ("phone", "+14155550123"),
        ("phone", "(555) 123-4567"),
        ("phone", "555-123-4567"),
        ("phone", "020 7946 0958"),
        ("credit_card", "4111 1111 1111 1111"),
        ("credit_card", "5500-0000-0000-0004"),
        ("credit_card", "378282246310005"),
        ("iban", "GB82 WEST 1234 5698 7654 32"),
        ("iban", "DE89370400440532013000"),
        ("us_ssn", "123-45-6789"),
        ("ip", "192.168.1.20"),
        ("ip", "2001:db8::1"),
        ("ip", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
        ("api_key", "sk-proj-abcdefghijklmnopqrstuvwx0123"),
        ("api_key", "AKIAIOSFODNN7EXAMPLE"),
        ("api_key", "ghp_" + "a1" * 18),
        ("api_key", "xoxb-1234567890-abcdefghij"),
        ("api_key", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
        ("api_key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
        ("email", "ann.o'neil@example.com"),
        ("phone", "1-800-555-1234"),
        ("phone", "555 123 4567"),
        ("iban", "de89 3704 0044 0532 0130 00"),
    ],
)
def test_each_kind_of_value_is_found_whole_in_a_sentence(entity: str, value: str) -> None:
    assert found(f"Here it is: {value}. Thanks!") == [(entity, value)]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112",  # 16 digits failing Luhn
        "order id 1234567890123456",
        "IBAN-like GB82 WEST 1234 5698 7654 33",  # mod 97 fails
        "ssn-like 000-12-3456 and 666-12-3456 and 900-12-3456 and 123-00-4567",
        "on 2024-01-15 at 10:30",
        "version 1.2.3.4567 and 300.1.1.1",
        "call extension 1234",
        "sk-short and AKIA123",
        "user@localhost",
        "icon@2x.png and logo@3x.jpg",
        "created_at_ms=1718000000006",  # passes Luhn, but no card starts so
        "order 0123-4567-8901 and ref 01/2024 1234",
        "tracking 9400 1000 0000 0000 0000 00",
        "score +12 345 678",
        "a[::2] b[1::2] c[::] ratio 1:2::3:4",
    ],
)
def test_what_only_looks_like_a_value_is_left_alone(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("in Markdown: __ann.lee@example.com__", "ann.lee@example.com"),
        ("in Markdown: _4111111111111111_", "4111111111111111"),
        ("key `_AKIAIOSFODNN7EXAMPLE_`", "AKIAIOSFODNN7EXAMPLE"),
        ("Card no.4111111111111111", "4111111111111111"),
        ("Tel.030 1234567", "030 1234567"),
        ("Visa-4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("card 4111 1111 1111 1111- expired", "4111 1111 1111 1111"),
        ("login ann.lee@example.com:hunter2", "ann.lee@example.com"),
        ("write ann.lee@example.com- thanks", "ann.lee@example.com"),
        ("no-break spaces 4111\u00a01111\u00a01111\u00a01111", "4111\u00a01111\u00a01111\u00a01111"),
        ("thin spaces +44\u202f20\u202f7946\u202f0958", "+44\u202f20\u202f7946\u202f0958"),
        ("Unicode hyphens 123\u201145\u20116789", "123\u201145\u20116789"),
        ("en dashes 415\u2013555\u20130123", "415\u2013555\u20130123"),
        ("fullwidth \uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
         "\uff14" + "\uff11" * 15),
        ("IBAN " + "\u00a0".join(["DE89", "3704", "0044", "0532", "0130", "00"]),
         "\u00a0".join(["DE89", "3704", "0044", "0532", "0130", "00"])),
    ],
)  # fmt: skip
def test_values_in_markdown_after_an_abbreviation_or_with_unicode_separators_are_found(text: str, value: str) -> None:
    assert [v for _, v in found(text)] == [value]


@pytest.mark.parametrize(
    "text",
    [
        "clone git@github.com:user/repo.git, or scp f deploy@example.com:/var/www",
        "listen on 0.0.0.0:8000 or 127.0.0.1, mask 255.255.255.0, net 10.0.0.0/8, ::1",
        "multicast 224.0.0.251 and ff02::1:ff00:1234",
        "release v1.2.3.4",
        "on 24/07/2024 call",
    ],
)
def test_addresses_no_person_has_are_left_alone(text: str) -> None:
    assert found(text) == []


def test_overlapping_values_go_to_the_first_then_the_longer() -> None:
    text = "card 4111-1111-1111-1111 and 123-45-6789"
    assert found(text) == [("credit_card", "4111-1111-1111-1111"), ("us_ssn", "123-45-6789")]


def test_a_custom_pattern_is_found_beside_the_builtin_ones() -> None:
    order = custom("order_id", r"ORD-\d{8}")
    text = "order ORD-12345678 for ann@example.com"
    assert [(f.entity, text[f.start : f.end]) for f in find(text, [*BUILTIN.values(), order])] == [
        ("order_id", "ORD-12345678"),
        ("email", "ann@example.com"),
    ]


def test_the_checksums_are_the_standard_ones() -> None:
    assert luhn("79927398713") is False  # 11 digits: too short for a card
    assert luhn("4012888888881881") and not luhn("4012888888881882")
    assert iban("NL91ABNA0417164300") and not iban("NL91ABNA0417164301")


def test_the_config_names_every_builtin_entity_in_the_order_they_win() -> None:
    assert tuple(BUILTIN) == ENTITIES


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX", "DE89 3704 0044 0532 0130 00"),
        ("pay DE89370400440532013000 EUR", "DE89370400440532013000"),
        ("card 4111 1111 1111 1111 123", "4111 1111 1111 1111"),
        ("mapped ::ffff:192.168.1.1", "192.168.1.1"),
        ("call +1 443 391 6817 24/07/2024", "+1 443 391 6817"),
    ],
)
def test_a_value_followed_by_more_of_its_characters_is_found_whole_and_alone(text: str, value: str) -> None:
    assert [v for _, v in found(text)] == [value]


@pytest.mark.parametrize("run", ["eyJ-", "aaa@", "1 ", "::1", "de89 ", "x@a-", "x@a.", "a-", "+1 "])
def test_a_long_run_of_a_pattern_s_characters_holds_no_value(run: str) -> None:
    """100 KB made to make a pattern backtrack: none is found in it (and a pattern that
    went back over it from every start, as the JWT one did, took seconds)."""
    assert find(run * (100_000 // len(run)), BUILTIN.values()) == []


HINTED = list(BUILTIN.values())
UNHINTED = [attrs.evolve(entity, hinted=False) for entity in HINTED]
# fmt: off
PIECES = st.sampled_from([
    "a", "Z", ".", "-", "+", "(", ")", "@", ":", "_", "1", "4", "0", "sk", "AKIA", "eyJ", "GB", "xoxb", "ghp", "ann",
    "example", "com", "4111", "AIza", "dead", "::", "'", "%", "/", "rk_", " ", "\n",
])
# fmt: on


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join), st.integers(0, 40))
@example("at dead::beef:cafe now", 0)  # an IPv6 address without a digit
@example("key sk-abcdefghijklmnopqrstuvwxyz", 0)
@example("key xoxb-abcdefghijkl", 3)
@example("mail ann@example.com", 0)
@example("eyJhbGciOi.eyJzdWIiOi.abcdefg", 0)
@example("wait for (", 0)  # a phone's start
def test_the_hint_skips_only_texts_that_hold_no_builtin_value(text: str, pos: int) -> None:
    """The builtin entities are searched only from a hint on (a digit, @, :, a key's
    prefix): what they find, and where a stream must wait, is what a full search gives."""
    pos = min(pos, len(text))
    assert find(text, HINTED, pos) == find(text, UNHINTED, pos)
    assert open_from(text, HINTED, pos) == open_from(text, UNHINTED, pos)
