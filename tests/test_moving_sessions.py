"""Sessions moved between every pair of installed storages, through the real backends: the
machine's Redis and PostgreSQL servers (a key prefix and a schema of each test's own, removed
after it) and SQLite files. `threadline migrate` and `threadline sessions backup`/`restore`
as a user runs them, and an interrupted migration, killed mid-write, finished by a second."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from stores import KINDS, PERSISTENT, StorageTable

from threadline import (
    Config,
    DataFormatError,
    File,
    Image,
    Message,
    MessageStatus,
    MigrationIncomplete,
    Role,
    SessionManager,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    Storage,
    Text,
    ToolCall,
    ToolResult,
    Usage,
    backup_sessions,
    migrate_sessions,
    restore_sessions,
)


@asynccontextmanager
async def opened(table: dict[str, Any]) -> AsyncIterator[Storage]:
    """The storage a config with this ``[storage]`` table opens, as the CLI opens it."""
    async with SessionManager(Config.from_dict({"storage": table})) as manager:
        yield manager.storage


async def fill(storage: Storage, sessions: int = 3) -> list[tuple[SessionRecord, list[Message]]]:
    """Sessions in two tenants holding every kind of part and field, as stored."""
    filled = []
    for number, tenant in zip(range(sessions), itertools.cycle(["acme", "globex"]), strict=False):
        record = await storage.create_session(
            SessionRecord(provider="echo", tenant=tenant, user_id=f"user {number}", model="echo-1",
                          system_prompt="Be brief.", metadata={"plan": {"tier": number, "tags": ["a", "ü"]}})
        )  # fmt: skip
        messages = conversation(record)
        await storage.append_messages(tenant, record.id, messages)
        await storage.set_message_status(tenant, record.id, 1, MessageStatus.FAILED.value, "timed out")
        current = await storage.get_session(tenant, record.id)
        status = SessionStatus.ARCHIVED if number == 1 else SessionStatus.ACTIVE
        stored = await storage.update_session(attrs.evolve(current, title=f"chat {number} ✓", status=status))
        filled.append((stored, await storage.get_messages(tenant, record.id)))
    return filled


def conversation(record: SessionRecord) -> list[Message]:
    call = ToolCall("call_1", "weather", {"city": "Zürich", "days": [1, 2]}, provider_data={"sig": "x"})
    return [
        Message(record.id, 1, Role.USER, (Text("Weather? 🌦 \u2028 line"), Image("image/png", data=b"\x89PNG\x00"))),
        Message(record.id, 2, Role.ASSISTANT, (call,), usage=Usage(10, 3, 1, 0.002), provider="echo", model="m"),
        Message(record.id, 3, Role.TOOL, (ToolResult("call_1", "rain", is_error=False),)),
        Message(record.id, 4, Role.USER, (File("application/pdf", url="https://example.com/a.pdf", name="a.pdf"),),
                metadata={"client": {"ip": None}}),
        Message(record.id, 5, Role.ASSISTANT, (Text("It rains."),), usage=Usage(20, 4),
                status=MessageStatus.INCOMPLETE),
    ]  # fmt: skip


async def read_all(storage: Storage, tenant: str | None = None) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every session in ``storage`` with its messages, by ``(tenant, id)``."""
    found: dict[tuple[str, str], list[Any]] = {}
    async for record in storage.export_records(tenant):
        if isinstance(record, SessionRecord):
            current = found[record.tenant, record.id] = [record]
        else:
            current.append(record)
    return {key: tuple(records) for key, records in found.items()}


