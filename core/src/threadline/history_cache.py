"""Decoded histories of recently read sessions, for storage plugins: a history is reused
while the store says nothing in it changed.

Messages are immutable once stored except for their status, so a store keeps, with each
session, a revision that every status change moves (and that a session deleted and made
again does not repeat); appends only raise its count. A history cached at revision R with N
messages is then still right while the session is at revision R: only messages after N are
new. threadline-sqlite and threadline-redis both read through it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from attrs import define, field

from threadline.plugin import Message, Text

Key = tuple[str, str]


@define
class _Entry:
    revision: int
    messages: list[Message]


@define
class HistoryCache:
    """At most ``capacity`` messages in all, least recently read sessions dropped first."""

    capacity: int
    _entries: OrderedDict[Key, _Entry] = field(factory=OrderedDict)
    _size: int = 0

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def peek(self, key: Key) -> tuple[int, list[Message]] | None:
        """The revision and messages cached for ``key``, for the store to check, or ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry.revision, entry.messages

    def get(self, key: Key, revision: int, count: int) -> list[Message] | None:
        """The cached messages if still valid: same revision, and no more than ``count``."""
        entry = self._entries.get(key)
        if entry is None or entry.revision != revision or len(entry.messages) > count:
            return None
        self._entries.move_to_end(key)
        return entry.messages

    def put(self, key: Key, revision: int, messages: list[Message]) -> None:
        self.drop(key)
        if len(messages) > self.capacity:
            return
        self._entries[key] = _Entry(revision, messages)
        self._size += _weight(messages)
        while self._size > self.capacity:
            _, evicted = self._entries.popitem(last=False)
            self._size -= _weight(evicted.messages)

    def extend(self, key: Key, messages: Sequence[Message]) -> None:
        """``messages`` were just appended: add them when the cached history ends right before
        them (an append does not move the revision). Otherwise the next read sees the count.
        Only messages that read back from storage as they were given are added: one plain
        text, no metadata (whose nested values a store turns into its own JSON's)."""
        entry = self._entries.get(key)
        if entry is None or not messages or len(entry.messages) != messages[0].seq - 1:
            return
        if not all(_reads_back_as_given(m) for m in messages):
            self.drop(key)
            return
        self.put(key, entry.revision, [*entry.messages, *messages])

    def drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._size -= _weight(entry.messages)


def _weight(messages: list[Message]) -> int:
    """What an entry counts against the capacity: its messages, and at least one (a cache
    of empty histories is bounded too)."""
    return max(len(messages), 1)


def _reads_back_as_given(message: Message) -> bool:
    parts = message.parts
    return not message.metadata and len(parts) == 1 and type(parts[0]) is Text and not parts[0].provider_data
