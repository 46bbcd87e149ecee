"""Counts and a checksum of stored records that come out the same whichever storage holds
them, in whatever order it gives them: what a migration and a backup are verified by."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from attrs import define, field

from threadline.model import Message, Record, SessionRecord, dump_record

_MODULUS = 2**256


@define
class Tally:
    """How many sessions, messages and revisions, and a checksum of every field of each.

    The checksum is the sum, modulo 2**256, of each record's SHA-256 over its line as an
    export writes it (``dump_record``): a record lost, added, repeated or changed changes it;
    the order of the records does not. It catches damage and mistakes, not a forgery made to
    match it."""

    sessions: int = 0
    messages: int = 0
    digest_sum: int = field(default=0, repr=False)
    #: bytes of the records' export lines (not compared: the same records, written alike)
    size: int = field(default=0, repr=False, eq=False)
    revisions: int = 0

    def add(self, record: Record, line: bytes | None = None) -> None:
        """Count ``record``; ``line``: its export line, UTF-8, when it is at hand already."""
        if isinstance(record, SessionRecord):
            self.sessions += 1
        elif isinstance(record, Message):
            self.messages += 1
        else:
            self.revisions += 1
        line = line if line is not None else dump_record(record).encode("utf-8", "surrogatepass")
        self.size += len(line)
        self.digest_sum = (self.digest_sum + int.from_bytes(hashlib.sha256(line).digest(), "big")) % _MODULUS

    def merge(self, other: Tally) -> None:
        """Count ``other``'s records too."""
        self.sessions += other.sessions
        self.messages += other.messages
        self.revisions += other.revisions
        self.size += other.size
        self.digest_sum = (self.digest_sum + other.digest_sum) % _MODULUS

    @classmethod
    def of(cls, records: Iterable[Record]) -> Tally:
        tally = cls()
        for record in records:
            tally.add(record)
        return tally

    @property
    def checksum(self) -> str:
        """The checksum as text: ``sha256-sum:`` and 64 hex digits."""
        return f"sha256-sum:{self.digest_sum:064x}"

    def describe(self) -> str:
        return describe(self.sessions, self.messages, self.checksum, self.revisions)


def describe(sessions: int, messages: int, checksum: str, revisions: int = 0) -> str:
    """Counts and checksum as the commands say them (revisions only when there are some)."""
    edits = f", {revisions:,} revisions" if revisions else ""
    return f"{sessions:,} sessions, {messages:,} messages{edits}, checksum {checksum}"
