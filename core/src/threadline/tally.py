"""Counts and a checksum of stored records that come out the same whichever storage holds
them, in whatever order it gives them: what a migration and a backup are verified by."""

from __future__ import annotations

import hashlib
import json

from attrs import define, field

from threadline.model import Message, SessionRecord, dump

_MODULUS = 2**256


@define
class Tally:
    """How many sessions and messages, and a checksum of every field of each.

    The checksum is the sum, modulo 2**256, of each record's SHA-256 over its JSON form with
    sorted keys: a record lost, added, repeated or changed changes it; the order of the
    records does not. It catches damage and mistakes, not a forgery made to match it."""

    sessions: int = 0
    messages: int = 0
    digest_sum: int = field(default=0, repr=False)

    def add(self, record: SessionRecord | Message) -> None:
        if isinstance(record, SessionRecord):
            self.sessions += 1
        else:
            self.messages += 1
        self.digest_sum = (self.digest_sum + _digest(record)) % _MODULUS

    @property
    def checksum(self) -> str:
        """The checksum as text: ``sha256-sum:`` and 64 hex digits."""
        return f"sha256-sum:{self.digest_sum:064x}"

    def describe(self) -> str:
        return f"{self.sessions:,} sessions, {self.messages:,} messages, checksum {self.checksum}"


def _digest(record: SessionRecord | Message) -> int:
    kind = "session" if isinstance(record, SessionRecord) else "message"
    text = json.dumps({"type": kind, **dump(record)}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest(), "big")
