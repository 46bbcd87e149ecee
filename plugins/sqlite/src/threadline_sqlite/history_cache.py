"""Decoded histories of recently read sessions, reused while the session's row says that
nothing in them changed. Messages are immutable once stored except for their status, and
every status change bumps the session's ``messages_rev``; appends raise its count."""

from __future__ import annotations

from collections import OrderedDict

from attrs import define, field

from threadline.plugin import Message

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
        self._size += len(messages)
        while self._size > self.capacity:
            _, evicted = self._entries.popitem(last=False)
            self._size -= len(evicted.messages)

    def drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._size -= len(entry.messages)