def as_read(filled: list[tuple[SessionRecord, list[Message]]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {(record.tenant, record.id): (record, *messages) for record, messages in filled}


# -- every pair -------------------------------------------------------------


@pytest.mark.parametrize(("source_kind", "target_kind"), list(itertools.product(KINDS, KINDS)))
async def test_a_migration_copies_every_session_whole_between_every_pair(
    storage_table: StorageTable, source_kind: str, target_kind: str
) -> None:
    async with opened(storage_table(source_kind)) as source, opened(storage_table(target_kind)) as target:
        filled = await fill(source)
        report = await migrate_sessions(source, target)
        assert await read_all(target) == as_read(filled)
        assert (report.copied.sessions, report.copied.messages) == (3, 15)
        assert report.verified == report.read == report.copied
        again = await migrate_sessions(source, target)  # everything there already: nothing copied twice
        assert (again.copied.sessions, again.already_there) == (0, 3)
        assert await read_all(target) == as_read(filled)


@pytest.mark.parametrize(("source_kind", "target_kind"), list(itertools.permutations(KINDS, 2)))
async def test_an_interrupted_migration_is_finished_by_the_next(
    storage_table: StorageTable, source_kind: str, target_kind: str
) -> None:
    async with opened(storage_table(source_kind)) as source, opened(storage_table(target_kind)) as target:
        filled = as_read(await fill(source, sessions=12))
        task = asyncio.create_task(
            migrate_sessions(source, target, batch_records=12, on_progress=lambda _: task.cancel())
        )
        with pytest.raises(asyncio.CancelledError):
            await task
        partial = await read_all(target)
        assert 0 < len(partial) < len(filled)
        assert all(filled[key] == records for key, records in partial.items())  # each whole, or absent
        report = await migrate_sessions(source, target, batch_records=12)
        assert (report.already_there, report.copied.sessions) == (len(partial), len(filled) - len(partial))
        assert report.verified == report.read
        assert await read_all(target) == filled


@pytest.mark.parametrize(("source_kind", "target_kind"), [("sqlite", "postgres"), ("postgres", "redis")])
async def test_a_session_the_target_has_otherwise_is_not_overwritten(
    storage_table: StorageTable, source_kind: str, target_kind: str
) -> None:
    async with opened(storage_table(source_kind)) as source, opened(storage_table(target_kind)) as target:
        filled = await fill(source)
        clash, _ = filled[0]
        await target.create_session(attrs.evolve(clash, title="someone else's"))
        with pytest.raises(
            MigrationIncomplete, match=rf"other contents, not overwritten: {clash.id!r} \(tenant 'acme'\)"
        ) as caught:
            await migrate_sessions(source, target)
        assert caught.value.report.differing == [(clash.tenant, clash.id)]
        assert (await target.get_session(clash.tenant, clash.id)).title == "someone else's"
        assert await target.get_messages(clash.tenant, clash.id) == []
        assert {key for key in await read_all(target) if key[1] != clash.id} == set(as_read(filled[1:]))


@pytest.mark.parametrize("target_kind", PERSISTENT)
async def test_a_migration_of_one_tenant_leaves_the_others(storage_table: StorageTable, target_kind: str) -> None:
    async with opened(storage_table("sqlite")) as source, opened(storage_table(target_kind)) as target:
        filled = await fill(source, sessions=4)
        report = await migrate_sessions(source, target, tenant="globex")
        assert report.read.sessions == 2
        assert await read_all(target) == {key: v for key, v in as_read(filled).items() if key[0] == "globex"}


# -- backups ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_kind", "target_kind"),
    [(kind, kind) for kind in KINDS] + list(zip(KINDS, KINDS[1:] + KINDS[:1], strict=True)),
)
async def test_a_backup_restores_into_every_backend(
    storage_table: StorageTable, tmp_path: Path, source_kind: str, target_kind: str
) -> None:
    async with opened(storage_table(source_kind)) as source, opened(storage_table(target_kind)) as target:
        filled = await fill(source)
        written = await backup_sessions(source, tmp_path / "all.tlbackup.gz")
        restored = await restore_sessions(target, tmp_path / "all.tlbackup.gz")
        assert restored == written
        assert (written.sessions, written.messages) == (3, 15)
        assert await read_all(target) == as_read(filled)


# -- the command line -------------------------------------------------------


def threadline(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def side(option: str, table: dict[str, Any]) -> list[str]:
    settings = [[f"--{option}-setting", f"{key}={value}"] for key, value in table.items() if key != "backend"]
    return [f"--{option}-backend", table["backend"], *itertools.chain.from_iterable(settings)]


@pytest.mark.parametrize(("source_kind", "target_kind"), list(itertools.permutations(PERSISTENT, 2)))
def test_threadline_migrate_between_every_pair(storage_table: StorageTable, source_kind: str, target_kind: str) -> None:
    source, target = storage_table(source_kind), storage_table(target_kind)

    async def prepare() -> dict[tuple[str, str], tuple[Any, ...]]:
        async with opened(source) as storage:
            return as_read(await fill(storage))

    filled = asyncio.run(prepare())
    result = threadline("migrate", *side("from", source), *side("to", target))
    assert result.returncode == 0, result.stderr
    assert f"copied 3 sessions, 15 messages to {target_kind}" in result.stdout
    assert "verified in the target: 3 sessions, 15 messages, checksum sha256-sum:" in result.stdout

    async def migrated() -> dict[tuple[str, str], tuple[Any, ...]]:
        async with opened(target) as storage:
            return await read_all(storage)

    assert asyncio.run(migrated()) == filled
    again = threadline("migrate", *side("from", source), *side("to", target))
    assert "copied 0 sessions, 0 messages" in again.stdout and "3 sessions were there already" in again.stdout


@pytest.mark.parametrize(
    ("source_kind", "target_kind"), [("sqlite", "postgres"), ("postgres", "redis"), ("redis", "sqlite")]
)
def test_threadline_migrate_killed_mid_write_is_finished_by_the_next_run(
    storage_table: StorageTable, source_kind: str, target_kind: str
) -> None:
    source, target = storage_table(source_kind), storage_table(target_kind)
    sessions = 5_000

    async def prepare() -> None:
        async with opened(source) as storage:
            records: list[SessionRecord | Message] = []
            for number in range(sessions):
                record = SessionRecord(provider="echo", tenant="acme", title=f"chat {number}")
                records += [record, *(Message(record.id, seq, Role.USER, (Text(f"m{seq}"),)) for seq in (1, 2, 3))]

            async def replay() -> AsyncIterator[SessionRecord | Message]:
                for record in records:
                    yield record

            await storage.import_records(replay())

    async def count() -> int:
        async with opened(target) as storage:
            return len(await read_all(storage))

    async def any_copied() -> bool:  # one row read: the poll stays quick however far the copy got
        async with opened(target) as storage:
            return bool((await storage.list_sessions(SessionQuery(tenant="acme", limit=1))).items)

    asyncio.run(prepare())
    command = [sys.executable, "-m", "threadline", "migrate", *side("from", source), *side("to", target)]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while not asyncio.run(any_copied()) and running.poll() is None:
            time.sleep(0.01)
        running.send_signal(signal.SIGKILL)
    finally:
        running.wait()
    assert running.returncode == -signal.SIGKILL, "the migration ended before it could be killed"
    assert 0 < asyncio.run(count()) < sessions
    result = threadline("migrate", *side("from", source), *side("to", target))
    assert result.returncode == 0, result.stderr
    assert f"verified in the target: {sessions:,} sessions, {3 * sessions:,} messages" in result.stdout
    assert asyncio.run(count()) == sessions


def test_threadline_sessions_backup_then_restore_into_another_backend(
    storage_table: StorageTable, tmp_path: Path
) -> None:
    source, target = storage_table("sqlite"), storage_table("postgres")
    configs = {}
    for name, table in (("source", source), ("target", target)):
        configs[name] = tmp_path / f"{name}.toml"
        configs[name].write_text(
            "[storage]\n" + "".join(f'{key} = "{value}"\n' for key, value in table.items()), encoding="utf-8"
        )

    async def prepare() -> dict[tuple[str, str], tuple[Any, ...]]:
        async with opened(source) as storage:
            return as_read(await fill(storage))

    filled = asyncio.run(prepare())
    backup = tmp_path / "chats.tlbackup.gz"
    written = threadline("--config", str(configs["source"]), "sessions", "backup", str(backup))
    assert written.returncode == 0, written.stderr
    assert "backed up 3 sessions, 15 messages, checksum sha256-sum:" in written.stdout
    restored = threadline("--config", str(configs["target"]), "sessions", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.replace("restored", "backed up").replace(" from ", " to ") == written.stdout

    async def read_target() -> dict[tuple[str, str], tuple[Any, ...]]:
        async with opened(target) as storage:
            return await read_all(storage)

    assert asyncio.run(read_target()) == filled
    twice = threadline("--config", str(configs["target"]), "sessions", "restore", str(backup))
    assert twice.returncode == 1 and "exists already" in twice.stderr and "Traceback" not in twice.stderr


async def many(storage: Storage, sessions: int, tenant: str = "acme") -> None:
    """``sessions`` sessions of three messages each, imported in one go."""

    async def records() -> AsyncIterator[SessionRecord | Message]:
        for number in range(sessions):
            record = SessionRecord(provider="echo", tenant=tenant, title=f"chat {number}")
            yield record
            for seq in (1, 2, 3):
                yield Message(record.id, seq, Role.USER, (Text(f"m{seq}"),))

    await storage.import_records(records())


def interruptible() -> None:
    """In the child: Ctrl-C as a terminal gives it, even when the tests run in the background
    of a shell, which starts them with SIGINT ignored (and Python then leaves it so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("target_kind", ["sqlite", "postgres"])
def test_ctrl_c_stops_a_restore_and_nothing_is_restored(
    storage_table: StorageTable, tmp_path: Path, target_kind: str
) -> None:
    """The backup comes through a pipe: half of it, then Ctrl-C while the restore is reading
    it into the import, then the rest. The restore stops; nothing is restored."""
    backup, pipe, target = tmp_path / "big.tlbackup.gz", tmp_path / "pipe.gz", storage_table(target_kind)

    async def prepare() -> None:
        async with opened({"backend": "memory"}) as storage:
            await many(storage, 20_000)
            await backup_sessions(storage, backup)

    asyncio.run(prepare())
    whole = backup.read_bytes()
    os.mkfifo(pipe)
    config = tmp_path / "target.toml"
    config.write_text("[storage]\n" + "".join(f'{key} = "{value}"\n' for key, value in target.items()))
    restoring = subprocess.Popen(
        [sys.executable, "-m", "threadline", "--config", str(config), "sessions", "restore", str(pipe)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
    )  # fmt: skip
    with contextlib.suppress(BrokenPipeError), pipe.open("wb") as feeding:  # opens once the restore reads
        feeding.write(whole[: len(whole) // 2])
        feeding.flush()
        time.sleep(1.0)  # the restore has read what there is, and waits for more
        restoring.send_signal(signal.SIGINT)
        time.sleep(0.5)
        feeding.write(whole[len(whole) // 2 :])  # a restore that stopped reading breaks the pipe
    out, err = restoring.communicate(timeout=60)
    assert restoring.returncode == 130 and "interrupted" in err and "restored" not in out, (out, err)

    async def left() -> dict[tuple[str, str], tuple[Any, ...]]:
        async with opened(target) as storage:
            return await read_all(storage)

    assert asyncio.run(left()) == {}


def test_a_session_postgres_cannot_store_is_left_out_and_the_rest_copied(storage_table: StorageTable) -> None:
    source, target = storage_table("sqlite"), storage_table("postgres")

    async def prepare() -> None:
        async with opened(source) as storage:
            await many(storage, 5)
            await storage.create_session(SessionRecord(id="nul\x00id", tenant="acme"))

    asyncio.run(prepare())
    result = threadline("migrate", *side("from", source), *side("to", target))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert (
        "the target cannot store it, not copied: 'nul\\x00id' (tenant 'acme'): PostgreSQL cannot store" in result.stdout
    )
    assert "copied 5 sessions, 15 messages" in result.stdout


def test_a_source_with_no_sessions_is_an_error(storage_table: StorageTable, tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    result = threadline("migrate", "--from-backend", "sqlite", "--from-setting", f"path={typo}",
                        *side("to", storage_table("sqlite")))  # fmt: skip
    assert result.returncode == 1 and "nothing to copy: sqlite (--from-backend) holds no sessions" in result.stderr


@pytest.mark.parametrize("where", ["in the records", "in the checksum gzip keeps at the end"])
async def test_a_damaged_backup_is_said_so_by_every_backend(
    storage_table: StorageTable, tmp_path: Path, where: str
) -> None:
    backup = tmp_path / "all.tlbackup.gz"
    async with opened({"backend": "memory"}) as storage:
        await many(storage, 300)
        await backup_sessions(storage, backup)
    whole = bytearray(backup.read_bytes())
    whole[len(whole) // 2 if where == "in the records" else -6] ^= 0xFF  # a bit flipped
    backup.write_bytes(bytes(whole))
    for kind in PERSISTENT:
        async with opened(storage_table(kind)) as target:
            with pytest.raises(DataFormatError, match=r"not a whole backup|line \d+:"):
                await restore_sessions(target, backup)
            assert await read_all(target) == {}
