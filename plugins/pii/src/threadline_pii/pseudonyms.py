"""A session's pseudonyms: each value stands in the conversation as a numbered token of its
kind, ``<EMAIL_1>``, the same one every time it comes back.

The map from tokens to values is kept in the metadata (``threadline_pii``) of the message
that first held each value: stored with it in the same write, copied by a fork, deleted with
the session, and taken out of exports by the export stage."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import regex
from attrs import Factory, define, evolve, field

from threadline.plugin import Message
from threadline_pii.rewrite import rewrite_message

#: the message metadata key that holds the tokens a message brought in, ``{token: value}``
METADATA_KEY = "threadline_pii"

TOKEN = regex.compile(r"<([A-Z][A-Z0-9_]*)_([1-9][0-9]*)>")


@define
class Pseudonyms:
    values: dict[str, str] = Factory(dict)
    #: the highest number of each kind so far
    counts: dict[str, int] = Factory(dict)
    #: the ``seq`` of the last message read
    seen: int = 0
    #: the session's version when they were read: an edit of its history raises it
    version: int = 0
    #: each value's token, the first it was given (whatever kind it was found as)
    by_value: dict[str, str] = Factory(dict)
    #: the pattern of the known values, and how many it was made of
    values_pattern: tuple[int, regex.Pattern[str]] | None = field(default=None, init=False, eq=False, repr=False)

    @classmethod
    def of(cls, messages: Iterable[Message]) -> Pseudonyms:
        pseudonyms = cls()
        for message in messages:
            pseudonyms.learn(message)
        return pseudonyms

    def learn(self, message: Message) -> None:
        """Take in the tokens ``message`` brought in, and count those it uses: an export
        leaves the map out, and a session imported from one must not number a new value
        with a token its text has already."""
        brought = message.metadata.get(METADATA_KEY)
        if isinstance(brought, Mapping):
            for token, value in brought.items():
                self.add(token, value)
        rewrite_message(message, (), self._count)
        self.seen = max(self.seen, message.seq)

    def _count(self, text: str) -> str:
        for match in TOKEN.finditer(text) if "<" in text else ():
            self.counts[match[1]] = max(self.counts.get(match[1], 0), int(match[2]))
        return text

    def add(self, token: str, value: object) -> None:
        """``token`` stands for ``value``; the first message to say so wins (a map damaged by
        hand, or a token numbered twice by two writers at once, cannot make one mean two)."""
        match = TOKEN.fullmatch(token)
        if match is None or not isinstance(value, str) or token in self.values:
            return
        kind, number = match[1], int(match[2])
        self.values[token] = value
        self.by_value.setdefault(value, token)
        self.counts[kind] = max(self.counts.get(kind, 0), number)

    def draft(self) -> Pseudonyms:
        """A copy to number a new message's values on: until that message is stored, its
        tokens are not the session's."""
        return evolve(
            self,
            values=dict(self.values),
            counts=dict(self.counts),
            by_value=dict(self.by_value),
        )

    def token(self, kind: str, value: str, brought: dict[str, str]) -> str:
        """``value``'s token, a new one (added to ``brought``) if it has none yet."""
        kind = kind.upper()
        token = self.by_value.get(value)
        if token is None:
            token = f"<{kind}_{self.counts.get(kind, 0) + 1}>"
            self.add(token, value)
            brought[token] = value
        return token

    def known(self, value: str) -> str | None:
        return self.by_value.get(value)

    def retokenize(self, text: str) -> str:
        """``text`` with each value that has a token replaced by it, wherever it stands but
        inside a longer word or number: a value put back in a reply stays hidden from the
        disk and the provider even where the detector would not find it (``__<EMAIL_1>__``
        restored is an address glued to underscores), while ``bo@example.org`` is not taken
        out of ``jimbo@example.org``, nor ``IL`` out of ``<EMAIL_1>``."""
        if not self.by_value:
            return text
        if self.values_pattern is None or self.values_pattern[0] != len(self.by_value):
            self.values_pattern = (len(self.by_value), _values_pattern(self.by_value))
        return self.values_pattern[1].sub(lambda match: self.by_value.get(match[0], match[0]), text)

    def restore(self, text: str, quote: bool = False) -> str:
        """``text`` with each token it knows replaced by its value (JSON-escaped with
        ``quote``, for a tool call's arguments as they stream)."""
        if "<" not in text:
            return text
        return TOKEN.sub(lambda match: self._value(match[0], quote), text)

    def _value(self, token: str, quote: bool) -> str:
        value = self.values.get(token)
        if value is None:
            return token
        return _json_string(value) if quote else value


def _json_string(value: str) -> str:
    return json.dumps(value)[1:-1]


def token_open_from(text: str, pos: int) -> int:
    """Where, in ``text`` from ``pos``, a token starts that the text ends in the middle of
    (``<EMAI``); ``len(text)`` when none."""
    for match in TOKEN.finditer(text, pos, partial=True):
        if match.partial:
            return match.start()
    return len(text)


def _values_pattern(values: Iterable[str]) -> regex.Pattern[str]:
    """The tokens, which stay as they are, or any of ``values``, the longest first, each not
    run on from a letter or digit of its own kind at either end."""
    alternatives = [_edged(value) for value in sorted(values, key=len, reverse=True)]
    return regex.compile("|".join([TOKEN.pattern, *alternatives]))


def _edged(value: str) -> str:
    return f"{_not_run_on(value[0], '<')}{regex.escape(value)}{_not_run_on(value[-1], '>')}"


def _not_run_on(edge: str, side: str) -> str:
    kind = r"\d" if edge.isdecimal() else r"[^\W\d_]" if edge.isalpha() else None
    if kind is None:
        return ""
    return f"(?<!{kind})" if side == "<" else f"(?!{kind})"
