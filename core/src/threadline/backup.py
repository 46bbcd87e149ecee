"""A storage's sessions in one compressed file, checked when it is restored: what
``threadline sessions backup`` and ``threadline sessions restore`` run.

A backup is gzip-compressed JSON lines. The first line is the :class:`BackupHeader`: the
counts and checksum (:class:`~threadline.tally.Tally`) of the records that follow, one per
line as ``threadline sessions export`` writes them. The header is compressed on its own, as
a gzip member ahead of the records' (``zcat`` and every gzip reader read the two as one
text), so it is written once the records are, and read first.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Final

from attrs import frozen

from threadline.contracts import Storage
from threadline.errors import DataFormatError, StorageConflict
from threadline.importing import stoppable_import
from threadline.model import Message, Record, SessionRecord, dump_record, dumps, load_record, loads, utcnow
from threadline.tally import Tally, describe

KIND: Final = "threadline-backup"
#: a header is far shorter; more is not one (a file made to fill memory, say)
HEADER_BYTES: Final = 64 * 1024


@frozen
class BackupHeader:
    """The first line of a backup.

    :ivar kind: always ``"threadline-backup"``: what the file is.
    :ivar tenant: the tenant backed up; ``None``: every tenant.
    :ivar sessions: how many sessions follow.
    :ivar messages: how many messages follow.
    :ivar checksum: :attr:`Tally.checksum` of the records that follow.
    :ivar created_at: when the backup began.
    :ivar revisions: how many revisions (kept edits of histories) follow; 0 in a backup
        made before threadline kept them.
    """

    kind: str
    tenant: str | None
    sessions: int
    messages: int
    checksum: str
    created_at: datetime
    revisions: int = 0

    def matches(self, tally: Tally) -> bool:
        mine = (self.sessions, self.messages, self.revisions, self.checksum)
        return mine == (tally.sessions, tally.messages, tally.revisions, tally.checksum)

    def describe(self) -> str:
        return describe(self.sessions, self.messages, self.checksum, self.revisions)


async def backup_sessions(
    storage: Storage, path: str | os.PathLike[str], *, tenant: str | None = None, replace: bool = False
) -> BackupHeader:
    """Write every session of ``tenant`` (``None``: of every tenant) in ``storage`` and its
    messages, as stored, to a new backup at ``path``, readable by its owner alone. A file
    there already is a ``FileExistsError`` unless ``replace`` (never anything but a file).
    The file appears under its name only once it is whole: a backup that fails half way
    leaves nothing that looks like one."""
    target = _backup_target(Path(path), replace)
    records, partial = (target.with_name(f".{target.name}.{os.getpid()}.{part}") for part in ("records", "partial"))
    try:
        began, tally = utcnow(), Tally()
        with _private(records) as raw, gzip.open(raw, "wb", compresslevel=6) as out:
            async for record in storage.export_records(tenant):
                line = _line(record)
                tally.add(record, line)
                out.write(line + b"\n")
        header = BackupHeader(KIND, tenant, tally.sessions, tally.messages, tally.checksum, began, tally.revisions)
        with _private(partial) as out, records.open("rb") as body:
            out.write(gzip.compress((dumps(header) + "\n").encode("utf-8"), mtime=0))
            shutil.copyfileobj(body, out)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(partial, target)
        else:
            os.link(partial, target)  # fails if a file appeared there meanwhile: never written over
        return header
    finally:
        records.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def _backup_target(target: Path, replace: bool) -> Path:
    """Where a backup may be written: a new file in a folder that exists, or, with
    ``replace``, a file there already; never a folder, a link, a device or a pipe."""
    if not target.name or target.name in (".", ".."):
        raise IsADirectoryError(errno.EISDIR, "a backup needs a file name, not a folder", os.fspath(target))
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder for the backup", os.fspath(target.parent))
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise FileExistsError(errno.EEXIST, "not a file, which a backup never writes over", os.fspath(target))
    if target.exists() and not replace:
        raise FileExistsError(errno.EEXIST, "a file is there already (--replace writes over it)", os.fspath(target))
    return target


def _line(record: Record) -> bytes:
    """``record``'s export line, UTF-8; text that is no UTF-8 (a lone surrogate) a
    ``DataFormatError`` naming the record, as a restore would refuse the line."""
    try:
        return dump_record(record).encode("utf-8")
    except UnicodeEncodeError:
        if isinstance(record, SessionRecord):
            where = record.id
        elif isinstance(record, Message):
            where = f"{record.session_id}, message {record.seq}"
        else:
            where = f"{record.session_id}, revision {record.number}"
        raise DataFormatError(f"session {where} holds a lone surrogate, which no backup can hold") from None


def _private(path: Path) -> IO[bytes]:
    """A new file at ``path`` that its owner alone may read (a backup holds every conversation)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


async def restore_sessions(storage: Storage, path: str | os.PathLike[str]) -> BackupHeader:
    """Import the backup at ``path`` into ``storage``: all of it, once its records are found
    to match its header, or nothing (a bad line, a count or checksum that does not match, a
    session the storage has already)."""
    name = os.fspath(path)
    with _reading(name) as lines:
        header = _header(name, lines)
        try:
            await stoppable_import(storage, _checked_records(name, lines, header))
        except StorageConflict as exc:
            raise StorageConflict(f"{exc}: a restore adds sessions, it never overwrites one") from None
    return header


@contextmanager
def _reading(name: str) -> Iterator[gzip.GzipFile]:
    """The backup's decompressed lines; a file that is not gzip, or ends too soon, a
    ``DataFormatError`` saying so."""
    try:
        with gzip.open(name, "rb") as lines:
            yield lines
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataFormatError(f"{name} is not a whole backup ({exc}); nothing was restored") from None


def _header(name: str, lines: gzip.GzipFile) -> BackupHeader:
    first = lines.readline(HEADER_BYTES)
    if not first.endswith(b"\n"):
        raise DataFormatError(f"{name} does not begin with a threadline backup header (a line of JSON)")
    try:
        header = loads(first, BackupHeader)
    except DataFormatError as exc:
        if b'"type":"session"' in first:
            raise DataFormatError(
                f"{name} is an export, not a backup: `threadline sessions import` reads it, uncompressed"
            ) from None
        raise DataFormatError(f"{name} does not begin with a threadline backup header: {exc}") from None
    if header.kind != KIND:
        raise DataFormatError(f"{name} does not begin with a threadline backup header (kind {header.kind!r})")
    return header


async def _checked_records(name: str, lines: gzip.GzipFile, header: BackupHeader) -> AsyncIterator[Record]:
    """The backup's records; after the last, a ``DataFormatError`` instead of the end when
    they do not match the header, so that the import writes none of them."""
    tally = Tally()
    for number, line in _numbered(name, lines):
        if not line.strip():
            continue
        try:
            record = load_record(line)
        except DataFormatError as exc:
            raise DataFormatError(f"{name}, line {number}: {exc}; nothing was restored") from None
        tally.add(record, line.rstrip(b"\r\n"))
        yield record
    if not header.matches(tally):
        raise DataFormatError(
            f"{name} holds {tally.describe()}, but its header says {header.describe()}: "
            "the backup is damaged; nothing was restored"
        )


def _numbered(name: str, lines: gzip.GzipFile) -> Iterator[tuple[int, bytes]]:
    """The lines after the header, numbered; a file damaged or cut short part way is a
    ``DataFormatError`` here, before a storage could take it for its own failure."""
    try:
        yield from enumerate(lines, 2)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(f"{name} is not a whole backup ({exc}); nothing was restored") from None
