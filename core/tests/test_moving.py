"""Migrations and backups on the kernel's own storage; every pair of real backends is in the
repository's tests/test_moving_sessions.py."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path

import attrs
import pytest

from threadline import (
    DataFormatError,
    Message,
    MigrationIncomplete,
    SessionQuery,
    SessionRecord,
    StorageConflict,
    Tally,
    Usage,
    backup_sessions,
    migrate_sessions,
    restore_sessions,
)
from threadline.builtins.memory import MemoryStorage
from threadline.importing import stoppable_import
from threadline.migrate import count_sessions
from threadline.testing.storage_contract import collect, make_messages, make_session


async def filled_storage(sessions: int = 4) -> MemoryStorage:
    storage = MemoryStorage()
    for number in range(sessions):
        record = await storage.create_session(make_session(tenant="a" if number % 2 else "b", title=f"chat {number}"))
        messages = make_messages(record, ["q", "a", "q2"])
        messages[1] = attrs.evolve(messages[1], usage=Usage(5, 7, cost=0.01))
        await storage.append_messages(record.tenant, record.id, messages)
    return storage


async def everything(storage: MemoryStorage) -> list[SessionRecord | Message]:
    return sorted(await collect(storage.export_records(None)), key=lambda r: (getattr(r, "session_id", r.id), r.id))


# -- tally ------------------------------------------------------------------


async def test_a_tally_does_not_depend_on_order_but_on_every_record() -> None:
    records = await collect((await filled_storage()).export_records(None))
    forwards, backwards, changed, repeated = Tally(), Tally(), Tally(), Tally()
    for record in records:
        forwards.add(record)
    for record in reversed(records):
        backwards.add(record)
    for record in [attrs.evolve(records[1], created_at=records[1].created_at.replace(microsecond=1)), *records[2:]]:
        changed.add(record)
    changed.add(records[0])
    for record in [*records, records[-1]]:
        repeated.add(record)
    assert forwards == backwards and (forwards.sessions, forwards.messages) == (4, 12)
    assert changed.checksum != forwards.checksum
    assert repeated.checksum != forwards.checksum


# -- migrate ----------------------------------------------------------------


async def test_a_migration_copies_everything_and_says_so() -> None:
    source, target = await filled_storage(), MemoryStorage()
    seen: list[str] = []
    report = await migrate_sessions(source, target, batch_records=5, on_progress=lambda r: seen.append(r.phase))
    assert await everything(target) == await everything(source)
    assert report.ok and report.verified == report.read == report.copied == report.expected
    assert seen == ["copying", "copying", "verifying", "done"]  # a batch holds whole sessions: two here


async def test_a_migration_of_one_tenant_copies_only_that_tenant() -> None:
    source, target = await filled_storage(), MemoryStorage()
    report = await migrate_sessions(source, target, tenant="a")
    assert {r.tenant for r in await collect(target.export_records(None)) if isinstance(r, SessionRecord)} == {"a"}
    assert report.read.sessions == 2 and await count_sessions(source, "a") == (2, 6)


async def test_a_migration_run_again_skips_what_is_there_and_copies_what_is_not() -> None:
    source, target = await filled_storage(), MemoryStorage()
    await migrate_sessions(source, target, tenant="a")
    report = await migrate_sessions(source, target)
    assert (report.already_there, report.copied.sessions) == (2, 2)
    assert report.verified == report.read


async def test_a_session_whose_stored_cost_was_summed_otherwise_is_still_the_same_when_copied() -> None:
    class BatchSumming(MemoryStorage):
        """Adds a batch's summed usage to the session's, as threadline-postgres's append does."""

        async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
            before = (await self.get_session(tenant, session_id)).usage
            await super().append_messages(tenant, session_id, messages)
            batch = sum((m.usage for m in messages if m.usage), Usage())
            self._sessions[tenant, session_id] = attrs.evolve(self._sessions[tenant, session_id], usage=before + batch)

    source, target = BatchSumming(), MemoryStorage()
    session = await source.create_session(make_session())
    messages = [attrs.evolve(m, usage=Usage(1, 1, cost=cost)) for m, cost in zip(
        make_messages(session, ["q", "a", "q2"]), [0.1, 0.2, 0.3], strict=True)]  # fmt: skip
    await source.append_messages("default", session.id, messages[:1])
    await source.append_messages("default", session.id, messages[1:])  # 0.1 + (0.2 + 0.3)
    assert (await source.get_session("default", session.id)).usage.cost != 0.1 + 0.2 + 0.3  # the import's sum
    assert (await migrate_sessions(source, target)).ok
    assert (await migrate_sessions(source, target)).already_there == 1


