"""Copying every session and message from one storage to another, any backend to any other:
what ``threadline migrate`` runs.

Sessions are imported a batch at a time, each import all or nothing, so a migration that is
interrupted leaves every session in the target whole or absent, and the next run skips those
already there. A session the target has with other contents is left as it is and reported.
At the end the copied sessions are read back from the target and their counts and checksum
(:class:`~threadline.tally.Tally`) compared with what was read from the source.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Literal

import attrs
from attrs import define, field, frozen

from threadline.contracts import Storage
from threadline.errors import DataFormatError, MigrationIncomplete, SessionNotFound, StorageConflict
from threadline.model import Message, Record, Revision, SessionQuery, SessionRecord, Usage
from threadline.tally import Tally

#: records imported in one transaction (a session is never split: a batch may hold more)
BATCH_RECORDS = 2_000
#: bytes of export lines at most in one batch, whatever their number (long messages, attachments)
BATCH_BYTES = 16 * 2**20


@frozen
class SessionBundle:
    """A session, its messages in ``seq`` order and its revisions in order, as an export gives
    them, and their tally."""

    session: SessionRecord
    messages: tuple[Message, ...]
    revisions: tuple[Revision, ...]
    tally: Tally = field(eq=False)

    @classmethod
    def of(cls, session: SessionRecord, messages: list[Message], revisions: list[Revision]) -> SessionBundle:
        return cls(session, tuple(messages), tuple(revisions), Tally.of([session, *messages, *revisions]))

    @classmethod
    def as_imported(cls, session: SessionRecord, messages: list[Message], revisions: list[Revision]) -> SessionBundle:
        """The bundle as any storage's import stores it: the session's count and usage those
        of its messages, summed in order (an append may have summed a batch's costs first,
        which floating point rounds otherwise); with revisions, its usage as it was."""
        usage = session.usage if revisions else sum((m.usage for m in messages if m.usage is not None), Usage())
        return cls.of(attrs.evolve(session, message_count=len(messages), usage=usage), messages, revisions)

    @property
    def key(self) -> tuple[str, str]:
        return self.session.tenant, self.session.id

    def records(self) -> list[Record]:
        return [self.session, *self.messages, *self.revisions]


@define
class MigrationReport:
    """What a migration did, updated as it goes (``on_progress`` sees it after each batch).

    :ivar read: every session and message read from the source.
    :ivar copied: those imported into the target by this run.
    :ivar already_there: sessions the target had already with the same contents (an earlier
        run copied them), left as they were.
    :ivar differing: ``(tenant, id)`` of sessions the target has with other contents: not
        overwritten, not verified.
    :ivar refused: ``(tenant, id, why)`` of sessions the target could not store (a
        ``DataFormatError``: a value it cannot hold, messages out of order in the source).
    :ivar expected: the copied and already-there sessions as read from the source.
    :ivar verified: the same sessions as read back from the target at the end; a migration
        succeeded when it equals ``expected`` and nothing differs (``ok``).
    :ivar unverified: ``(tenant, id)`` of those sessions the target lacks at the end, or
        gives back otherwise than they were read.
    :ivar phase: ``"copying"``, then ``"verifying"``, then ``"done"``.
    """

    read: Tally = field(factory=Tally)
    copied: Tally = field(factory=Tally)
    already_there: int = 0
    differing: list[tuple[str, str]] = field(factory=list)
    refused: list[tuple[str, str, str]] = field(factory=list)
    expected: Tally = field(factory=Tally)
    verified: Tally = field(factory=Tally)
    unverified: list[tuple[str, str]] = field(factory=list)
    phase: Literal["copying", "verifying", "done"] = "copying"
    #: each expected session's tally, until it is read back
    _pending: dict[tuple[str, str], Tally] = field(factory=dict, init=False, repr=False, eq=False)

    def expect(self, bundle: SessionBundle) -> None:
        """``bundle`` is in the target now, to be read back as it is."""
        self._pending[bundle.key] = bundle.tally
        self.expected.merge(bundle.tally)

    def read_back(self, bundle: SessionBundle) -> None:
        """``bundle`` as the target gives it at the end: verified if it is what was expected."""
        wanted = self._pending.pop(bundle.key, None)
        if wanted is None:
            return  # not of this run
        if wanted == bundle.tally:
            self.verified.merge(bundle.tally)
        else:
            self.unverified.append(bundle.key)

    def missing(self) -> None:
        """The end of the read-back: what was expected and never read back is unverified."""
        self.unverified.extend(self._pending)
        self._pending.clear()

    @property
    def ok(self) -> bool:
        return not (self.differing or self.refused or self.unverified) and self.verified == self.expected


Progress = Callable[[MigrationReport], None]


async def migrate_sessions(
    source: Storage,
    target: Storage,
    *,
    tenant: str | None = None,
    on_progress: Progress | None = None,
    batch_records: int = BATCH_RECORDS,
) -> MigrationReport:
    """Copy every session of ``tenant`` (``None``: of all tenants) and its messages from
    ``source`` to ``target``, both open, as they were stored (records are not passed through
    any middleware). Sessions the target has already with the same contents are skipped, so
    a run that was interrupted is finished by running it again. Returns the report when every
    session was copied and read back as read; else raises :class:`MigrationIncomplete`.
    ``batch_records`` is how many records (sessions and messages) one import holds at most,
    and :data:`BATCH_BYTES` how many bytes, unless one session has more."""
    report = MigrationReport()
    batch: list[SessionBundle] = []
    batched = Tally()
    async for bundle in _bundles(source.export_records(tenant)):
        report.read.merge(bundle.tally)
        batch.append(bundle)
        batched.merge(bundle.tally)
        if batched.sessions + batched.messages >= batch_records or batched.size >= BATCH_BYTES:
            await _copy(target, batch, report)
            batch, batched = [], Tally()
            _tell(on_progress, report)
    await _copy(target, batch, report)
    report.phase = "verifying"
    _tell(on_progress, report)
    await _verify(target, tenant, report, on_progress)
    report.phase = "done"
    _tell(on_progress, report)
    if not report.ok:
        raise MigrationIncomplete(report)
    return report


async def count_sessions(storage: Storage, tenant: str) -> tuple[int, int]:
    """How many sessions ``tenant`` has in ``storage``, and messages in them, from its
    listing (no message is read): the totals a progress bar counts towards."""
    sessions = messages = 0
    cursor = None
    while True:
        page = await storage.list_sessions(SessionQuery(tenant=tenant, limit=1000, cursor=cursor))
        sessions += len(page.items)
        messages += sum(record.message_count for record in page.items)
        if page.next_cursor is None:
            return sessions, messages
        cursor = page.next_cursor


async def _bundles(
    records: AsyncIterable[Record],
    bundle: Callable[[SessionRecord, list[Message], list[Revision]], SessionBundle] = SessionBundle.as_imported,
) -> AsyncIterator[SessionBundle]:
    """The sessions of an export, each with its messages and revisions."""
    session: SessionRecord | None = None
    messages: list[Message] = []
    revisions: list[Revision] = []
    async for record in records:
        if isinstance(record, SessionRecord):
            if session is not None:
                yield bundle(session, messages, revisions)
            session, messages, revisions = record, [], []
        elif isinstance(record, Message):
            messages.append(record)
        else:
            revisions.append(record)
    if session is not None:
        yield bundle(session, messages, revisions)


async def _copy(target: Storage, batch: Sequence[SessionBundle], report: MigrationReport) -> None:
    """Import ``batch`` in one go; when the target has some of its sessions already, each on
    its own, skipping those it has the same and reporting those it has otherwise."""
    if not batch:
        return
    try:
        await target.import_records(_replay([r for bundle in batch for r in bundle.records()]))
    except (StorageConflict, DataFormatError):  # which session it was, each on its own says
        for bundle in batch:
            await _copy_one(target, bundle, report)
        return
    for bundle in batch:
        _copied(bundle, report)


async def _copy_one(target: Storage, bundle: SessionBundle, report: MigrationReport) -> None:
    try:
        await target.import_records(_replay(bundle.records()))
    except DataFormatError as exc:
        report.refused.append((*bundle.key, str(exc)))
        return
    except StorageConflict:
        if await _same_in(target, bundle):
            report.already_there += 1
            report.expect(bundle)
        else:
            report.differing.append(bundle.key)
        return
    _copied(bundle, report)


def _copied(bundle: SessionBundle, report: MigrationReport) -> None:
    report.copied.merge(bundle.tally)
    report.expect(bundle)


async def _same_in(target: Storage, bundle: SessionBundle) -> bool:
    tenant, session_id = bundle.key
    try:
        stored = await target.get_session(tenant, session_id)
        messages = await target.get_messages(tenant, session_id)
        get_revisions = getattr(target, "get_revisions", None)  # optional: a storage may keep none
        revisions = await get_revisions(tenant, session_id) if get_revisions is not None else []
    except SessionNotFound:  # deleted since the import was refused
        return False
    return stored == bundle.session and tuple(messages) == bundle.messages and tuple(revisions) == bundle.revisions


async def _verify(target: Storage, tenant: str | None, report: MigrationReport, on_progress: Progress | None) -> None:
    """Read the target's export back, and check each session this run expects there."""
    async for bundle in _bundles(target.export_records(tenant), SessionBundle.of):
        report.read_back(bundle)
        if report.verified.sessions % 500 == 0:
            _tell(on_progress, report)
    report.missing()


async def _replay(records: Sequence[Record]) -> AsyncIterator[Record]:
    for record in records:
        yield record


def _tell(on_progress: Progress | None, report: MigrationReport) -> None:
    if on_progress is not None:
        on_progress(report)
