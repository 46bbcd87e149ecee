"""Full-text search over stored messages: the query, its hits, and what storages share to
answer it alike.

Search is an optional storage capability, ``Storage.search_messages(query) -> list[SearchHit]``
(docs/storage.md): threadline-sqlite answers it from an FTS5 index, the kernel's ``memory``
storage by reading every message. :meth:`SessionManager.search` and ``threadline sessions
search`` call it.

What the words of a search are, the same for every storage: the search text is split at white
space into terms; a term is its words, which must appear one after another in a message
(``don't`` looks for ``don`` then ``t``); a message matches when it has every term. Nothing in
the text is syntax: quotes, ``*``, ``AND`` and ``NEAR`` are looked for as words, or left out
when they are not letters or digits.

A word is what SQLite's FTS5 ``unicode61`` tokenizer (``remove_diacritics 2``) takes for one,
folded as it folds it (:mod:`threadline.unicode61`): a run of letters and digits, each
character lowercased on its own and its accent taken off. ``CAFÉ`` is ``cafe`` and ``İstanbul``
is ``istanbul``, but ``Straße`` is ``straße`` (not ``strasse``) and ``ﬁnance`` keeps its
ligature (it is not ``finance``): what the memory storage finds, threadline-sqlite's index finds.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final

import attrs
from attrs import field, frozen

from threadline.model import File, Message, Part, Role, SessionRecord, Text, ToolCall, ToolResult
from threadline.unicode61 import DROPPED, FOLDED, WORD_RANGES

#: how a word's characters fold (``str.translate``): to another, or left out
_FOLD: Final[dict[int, str | None]] = {
    first + index * step: chr(folded + index * folded_step)
    for first, count, step, folded, folded_step in FOLDED
    for index in range(count)
} | dict.fromkeys(DROPPED)
#: the words a snippet shows around its first match
SNIPPET_WORDS: Final = 16
#: how a snippet marks the words that matched, and where it leaves text out
MARK_START: Final = "["
MARK_END: Final = "]"
ELLIPSIS: Final = "…"
MAX_LIMIT: Final = 1000


@functools.cache
def _word() -> re.Pattern[str]:
    """A word: a run of letters and digits, as SQLite's unicode61 tokenizer takes them (made
    when first searched: compiling its 400 ranges takes 10 ms)."""
    return re.compile("[" + "".join(f"\\U{first:08x}-\\U{last:08x}" for first, last in WORD_RANGES) + "]+")


def fold(word: str) -> str:
    """A word as search compares it, as unicode61 folds it: each character lowercased on its
    own, accents taken off (``Café`` is ``cafe``, ``İ`` is ``i``, ``ß`` and ``ﬁ`` stay)."""
    return word.translate(_FOLD)


def words(text: str) -> list[str]:
    """The words of ``text``, folded; a word of accents alone folds to nothing and is none."""
    return [folded for word in _word().findall(text) if (folded := fold(word))]


def search_terms(text: str) -> tuple[tuple[str, ...], ...]:
    """The terms of a search text: each run of text between white space, as its folded words;
    a run with no words (``"***"``) is left out."""
    return tuple(term for term in (tuple(words(chunk)) for chunk in text.split()) if term)


def _within_max_limit(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"{attribute.name} must be 1 to {MAX_LIMIT}, got {value}")


def _aware(_instance: object, attribute: attrs.Attribute[datetime | None], value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime, got {value.isoformat()}")


@frozen
class SearchQuery:
    """What ``Storage.search_messages`` is asked for: the messages of ``tenant``'s sessions that
    have every term of ``text`` (:func:`search_terms`), of sessions of ``user_id`` and of
    ``provider`` when given, made at or after ``since`` when given; the best ``limit``."""

    text: str
    tenant: str = "default"
    user_id: str | None = None
    #: the session's provider (what ``sessions list`` shows), not a message's
    provider: str | None = None
    since: datetime | None = field(default=None, validator=_aware)
    limit: int = field(default=20, validator=_within_max_limit)

    @property
    def terms(self) -> tuple[tuple[str, ...], ...]:
        return search_terms(self.text)


@frozen
class SearchHit:
    """One message that matched: where it is, who said it and when, and a snippet of its text
    around the match, the words that matched between ``[`` and ``]``."""

    session_id: str
    seq: int
    role: Role
    created_at: datetime
    snippet: str
    message_id: str
    #: the session's title, user, provider and model
    title: str | None = None
    user_id: str | None = None
    provider: str | None = None
    model: str | None = None


def message_text(parts: Sequence[Part]) -> str:
    """The text a message is searched by: its text parts, each tool call's name and arguments
    (as JSON), each tool result, each file's name; an image has none. Every storage indexes
    this, so that a search finds the same messages in any of them."""
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, Text):
            pieces.append(part.text)
        elif isinstance(part, ToolCall):
            pieces.append(f"{part.name} {json.dumps(dict(part.arguments), ensure_ascii=False)}")
        elif isinstance(part, ToolResult):
            pieces.append(part.content)
        elif isinstance(part, File) and part.name:
            pieces.append(part.name)
    return "\n".join(piece for piece in pieces if piece)


def _spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), fold(m.group())) for m in _word().finditer(text)]


def _found(folded: Sequence[str], terms: Iterable[tuple[str, ...]]) -> list[tuple[int, int]]:
    """Where each term occurs in ``folded`` words, as (first word, word count), in order."""
    found = []
    for term in terms:
        size = len(term)
        found += [(i, size) for i in range(len(folded) - size + 1) if tuple(folded[i : i + size]) == term]
    return sorted(found)


def score(text: str, terms: Sequence[tuple[str, ...]]) -> int:
    """How often the terms occur in ``text``; 0 unless every one of them does."""
    folded = [word for _, _, word in _spans(text)]
    counts = [len(_found(folded, [term])) for term in terms]
    return sum(counts) if terms and all(counts) else 0


def snippet(text: str, terms: Sequence[tuple[str, ...]], size: int = SNIPPET_WORDS) -> str:
    """Up to ``size`` words of ``text`` around the first match of ``terms``, matched words
    marked; :data:`ELLIPSIS` where it is cut. For a storage that cannot make its own."""
    spans = _spans(text)
    if not spans:
        return " ".join(text.split())[:200]
    found = _found([word for _, _, word in spans], terms)
    first = found[0][0] if found else 0
    start = max(0, min(first - size // 4, len(spans) - size))
    end = min(len(spans), start + size)
    marked = {index for position, count in found for index in range(position, position + count)}
    pieces, cursor = [], 0 if start == 0 else spans[start][0]  # the whole start, or from a word
    for index in range(start, end):
        begin, finish, _ = spans[index]
        word = text[begin:finish]
        pieces += [text[cursor:begin], f"{MARK_START}{word}{MARK_END}" if index in marked else word]
        cursor = finish
    if end == len(spans):
        pieces.append(text[cursor:])  # the whole end
    excerpt = " ".join("".join(pieces).split())
    return f"{ELLIPSIS if start else ''}{excerpt}{ELLIPSIS if end < len(spans) else ''}"


def search_messages(
    messages: Iterable[Message], query: SearchQuery, sessions: Mapping[str, SessionRecord]
) -> list[SearchHit]:
    """The best ``query.limit`` hits among ``messages``, most occurrences of the terms first,
    then the newest: how a storage that keeps no index searches (the ``memory`` storage).
    ``sessions``: the messages' sessions, by id, for each hit's title, user, provider and model."""
    terms = query.terms
    scored = []
    for message in messages:
        if query.since is not None and message.created_at < query.since:
            continue
        text = message_text(message.parts)
        points = score(text, terms)
        if points:
            scored.append((points, message, text))
    scored.sort(key=lambda hit: (-hit[0], -hit[1].created_at.timestamp(), hit[1].session_id, hit[1].seq))
    return [
        SearchHit(
            session_id=message.session_id,
            seq=message.seq,
            role=message.role,
            created_at=message.created_at,
            snippet=snippet(text, terms),
            message_id=message.id,
            title=session.title,
            user_id=session.user_id,
            provider=session.provider,
            model=session.model,
        )
        for _, message, text in scored[: query.limit]
        for session in (sessions[message.session_id],)
    ]