async def test_a_session_that_differs_is_reported_and_left_and_the_rest_copied() -> None:
    source, target = await filled_storage(), MemoryStorage()
    first = next(r for r in await collect(source.export_records("a")) if isinstance(r, SessionRecord))
    await target.create_session(first)  # the same record, but without its messages
    with pytest.raises(MigrationIncomplete, match="delete them from the target and run again") as caught:
        await migrate_sessions(source, target)
    assert caught.value.report.differing == [("a", first.id)]
    assert await target.get_messages("a", first.id) == []
    assert caught.value.report.copied.sessions == 3
    assert caught.value.report.verified == caught.value.report.expected


async def test_a_target_that_loses_what_it_was_given_fails_the_verification() -> None:
    class Forgetful(MemoryStorage):
        async def import_records(self, records: AsyncIterator[SessionRecord | Message]) -> int:
            kept = [r async for r in records if not (isinstance(r, Message) and r.seq == 3)]
            return await super().import_records(_replay(kept))

    with pytest.raises(MigrationIncomplete, match="4 of the sessions are missing from the target") as caught:
        await migrate_sessions(await filled_storage(), Forgetful())
    assert len(caught.value.report.unverified) == 4 and caught.value.report.verified == Tally()


async def _replay(records: list[SessionRecord | Message]) -> AsyncIterator[SessionRecord | Message]:
    for record in records:
        yield record


# -- backup and restore -----------------------------------------------------


async def test_a_backup_restores_exactly_and_its_header_is_its_first_line(tmp_path: Path) -> None:
    source, target = await filled_storage(), MemoryStorage()
    path = tmp_path / "all.tlbackup.gz"
    written = await backup_sessions(source, path)
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        assert lines.readline().startswith(
            '{"v":1,"kind":"threadline-backup","tenant":null,"sessions":4,"messages":12,'
        )
    assert await restore_sessions(target, path) == written
    assert await everything(target) == await everything(source)
    assert sorted(os.listdir(tmp_path)) == ["all.tlbackup.gz"]


async def test_revisions_move_with_their_sessions_and_are_counted(tmp_path: Path) -> None:
    source = await filled_storage()
    (edited, *_) = (await source.list_sessions(SessionQuery(tenant="a"))).items
    await source.replace_messages("a", edited.id, 1, [], count=3)
    kept = await source.get_revisions("a", edited.id)
    migrated = MemoryStorage()
    report = await migrate_sessions(source, migrated)
    assert report.ok and (report.read.revisions, report.verified.revisions) == (1, 1)
    assert await migrated.get_revisions("a", edited.id) == kept
    again = await migrate_sessions(source, migrated)  # there already: revisions compared too
    assert again.ok and again.already_there == 4
    header = await backup_sessions(source, tmp_path / "all.gz")
    assert header.revisions == 1 and header.describe().startswith("4 sessions, 10 messages, 1 revisions, checksum")
    restored = MemoryStorage()
    assert await restore_sessions(restored, tmp_path / "all.gz") == header
    assert await restored.get_revisions("a", edited.id) == kept


async def test_a_backup_of_one_tenant(tmp_path: Path) -> None:
    header = await backup_sessions(await filled_storage(), tmp_path / "b.gz", tenant="b")
    assert (header.tenant, header.sessions) == ("b", 2)


def damaged(path: Path, change: bytes, into: bytes) -> None:
    """Rewrite the backup at ``path`` with ``change`` made ``into`` in its records, header kept."""
    header, records = gzip.decompress(path.read_bytes()).split(b"\n", 1)
    assert change in records
    path.write_bytes(gzip.compress(header + b"\n") + gzip.compress(records.replace(change, into, 1)))


@pytest.mark.parametrize(
    ("change", "into", "message"),
    [
        (b'"text":"q2"', b'"text":"Q2"', "but its header says 4 sessions, 12 messages, checksum sha256-sum:"),
        (b'"title":"chat 1"', b'"title":"chat 1","extra":1', "line 6: not a valid SessionRecord: extra fields"),
        (b"\n", b"\n\xff\n", "line 3: not UTF-8 text"),
    ],
)
async def test_a_damaged_backup_restores_nothing(tmp_path: Path, change: bytes, into: bytes, message: str) -> None:
    path, target = tmp_path / "all.gz", MemoryStorage()
    await backup_sessions(await filled_storage(), path)
    damaged(path, change, into)
    with pytest.raises(DataFormatError, match=message) as caught:
        await restore_sessions(target, path)
    assert "nothing was restored" in str(caught.value)
    assert await collect(target.export_records(None)) == []


async def test_a_cut_short_or_foreign_file_restores_nothing(tmp_path: Path) -> None:
    path, target = tmp_path / "all.gz", MemoryStorage()
    await backup_sessions(await filled_storage(), path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 40])
    with pytest.raises(DataFormatError, match=r"is not a whole backup .*; nothing was restored"):
        await restore_sessions(target, path)
    path.write_text('{"v": 1, "type": "session", "id": "s1"}\n')
    with pytest.raises(DataFormatError, match=r"is not a whole backup \(Not a gzipped file"):
        await restore_sessions(target, path)
    path.write_bytes(gzip.compress(b'{"v":1,"type":"session","id":"s1"}\n'))
    with pytest.raises(DataFormatError, match="is an export, not a backup: `threadline sessions import` reads it"):
        await restore_sessions(target, path)
    assert await collect(target.export_records(None)) == []


async def test_a_restore_over_a_session_that_exists_restores_nothing(tmp_path: Path) -> None:
    source = await filled_storage()
    await backup_sessions(source, tmp_path / "all.gz")
    target = MemoryStorage()
    kept = await target.create_session(
        next(r for r in await collect(source.export_records("b")) if isinstance(r, SessionRecord))
    )
    with pytest.raises(StorageConflict, match=r"exists already.*a restore adds sessions, it never overwrites one"):
        await restore_sessions(target, tmp_path / "all.gz")
    assert await collect(target.export_records(None)) == [kept]


async def test_a_backup_that_fails_half_way_leaves_no_file(tmp_path: Path) -> None:
    class Breaking(MemoryStorage):
        async def export_records(self, tenant: str | None = None) -> AsyncIterator[SessionRecord | Message]:
            yield make_session()
            raise OSError("disk read error")

    with pytest.raises(OSError, match="disk read error"):
        await backup_sessions(Breaking(), tmp_path / "all.gz")
    assert os.listdir(tmp_path) == []


# -- the command line -------------------------------------------------------


def threadline(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "THREADLINE_PLUGINS": "echo,memory"}
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the source with --from CONFIG or --from-backend NAME"),
        (("--from-backend", "memory"), "name the target with --to CONFIG or --to-backend NAME"),
        (("--from", "{config}", "--from-backend", "memory", "--to-backend", "x"), "or --from-backend NAME, not both"),
        (("--from", "{config}", "--from-setting", "path=a", "--to-backend", "x"), "goes with --from-backend"),
        (("--from-backend", "memory", "--to-backend", "memory"), "--from: the memory storage keeps nothing"),
        (("--from-backend", "nope", "--to-backend", "x"), "--from-backend: no storage plugin named 'nope'"),
        (("--from-backend", "memory", "--from-setting", "path", "--to-backend", "x"), "'path' is not KEY=VALUE"),
        (("--from-backend", "memory", "--from-setting", "path=x", "--to-backend", "x"), "extra fields found (path)"),
    ],
)  # fmt: skip
def test_migrate_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    config = tmp_path / "threadline.toml"
    config.write_text('[storage]\nbackend = "memory"\n')
    result = threadline("migrate", *(arg.format(config=config) for arg in args))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_backup_and_restore_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "none.gz"
    result = threadline("sessions", "backup", str(path))
    assert result.returncode == 0 and result.stdout.startswith("backed up 0 sessions, 0 messages, checksum"), result
    assert threadline("sessions", "restore", str(path)).stdout.startswith("restored 0 sessions, 0 messages")
    path.write_bytes(b"not gzip")
    failed = threadline("sessions", "restore", str(path))
    assert failed.returncode == 1 and "is not a whole backup" in failed.stderr and "Traceback" not in failed.stderr


# -- what a user may get wrong, and interruptions -----------------------------


async def test_a_backup_never_writes_over_what_is_at_its_path_unless_told(tmp_path: Path) -> None:
    storage = await filled_storage()
    kept = tmp_path / "threadline.db"
    kept.write_text("the database")
    with pytest.raises(FileExistsError, match="a file is there already"):
        await backup_sessions(storage, kept)
    assert kept.read_text() == "the database"
    await backup_sessions(storage, kept, replace=True)
    assert gzip.decompress(kept.read_bytes()).startswith(b'{"v":1,"kind":"threadline-backup"')
    (tmp_path / "link.gz").symlink_to(kept)
    with pytest.raises(FileExistsError, match="not a file"):
        await backup_sessions(storage, tmp_path / "link.gz", replace=True)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        await backup_sessions(storage, tmp_path / "missing" / "all.gz")
    assert sorted(os.listdir(tmp_path)) == ["link.gz", "threadline.db"]
    assert kept.stat().st_mode & 0o777 == 0o600


async def test_a_header_line_without_end_is_not_read_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(b" " * 200_000))
    with pytest.raises(DataFormatError, match="does not begin with a threadline backup header"):
        await restore_sessions(MemoryStorage(), path)


async def test_a_cancelled_import_stops_reading_and_imports_nothing() -> None:
    class Settled(MemoryStorage):
        """Finishes an import under way before a cancellation goes on, as a server's storage does."""

        async def import_records(self, records: AsyncIterable[SessionRecord | Message]) -> int:
            importing = asyncio.ensure_future(super().import_records(records))
            try:
                return await asyncio.shield(importing)
            except asyncio.CancelledError:
                await asyncio.wait({importing})
                raise

    storage, read = Settled(), []

    async def slow() -> AsyncIterator[SessionRecord | Message]:
        for number in range(100):
            session = make_session(title=f"chat {number}")
            read.append(session)
            yield session
            await asyncio.sleep(0.01)

    importing = asyncio.ensure_future(stoppable_import(storage, slow()))
    await asyncio.sleep(0.1)
    importing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await importing
    assert 0 < len(read) < 100
    assert await collect(storage.export_records(None)) == []


async def test_a_session_the_target_cannot_store_is_named_and_the_rest_copied() -> None:
    class Picky(MemoryStorage):
        async def import_records(self, records: AsyncIterator[SessionRecord | Message]) -> int:
            kept = [r async for r in records]
            if any(isinstance(r, SessionRecord) and r.title == "chat 2" for r in kept):
                raise DataFormatError("cannot store this")
            return await super().import_records(_replay(kept))

    with pytest.raises(MigrationIncomplete, match=r"could not store 1 of the sessions, left out: .*cannot store this"):
        await migrate_sessions(await filled_storage(), target := Picky())
    titles = {r.title for r in await collect(target.export_records(None)) if isinstance(r, SessionRecord)}
    assert titles == {"chat 0", "chat 1", "chat 3"}


async def test_a_batch_holds_at_most_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("threadline.migrate.BATCH_BYTES", 1000)
    phases: list[str] = []
    await migrate_sessions(await filled_storage(), MemoryStorage(), on_progress=lambda r: phases.append(r.phase))
    assert phases.count("copying") == 4  # each session's lines pass 1,000 bytes: one batch each
