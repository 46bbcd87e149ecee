"""``StorageContract``: what every storage backend promises, as pytest tests.

Subclass it in your plugin's tests and give one fixture, ``storage``: an opened, empty
storage, closed after the test::

    class TestMyStorage(StorageContract):
        @pytest.fixture
        async def storage(self, tmp_path):
            storage = MyStorage(MyConfig(path=tmp_path / "db"))
            await storage.open()
            yield storage
            await storage.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from threadline.contracts import WAITER_SECONDS, Storage
from threadline.errors import DataFormatError, SessionNotFound, StorageConflict
from threadline.model import (
    File,
    Image,
    Message,
    MessageStatus,
    Revision,
    Role,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from threadline.search import SearchHit, SearchQuery


def make_session(**fields: Any) -> SessionRecord:
    return SessionRecord(**{"provider": "echo", "user_id": "u1", **fields})


def make_messages(session: SessionRecord, texts: Iterable[str], *, start: int = 1) -> list[Message]:
    return [
        Message(session.id, start + i, Role.USER if (start + i) % 2 else Role.ASSISTANT, (Text(text),))
        for i, text in enumerate(texts)
    ]


async def all_pages(storage: Storage, query: SessionQuery) -> list[SessionRecord]:
    items: list[SessionRecord] = []
    while True:
        page = await storage.list_sessions(query)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        query = attrs.evolve(query, cursor=page.next_cursor)


async def collect(records: AsyncIterator[Any]) -> list[Any]:
    return [record async for record in records]


async def replay(records: list[Any]) -> AsyncIterator[Any]:
    for record in records:
        yield record


@contextlib.contextmanager
def not_found(tenant: str, session_id: str) -> Iterator[None]:
    """Expect ``SessionNotFound`` naming the session looked for and its tenant."""
    with pytest.raises(SessionNotFound) as caught:
        yield
    assert (caught.value.tenant, caught.value.session_id) == (tenant, session_id)


async def search(storage: Storage, text: str, **fields: Any) -> list[SearchHit]:
    hits: list[SearchHit] = await storage.search_messages(SearchQuery(text, **fields))  # type: ignore[attr-defined]
    return hits


def found(hits: Iterable[SearchHit]) -> set[tuple[str, int]]:
    return {(hit.session_id, hit.seq) for hit in hits}


class StorageContract:
    """The storage contract. Every test gets a fresh ``storage`` from the subclass's fixture.
    A storage with the optional ``search_messages`` subclasses :class:`SearchContract` too."""

    pytestmark = pytest.mark.asyncio

    # -- sessions -----------------------------------------------------------

    async def test_created_session_reads_back_equal(self, storage: Storage) -> None:
        session = make_session(
            model="m1",
            system_prompt="Be brief.",
            template="support",
            title="Ünïcode ✓",
            tools=("get_weather",),
            metadata={"channel": "web", "n": 3, "nested": {"a": [1, 2]}},
            provider_state={"previous_response_id": "resp_1"},
        )
        stored = await storage.create_session(session)
        assert stored == session
        assert await storage.get_session(session.tenant, session.id) == session

    async def test_create_stores_no_messages_whatever_the_record_says(self, storage: Storage) -> None:
        session = make_session(message_count=7, usage=Usage(5, 5), version=9)
        stored = await storage.create_session(session)
        assert (stored.message_count, stored.usage, stored.version) == (0, Usage(), 1)
        assert await storage.get_session(session.tenant, session.id) == stored

    async def test_unknown_session_is_not_found(self, storage: Storage) -> None:
        with not_found("default", "nope"):
            await storage.get_session("default", "nope")
        with not_found("default", "nope"):
            await storage.delete_session("default", "nope")
        with not_found("default", "nope"):
            await storage.get_messages("default", "nope")

    async def test_duplicate_id_is_a_conflict(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        with pytest.raises(StorageConflict, match=f"session {re.escape(repr(session.id))} exists already"):
            await storage.create_session(make_session(id=session.id, title="other"))
        assert (await storage.get_session(session.tenant, session.id)).title is None

    async def test_update_raises_version_and_keeps_created_at(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        updated = await storage.update_session(attrs.evolve(session, title="Renamed", status=SessionStatus.ARCHIVED))
        assert updated.version == session.version + 1
        assert updated.updated_at >= session.updated_at
        assert updated.created_at == session.created_at
        assert await storage.get_session(session.tenant, session.id) == updated

    async def test_update_with_a_stale_version_is_a_conflict_and_changes_nothing(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        first = await storage.update_session(attrs.evolve(session, title="first"))
        with pytest.raises(StorageConflict, match=f"{re.escape(repr(session.id))}.*version"):
            await storage.update_session(attrs.evolve(session, title="stale"))
        assert await storage.get_session(session.tenant, session.id) == first

    async def test_update_leaves_message_count_and_usage_to_the_storage(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["a", "b"]))
        fresh = await storage.get_session(session.tenant, session.id)
        forged = attrs.evolve(
            fresh, title="t", message_count=99, usage=Usage(9, 9), created_at=fresh.created_at - timedelta(days=1)
        )
        updated = await storage.update_session(forged)
        assert (updated.message_count, updated.usage, updated.created_at) == (2, fresh.usage, fresh.created_at)
        assert await storage.get_session(session.tenant, session.id) == updated

    async def test_delete_session_removes_it_and_its_messages_only(self, storage: Storage) -> None:
        doomed = await storage.create_session(make_session())
        kept = await storage.create_session(make_session())
        await storage.append_messages(doomed.tenant, doomed.id, make_messages(doomed, ["x"]))
        await storage.append_messages(kept.tenant, kept.id, make_messages(kept, ["y"]))
        assert len(await storage.get_messages(doomed.tenant, doomed.id)) == 1  # read once: a cache may hold it
        await storage.delete_session(doomed.tenant, doomed.id)
        with not_found(doomed.tenant, doomed.id):
            await storage.get_session(doomed.tenant, doomed.id)
        with not_found(doomed.tenant, doomed.id):
            await storage.get_messages(doomed.tenant, doomed.id)
        assert [m.text for m in await storage.get_messages(kept.tenant, kept.id)] == ["y"]

    # -- messages -----------------------------------------------------------

    async def test_messages_keep_every_part_and_field(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        call = ToolCall("call_1", "get_weather", {"city": "Zürich", "days": [1, 2]}, provider_data={"sig": "abc"})
        attachments = (
            Text("look"),
            Image("image/png", data=b"\x89PNG\x00\xff"),
            Image("image/jpeg", url="https://example.com/a.jpg"),
            File("application/pdf", data=b"%PDF-1.7", name="a.pdf"),
        )
        results = (ToolResult("call_1", '{"temp": 21}'), ToolResult("c2", "boom", is_error=True))
        messages = [
            Message(session.id, 1, Role.USER, attachments, metadata={"ip": "x"}),
            Message(
                session.id,
                2,
                Role.ASSISTANT,
                (Text("", provider_data={"thinking": "t"}), call),
                usage=Usage(10, 5, 2, 0.001),
                provider="echo",
                model="echo-1",
            ),
            Message(session.id, 3, Role.TOOL, results),
            Message(session.id, 4, Role.ASSISTANT, (Text("partial"),), status=MessageStatus.INCOMPLETE, error="x"),
        ]
        await storage.append_messages(session.tenant, session.id, messages)
        assert await storage.get_messages(session.tenant, session.id) == messages

    async def test_append_counts_messages_and_sums_usage(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        first = Message(session.id, 1, Role.USER, (Text("q"),))
        second = Message(session.id, 2, Role.ASSISTANT, (Text("a"),), usage=Usage(3, 4, 1))
        third = Message(session.id, 3, Role.ASSISTANT, (Text("b"),), usage=Usage(1, 1))
        await storage.append_messages(session.tenant, session.id, [first, second])
        await asyncio.sleep(0.01)  # past any storage's clock resolution
        await storage.append_messages(session.tenant, session.id, [third])
        stored = await storage.get_session(session.tenant, session.id)
        assert stored.message_count == 3
        assert stored.usage == Usage(4, 5, 1)
        assert stored.updated_at > session.updated_at  # an append makes the session recent

    async def test_append_refuses_a_gap_or_a_repeat_and_writes_nothing(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["1", "2"]))
        for seqs in ([2], [4], [3, 5], [3, 3], [1, 2, 3]):
            batch = [Message(session.id, seq, Role.USER, (Text(f"bad {seq}"),)) for seq in seqs]
            with pytest.raises(StorageConflict, match=re.escape(f"got {seqs}")):  # says what it was given
                await storage.append_messages(session.tenant, session.id, batch)
        assert [m.text for m in await storage.get_messages(session.tenant, session.id)] == ["1", "2"]
        assert (await storage.get_session(session.tenant, session.id)).message_count == 2

    async def test_appending_no_messages_changes_nothing_stored(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["1"]))
        before = await storage.get_session(session.tenant, session.id)
        await storage.append_messages(session.tenant, session.id, [])
        assert [m.text for m in await storage.get_messages(session.tenant, session.id)] == ["1"]
        assert await storage.get_session(session.tenant, session.id) == before
        with not_found(session.tenant, "nope"):
            await storage.append_messages(session.tenant, "nope", [])

    async def test_a_message_of_another_session_is_refused(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        stray = make_messages(make_session(), ["not yours"])  # seq 1, as the session expects
        with pytest.raises(StorageConflict, match=f"belongs to session {stray[0].session_id!r}, not {session.id!r}"):
            await storage.append_messages(session.tenant, session.id, stray)
        assert await storage.get_messages(session.tenant, session.id) == []
        assert (await storage.get_session(session.tenant, session.id)).message_count == 0

    async def test_get_messages_by_range_and_newest(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        texts = [f"m{i}" for i in range(1, 11)]
        await storage.append_messages(session.tenant, session.id, make_messages(session, texts))
        newest = await storage.get_messages(session.tenant, session.id, last=3)
        assert [m.seq for m in newest] == [8, 9, 10]
        after = await storage.get_messages(session.tenant, session.id, after_seq=6)
        assert [m.seq for m in after] == [7, 8, 9, 10]
        both = await storage.get_messages(session.tenant, session.id, after_seq=2, last=2)
        assert [m.seq for m in both] == [9, 10]
        assert await storage.get_messages(session.tenant, session.id, after_seq=10) == []
        assert len(await storage.get_messages(session.tenant, session.id, after_seq=-3)) == 10  # seq > -3: all
        assert await storage.get_messages(session.tenant, session.id, last=0) == []
        assert len(await storage.get_messages(session.tenant, session.id, last=10**9)) == 10

    @pytest.mark.parametrize("cancels", [1, 2], ids=["cancelled", "cancelled-twice"])
    async def test_a_cancelled_append_is_done_when_the_cancellation_arrives(
        self, storage: Storage, cancels: int
    ) -> None:
        """Committed or given up, but not still under way in a thread or on a server, however
        often it is cancelled (Ctrl-C pressed twice)."""
        for delay in (0, 0.001, 0.005, 0.02):
            session = await storage.create_session(make_session())
            batch = [Message(session.id, seq, Role.USER, (Text(f"{seq} " + "x" * 20_000),)) for seq in range(1, 301)]
            task = asyncio.ensure_future(storage.append_messages(session.tenant, session.id, batch))
            await asyncio.sleep(delay)
            for _ in range(cancels):
                task.cancel()
                await asyncio.sleep(0)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            seen = len(await storage.get_messages(session.tenant, session.id))
            await asyncio.sleep(0.3)
            assert seen in (0, len(batch))
            assert len(await storage.get_messages(session.tenant, session.id)) == seen
            assert (await storage.get_session(session.tenant, session.id)).message_count == seen

    async def test_a_turn_lease_has_one_holder_at_a_time(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        assert await storage.take_turn(tenant, sid, "a", 30)
        assert not await storage.take_turn(tenant, sid, "b", 30)
        assert await storage.take_turn(tenant, sid, "a", 30)  # its holder extends it
        await storage.end_turn(tenant, sid, "b")  # not b's to give back
        assert not await storage.take_turn(tenant, sid, "b", 30)
        await storage.end_turn(tenant, sid, "a")
        assert await storage.take_turn(tenant, sid, "b", 30)
        other = await storage.create_session(make_session())
        assert await storage.take_turn(tenant, other.id, "a", 30)  # one lease per session
        with not_found(tenant, "no-such-session"):
            await storage.take_turn(tenant, "no-such-session", "a", 30)

    async def test_a_turn_lease_goes_to_who_waited_first(self, storage: Storage) -> None:
        """A process with many turns queued cannot take the lease back while another waits."""
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        assert await storage.take_turn(tenant, sid, "busy", 30)
        assert not await storage.take_turn(tenant, sid, "patient", 30)  # now waiting
        await storage.end_turn(tenant, sid, "busy")
        assert not await storage.take_turn(tenant, sid, "busy", 30)  # its next turn: not yet
        assert not await storage.take_turn(tenant, sid, "third", 30)
        assert await storage.take_turn(tenant, sid, "patient", 30)
        await storage.end_turn(tenant, sid, "patient")
        assert await storage.take_turn(tenant, sid, "busy", 30)  # free, and nobody waits

    async def test_a_turn_lease_runs_out(self, storage: Storage) -> None:
        """A holder that died never gives its lease back: it runs out."""
        session = await storage.create_session(make_session())
        assert await storage.take_turn(session.tenant, session.id, "dead", 0.2)
        assert not await storage.take_turn(session.tenant, session.id, "alive", 30)
        await asyncio.sleep(0.35)
        assert await storage.take_turn(session.tenant, session.id, "alive", 30)

    async def test_a_waiter_that_stops_asking_loses_its_place(self, storage: Storage) -> None:
        """A process that died while waiting for a turn keeps the others out only briefly."""
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        assert await storage.take_turn(tenant, sid, "busy", 30)
        assert not await storage.take_turn(tenant, sid, "gone", 30)  # waits, then dies
        await storage.end_turn(tenant, sid, "busy")
        assert not await storage.take_turn(tenant, sid, "third", 30)  # the waiter's place is kept
        await asyncio.sleep(WAITER_SECONDS + 0.2)
        assert await storage.take_turn(tenant, sid, "third", 30)

    async def test_message_status_can_be_marked(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["q", "a", "q2"]))
        await storage.set_message_status(session.tenant, session.id, 2, "failed", "rate limited")
        messages = await storage.get_messages(session.tenant, session.id)
        assert [(m.status, m.error, m.text) for m in messages] == [
            (MessageStatus.OK, None, "q"),
            (MessageStatus.FAILED, "rate limited", "a"),
            (MessageStatus.OK, None, "q2"),
        ]

    async def test_marking_a_message_that_does_not_exist_is_a_conflict(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["q"]))
        with pytest.raises(StorageConflict, match=f"{re.escape(repr(session.id))} has no message 2"):
            await storage.set_message_status(session.tenant, session.id, 2, "failed")

    # -- editing the history ----------------------------------------------------

    async def test_replacing_keeps_what_it_replaced_as_a_revision(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        old = [
            *make_messages(session, ["q1", "a1", "q2"]),
            Message(sid, 4, Role.ASSISTANT, (Text("a2"),), usage=Usage(3, 4), status=MessageStatus.INCOMPLETE,
                    error="cut", provider="echo", model="m", metadata={"k": [1]}),
        ]  # fmt: skip
        await storage.append_messages(tenant, sid, old)
        await storage.get_messages(tenant, sid)  # a storage that caches histories has it now
        before = await storage.get_session(tenant, sid)
        await asyncio.sleep(0.01)  # past any storage's clock resolution
        new = make_messages(session, ["q2, edited", "a2, again"], start=3)
        revision = await storage.replace_messages(tenant, sid, 2, new, count=4)
        assert (revision.session_id, revision.number, revision.after_seq, revision.added) == (sid, 1, 2, 2)
        assert revision.replaced == tuple(old[2:])  # every field as it was stored
        assert await storage.get_messages(tenant, sid) == [*old[:2], *new]
        assert await storage.get_messages(tenant, sid, last=1) == new[1:]
        after = await storage.get_session(tenant, sid)
        assert after.message_count == 4
        assert after.usage == before.usage  # the replaced reply's tokens were spent all the same
        assert after.version == before.version + 1  # a holder of the session as it was can tell
        assert after.updated_at > before.updated_at
        assert await storage.get_revisions(tenant, sid) == [revision]

    async def test_replacing_with_nothing_shortens_the_history_and_appends_go_on(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        await storage.append_messages(tenant, sid, make_messages(session, ["q1", "a1", "q2", "a2"]))
        first = await storage.replace_messages(tenant, sid, 2, [], count=4)
        assert [m.text for m in first.replaced] == ["q2", "a2"]
        assert (await storage.get_session(tenant, sid)).message_count == 2
        await storage.append_messages(tenant, sid, make_messages(session, ["q3"], start=3))
        assert [m.text for m in await storage.get_messages(tenant, sid)] == ["q1", "a1", "q3"]
        await storage.set_message_status(tenant, sid, 3, "failed")
        second = await storage.replace_messages(tenant, sid, 0, [], count=3)
        assert second.number == 2
        assert [(m.text, m.status) for m in second.replaced] == [
            ("q1", MessageStatus.OK), ("a1", MessageStatus.OK), ("q3", MessageStatus.FAILED)
        ]  # fmt: skip
        assert await storage.get_messages(tenant, sid) == []
        assert [r.number for r in await storage.get_revisions(tenant, sid)] == [1, 2]

    async def test_a_replacement_that_does_not_fit_is_refused_and_changes_nothing(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        await storage.append_messages(tenant, sid, make_messages(session, ["q1", "a1", "q2"]))
        before = (await storage.get_session(tenant, sid), await storage.get_messages(tenant, sid))
        refused = {
            "has 3 messages, not 2": (1, make_messages(session, ["x"], start=2), 2),
            "no message 4 to replace after": (4, [], 3),
            "no message -1 to replace after": (-1, [], 3),
            "seqs must be [2], got [3]": (1, make_messages(session, ["x"], start=3), 3),
            f"belongs to session {'other'!r}": (1, [Message("other", 2, Role.USER, (Text("x"),))], 3),
        }
        for says, (after_seq, messages, count) in refused.items():
            with pytest.raises(StorageConflict, match=re.escape(says)):
                await storage.replace_messages(tenant, sid, after_seq, messages, count=count)
        assert (await storage.get_session(tenant, sid), await storage.get_messages(tenant, sid)) == before
        assert await storage.get_revisions(tenant, sid) == []
        with not_found(tenant, "nope"):
            await storage.replace_messages(tenant, "nope", 0, [], count=0)
        with not_found("elsewhere", sid):
            await storage.get_revisions("elsewhere", sid)

    async def test_a_replacement_and_an_append_that_race_do_not_both_land(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        await storage.append_messages(tenant, sid, make_messages(session, ["q1", "a1", "q2", "a2"]))
        results = await asyncio.gather(
            storage.replace_messages(tenant, sid, 2, [], count=4),
            storage.append_messages(tenant, sid, make_messages(session, ["q3"], start=5)),
            return_exceptions=True,
        )
        assert sum(isinstance(result, StorageConflict) for result in results) == 1, results
        texts = [m.text for m in await storage.get_messages(tenant, sid)]
        assert texts in (["q1", "a1"], ["q1", "a1", "q2", "a2", "q3"])
        assert (await storage.get_session(tenant, sid)).message_count == len(texts)

    async def test_deleting_a_session_deletes_its_revisions(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["q1"]))
        await storage.replace_messages(session.tenant, session.id, 0, [], count=1)
        other = await storage.create_session(make_session())
        await storage.replace_messages(other.tenant, other.id, 0, [], count=0)
        await storage.delete_session(session.tenant, session.id)
        await storage.create_session(session)  # the same id again: a new session
        assert await storage.get_revisions(session.tenant, session.id) == []
        assert [r.number for r in await storage.get_revisions(other.tenant, other.id)] == [1]

    async def test_concurrent_appends_to_many_sessions_all_land(self, storage: Storage) -> None:
        sessions = [await storage.create_session(make_session()) for _ in range(10)]

        async def fill(session: SessionRecord) -> None:
            for seq in range(1, 21):
                message = Message(session.id, seq, Role.USER, (Text(f"{session.id}:{seq}"),))
                await storage.append_messages(session.tenant, session.id, [message])

        await asyncio.gather(*(fill(s) for s in sessions))
        for session in sessions:
            messages = await storage.get_messages(session.tenant, session.id)
            assert [m.text for m in messages] == [f"{session.id}:{seq}" for seq in range(1, 21)]

    # -- listing ------------------------------------------------------------

    async def test_list_filters_by_user_and_status_newest_first(self, storage: Storage) -> None:
        older = await storage.create_session(make_session(user_id="ann"))
        newer = await storage.create_session(make_session(user_id="ann"))
        await storage.create_session(make_session(user_id="bob"))
        await storage.append_messages(newer.tenant, newer.id, make_messages(newer, ["hi"]))
        archived = await storage.create_session(make_session(user_id="ann"))
        await storage.update_session(attrs.evolve(archived, status=SessionStatus.ARCHIVED))

        anns = await all_pages(storage, SessionQuery(user_id="ann", status=SessionStatus.ACTIVE))
        assert [s.id for s in anns] == [newer.id, older.id]
        assert anns[0].message_count == 1
        archived_ones = await all_pages(storage, SessionQuery(status=SessionStatus.ARCHIVED))
        assert [s.id for s in archived_ones] == [archived.id]

    async def test_unfiltered_listing_mixes_statuses_newest_first(self, storage: Storage) -> None:
        created = [await storage.create_session(make_session()) for _ in range(7)]
        for session in created[::2]:
            await storage.update_session(attrs.evolve(session, status=SessionStatus.ARCHIVED))
        listed = await all_pages(storage, SessionQuery(limit=3))
        assert sorted(s.id for s in listed) == sorted(s.id for s in created)
        assert [s.id for s in listed][:4] == [s.id for s in reversed(created[::2])]  # archiving is activity
        keys = [(s.updated_at, s.id) for s in listed]
        assert keys == sorted(keys, reverse=True)

    async def test_pagination_returns_each_session_once_in_order(self, storage: Storage) -> None:
        created = [await storage.create_session(make_session()) for _ in range(23)]
        page = await storage.list_sessions(SessionQuery(limit=5))
        assert len(page.items) == 5 and page.next_cursor is not None
        listed = await all_pages(storage, SessionQuery(limit=5))
        assert sorted(s.id for s in listed) == sorted(s.id for s in created)
        keys = [(s.updated_at, s.id) for s in listed]
        assert keys == sorted(keys, reverse=True)

    async def test_pagination_survives_updates_between_pages(self, storage: Storage) -> None:
        created = [await storage.create_session(make_session()) for _ in range(6)]
        page = await storage.list_sessions(SessionQuery(limit=3))
        assert page.next_cursor is not None
        # the newest session moves to the top; the rest still come exactly once
        await storage.update_session(attrs.evolve(await storage.get_session("default", created[0].id), title="x"))
        rest = await all_pages(storage, SessionQuery(limit=3, cursor=page.next_cursor))
        seen = [s.id for s in page.items] + [s.id for s in rest]
        assert len(seen) == len(set(seen))

    async def test_a_page_of_exactly_the_limit_is_the_last(self, storage: Storage) -> None:
        for _ in range(3):
            await storage.create_session(make_session())
        page = await storage.list_sessions(SessionQuery(limit=3))
        assert (len(page.items), page.next_cursor) == (3, None)

    async def test_list_by_updated_time(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        before = session.updated_at - timedelta(seconds=1)
        after = datetime.now(UTC) + timedelta(seconds=1)
        assert [s.id for s in await all_pages(storage, SessionQuery(updated_after=before))] == [session.id]
        assert await all_pages(storage, SessionQuery(updated_after=after)) == []
        assert [s.id for s in await all_pages(storage, SessionQuery(updated_before=after))] == [session.id]
        exactly = session.updated_at  # both bounds are strict
        assert await all_pages(storage, SessionQuery(updated_after=exactly)) == []
        assert await all_pages(storage, SessionQuery(updated_before=exactly)) == []

    # -- tenants ------------------------------------------------------------

    async def test_tenants_do_not_see_each_other(self, storage: Storage) -> None:
        mine = await storage.create_session(make_session(tenant="acme"))
        await storage.append_messages("acme", mine.id, make_messages(mine, ["secret"]))
        with not_found("globex", mine.id):
            await storage.get_session("globex", mine.id)
        with not_found("globex", mine.id):
            await storage.get_messages("globex", mine.id)
        with not_found("globex", mine.id):
            await storage.append_messages("globex", mine.id, make_messages(mine, ["x"], start=2))
        with not_found("globex", mine.id):
            await storage.delete_session("globex", mine.id)
        with not_found("globex", mine.id):
            await storage.update_session(attrs.evolve(mine, tenant="globex", title="taken over"))
        assert await all_pages(storage, SessionQuery(tenant="globex")) == []
        assert (await storage.delete_user("globex", "u1")).sessions == 0
        assert [m.text for m in await storage.get_messages("acme", mine.id)] == ["secret"]

    async def test_same_session_id_in_two_tenants_are_two_sessions(self, storage: Storage) -> None:
        a = await storage.create_session(make_session(tenant="a", title="A"))
        b = await storage.create_session(make_session(tenant="b", id=a.id, title="B"))
        assert (await storage.get_session("a", a.id)).title == "A"
        assert (await storage.get_session("b", b.id)).title == "B"

    # -- users --------------------------------------------------------------

    async def test_delete_user_removes_their_sessions_and_reports_counts(self, storage: Storage) -> None:
        gone = [await storage.create_session(make_session(user_id="leaver")) for _ in range(3)]
        for session in gone:
            await storage.append_messages(session.tenant, session.id, make_messages(session, ["a", "b"]))
        stays = await storage.create_session(make_session(user_id="stayer"))
        other_tenant = await storage.create_session(make_session(user_id="leaver", tenant="elsewhere"))
        counts = await storage.delete_user("default", "leaver")
        assert (counts.sessions, counts.messages) == (3, 6)
        for session in gone:
            with not_found("default", session.id):
                await storage.get_session("default", session.id)
        await storage.get_session("default", stays.id)
        await storage.get_session("elsewhere", other_tenant.id)

    # -- export and import --------------------------------------------------

    async def test_export_then_import_restores_everything(self, storage: Storage) -> None:
        sessions = [await storage.create_session(make_session(title=f"s{i}")) for i in range(3)]
        for session in sessions:
            await storage.append_messages(session.tenant, session.id, make_messages(session, ["q", "a", "q2"]))
        await storage.create_session(make_session(tenant="other"))
        records = await collect(storage.export_records("default"))
        assert len(records) == 3 + 9
        before = {s.id: await storage.get_session("default", s.id) for s in sessions}
        for session in sessions:
            await storage.delete_session("default", session.id)
        assert await storage.import_records(replay(records)) == len(records)
        for session in sessions:
            assert await storage.get_session("default", session.id) == before[session.id]
            assert [m.text for m in await storage.get_messages("default", session.id)] == ["q", "a", "q2"]

    async def test_revisions_come_after_their_sessions_messages_and_import_whole(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        tenant, sid = session.tenant, session.id
        first_turn, second_turn = make_messages(session, ["q1", "a1"]), make_messages(session, ["q2", "a2"], start=3)
        second_turn[1] = attrs.evolve(second_turn[1], usage=Usage(7, 9))
        await storage.append_messages(tenant, sid, [*first_turn, *second_turn])
        await storage.set_message_status(tenant, sid, 4, "incomplete", "cut")
        await storage.replace_messages(tenant, sid, 2, make_messages(session, ["q2, again"], start=3), count=4)
        await storage.replace_messages(tenant, sid, 0, make_messages(session, ["new start"]), count=3)
        other = await storage.create_session(make_session())
        await storage.append_messages(tenant, other.id, make_messages(other, ["x"]))
        revisions = await storage.get_revisions(tenant, sid)
        before = await storage.get_session(tenant, sid)
        assert before.usage == Usage(7, 9)  # the replaced reply's tokens were spent all the same
        records = await collect(storage.export_records(tenant))
        mine = [r for r in records if getattr(r, "session_id", getattr(r, "id", None)) == sid]
        assert [type(r).__name__ for r in mine] == ["SessionRecord", "Message", "Revision", "Revision"]
        assert mine[2:] == revisions
        start = records.index(mine[0])
        assert records[start : start + 4] == mine  # the session's records one after another
        await storage.delete_session(tenant, sid)
        await storage.delete_session(tenant, other.id)
        assert await storage.import_records(replay(records)) == len(records)
        assert await storage.get_session(tenant, sid) == before  # its usage too, not its messages' sum
        assert await storage.get_revisions(tenant, sid) == revisions
        assert await storage.get_revisions(tenant, other.id) == []
        assert [m.text for m in await storage.get_messages(tenant, sid)] == ["new start"]
        later = await storage.replace_messages(tenant, sid, 1, [], count=1)
        assert later.number == 3  # numbering goes on after the imported ones

    async def test_an_import_refuses_revisions_out_of_place(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        await storage.append_messages(session.tenant, session.id, make_messages(session, ["q1", "a1"]))
        first = await storage.replace_messages(session.tenant, session.id, 1, [], count=2)
        second = await storage.replace_messages(session.tenant, session.id, 0, [], count=1)
        await storage.delete_session(session.tenant, session.id)
        orphan = Revision("elsewhere", 1, 0, (), 0)
        cases: list[tuple[list[Any], str]] = [
            ([first], "revision 1 of session .* does not follow its session"),
            ([session, orphan], "revision 1 of session 'elsewhere' does not follow its session"),
            ([session, second], "revision 2 of session .* is not numbered 1"),
            ([session, first, first], "revision 1 of session .* is not numbered 2"),
        ]
        for records, says in cases:
            with pytest.raises(DataFormatError, match=says):
                await storage.import_records(replay(records))
        with not_found(session.tenant, session.id):
            await storage.get_session(session.tenant, session.id)

    async def test_export_includes_a_session_with_no_messages(self, storage: Storage) -> None:
        empty = await storage.create_session(make_session())
        assert await collect(storage.export_records("default")) == [empty]

    async def test_a_session_deleted_during_an_export_does_not_break_it(self, storage: Storage) -> None:
        first, second = [await storage.create_session(make_session()) for _ in range(2)]
        for session in (first, second):
            await storage.append_messages(session.tenant, session.id, make_messages(session, ["q", "a"]))
        exported: list[Any] = []
        async for record in storage.export_records("default"):
            exported.append(record)
            if isinstance(record, SessionRecord):  # each deleted once it is exported, while the export goes on
                await storage.delete_session(record.tenant, record.id)
        assert {r.id for r in exported if isinstance(r, SessionRecord)} == {first.id, second.id}
        for index, record in enumerate(exported):  # each whole, as it was when the export began
            if isinstance(record, SessionRecord):
                assert [m.text for m in exported[index + 1 : index + 3]] == ["q", "a"]

    async def test_export_of_all_tenants(self, storage: Storage) -> None:
        await storage.create_session(make_session(tenant="a"))
        await storage.create_session(make_session(tenant="b"))
        tenants = {r.tenant for r in await collect(storage.export_records(None)) if isinstance(r, SessionRecord)}
        assert tenants == {"a", "b"}

    async def test_import_counts_the_messages_it_brings(self, storage: Storage) -> None:
        claimed = make_session(message_count=7, usage=Usage(100, 100))
        messages = make_messages(claimed, ["q", "a"])
        messages[1] = attrs.evolve(messages[1], usage=Usage(3, 4, 1, 0.5))
        await storage.import_records(replay([claimed, *messages]))
        imported = await storage.get_session("default", claimed.id)
        assert (imported.message_count, imported.usage) == (2, Usage(3, 4, 1, 0.5))
        await storage.append_messages("default", claimed.id, make_messages(claimed, ["q2"], start=3))
        assert [m.seq for m in await storage.get_messages("default", claimed.id)] == [1, 2, 3]

    async def test_an_import_keeps_what_was_written_while_it_read(self, storage: Storage) -> None:
        written = await storage.create_session(make_session())
        imported = make_session()

        async def slow() -> AsyncIterator[SessionRecord | Message]:
            records: list[SessionRecord | Message] = [imported, *make_messages(imported, ["x", "y"])]
            for record in records:
                await asyncio.sleep(0.01)
                yield record

        async def meanwhile() -> SessionRecord:
            await asyncio.sleep(0.005)
            await storage.append_messages("default", written.id, make_messages(written, ["during"]))
            return await storage.create_session(make_session())

        _, created = await asyncio.gather(storage.import_records(slow()), meanwhile())
        assert [m.text for m in await storage.get_messages("default", written.id)] == ["during"]
        assert (await storage.get_session("default", created.id)).id == created.id
        assert len(await storage.get_messages("default", imported.id)) == 2

    async def test_an_import_refuses_a_session_that_exists(self, storage: Storage) -> None:
        existing = await storage.create_session(make_session())
        with pytest.raises(StorageConflict, match=f"{re.escape(repr(existing.id))} exists already"):
            await storage.import_records(replay([existing]))

    async def test_an_import_refuses_messages_out_of_place(self, storage: Storage) -> None:
        session = make_session()
        first, _, third = make_messages(session, ["q", "a", "q2"])
        with pytest.raises(DataFormatError, match=f"{re.escape(repr(first.id))} does not follow its session"):
            await storage.import_records(replay([first]))
        with pytest.raises(DataFormatError, match=f"{re.escape(repr(third.id))} has seq 3"):
            await storage.import_records(replay([session, first, third]))
        with not_found("default", session.id):
            await storage.get_session("default", session.id)

    async def test_an_import_and_a_create_of_the_same_session_do_not_both_succeed(self, storage: Storage) -> None:
        clash = make_session()

        async def slow() -> AsyncIterator[SessionRecord | Message]:
            yield clash
            await asyncio.sleep(0.02)
            yield make_messages(clash, ["x"])[0]

        async def meanwhile() -> SessionRecord:
            await asyncio.sleep(0.005)
            return await storage.create_session(clash)

        imported, created = await asyncio.gather(storage.import_records(slow()), meanwhile(), return_exceptions=True)
        loser = created if isinstance(created, StorageConflict) else imported
        assert isinstance(loser, StorageConflict) and repr(clash.id) in str(loser), (imported, created)
        kept = await storage.get_messages("default", clash.id)
        assert [m.text for m in kept] == ([] if loser is imported else ["x"])

    async def test_an_import_whose_records_fail_part_way_writes_nothing(self, storage: Storage) -> None:
        first, second = make_session(), make_session()

        async def breaking_off() -> AsyncIterator[SessionRecord | Message]:
            records: list[SessionRecord | Message] = [first, *make_messages(first, ["q", "a"]), second]
            for record in records:
                yield record
            raise DataFormatError("the file broke off")  # as a restore does when a checksum is wrong

        with pytest.raises(DataFormatError, match="broke off"):
            await storage.import_records(breaking_off())
        for session in (first, second):
            with not_found("default", session.id):
                await storage.get_session("default", session.id)

    async def test_import_is_all_or_nothing(self, storage: Storage) -> None:
        existing = await storage.create_session(make_session())
        fresh = make_session()
        records = [fresh, *make_messages(fresh, ["x"]), attrs.evolve(existing, title="clash")]
        with pytest.raises(StorageConflict):
            await storage.import_records(replay(records))
        with not_found("default", fresh.id):
            await storage.get_session("default", fresh.id)
        assert (await storage.get_session("default", existing.id)).title is None


class SearchContract:
    """The optional full-text search (``Storage.search_messages``): a storage that has it
    subclasses this beside :class:`StorageContract`, with the same ``storage`` fixture."""

    pytestmark = pytest.mark.asyncio

    async def test_search_finds_messages_by_their_words(self, storage: Storage) -> None:
        session = await storage.create_session(make_session(title="Trip", model="m1", user_id="ann"))
        call = ToolCall("c1", "get_weather", {"city": "Zürich"})
        messages = [
            Message(session.id, 1, Role.USER, (Text("Where should I drink a CAFÉ au lait in Paris?"),)),
            Message(session.id, 2, Role.ASSISTANT, (Text("Let me look."), call)),
            Message(session.id, 3, Role.TOOL, (ToolResult("c1", "drizzle, 12 degrees"),)),
            Message(session.id, 4, Role.ASSISTANT, (Text("Try the small cafe near the Seine; it is dry there."),)),
        ]
        await storage.append_messages(session.tenant, session.id, messages)
        hits = await search(storage, "cafe")  # case and accents left out
        assert found(hits) == {(session.id, 1), (session.id, 4)}
        first = next(hit for hit in hits if hit.seq == 1)
        assert (first.session_id, first.role, first.created_at, first.message_id) == (
            session.id, Role.USER, messages[0].created_at, messages[0].id
        )  # fmt: skip
        assert (first.title, first.user_id, first.provider, first.model) == ("Trip", "ann", "echo", "m1")
        assert "[CAFÉ]" in first.snippet and "lait" in first.snippet
        assert found(await search(storage, "paris cafe")) == {(session.id, 1)}  # every term
        assert found(await search(storage, "weather zurich")) == {(session.id, 2)}  # a call's name, arguments
        assert found(await search(storage, "drizzle")) == {(session.id, 3)}  # a tool's result
        assert found(await search(storage, "au lait")) == {(session.id, 1)}
        assert await search(storage, "lait au") != []  # two terms, each anywhere
        assert found(await search(storage, "near-the seine")) == {(session.id, 4)}  # a term's words in a row
        assert await search(storage, "the-near") == []
        assert await search(storage, "caf") == []  # words, not parts of words
        assert len(await search(storage, "cafe", limit=1)) == 1

    async def test_search_words_are_folded_as_sqlites_unicode61_folds_them(self, storage: Storage) -> None:
        """Each character lowercased on its own and its accent taken off, nothing more (what
        threadline.search says): every storage finds the same messages for the same words."""
        session = await storage.create_session(make_session())
        texts = ["Straße", "ﬁnance", "İstanbul", "Cafe\u0301 noir", "ΟΔΟΣ", "x\u0301\u0301 y"]
        await storage.append_messages(session.tenant, session.id, make_messages(session, texts))
        expected = {
            "Straße": 1, "STRAßE": 1, "straße": 1, "strasse": None, "STRASSE": None,  # ß is no ss
            "ﬁnance": 2, "finance": None,  # a ligature stays one
            "istanbul": 3, "İSTANBUL": 3, "i\u0307stanbul": 3,  # İ is i
            "café": 4, "CAFÉ": 4, "cafe": 4, "cafe\u0301 noir": 4,  # an accent, composed or not
            "οδος": 5, "οδοσ": 5, "ΟΔΟΣ": 5,  # final sigma is sigma
            "x y": 6, "\u0301": None,  # an accent alone is no word
        }  # fmt: skip
        for text, seq in expected.items():
            assert found(await search(storage, text)) == ({(session.id, seq)} if seq else set()), text

    async def test_search_filters_by_user_provider_and_time(self, storage: Storage) -> None:
        now = datetime.now(UTC)
        ann = await storage.create_session(make_session(user_id="ann"))
        bob = await storage.create_session(make_session(user_id="bob", provider="other"))
        for session in (ann, bob):
            old = Message(session.id, 1, Role.USER, (Text("budget old"),), created_at=now - timedelta(days=3))
            new = Message(session.id, 2, Role.USER, (Text("budget new"),), created_at=now - timedelta(minutes=5))
            await storage.append_messages(session.tenant, session.id, [old, new])
        assert len(await search(storage, "budget")) == 4
        assert found(await search(storage, "budget", user_id="ann")) == {(ann.id, 1), (ann.id, 2)}
        assert found(await search(storage, "budget", provider="other")) == {(bob.id, 1), (bob.id, 2)}
        assert found(await search(storage, "budget", since=now - timedelta(days=1))) == {(ann.id, 2), (bob.id, 2)}
        assert await search(storage, "budget", user_id="ann", provider="other") == []
        assert await search(storage, "budget", since=now) == []

    async def test_search_keeps_to_its_tenant(self, storage: Storage) -> None:
        mine = await storage.create_session(make_session(tenant="acme"))
        theirs = await storage.create_session(make_session(tenant="globex", id=mine.id))
        await storage.append_messages("acme", mine.id, make_messages(mine, ["merger plans"]))
        await storage.append_messages("globex", theirs.id, make_messages(theirs, ["merger rumours"]))
        assert [hit.snippet for hit in await search(storage, "merger", tenant="acme")] == ["[merger] plans"]
        assert [hit.snippet for hit in await search(storage, "merger", tenant="globex")] == ["[merger] rumours"]
        assert await search(storage, "merger") == []  # the default tenant has none

    async def test_edited_deleted_and_imported_text_is_found_as_it_now_is(self, storage: Storage) -> None:
        session = await storage.create_session(make_session(user_id="leaver"))
        tenant, sid = session.tenant, session.id
        await storage.append_messages(tenant, sid, make_messages(session, ["apple one", "apple two", "apple three"]))
        await storage.replace_messages(tenant, sid, 1, make_messages(session, ["banana two"], start=2), count=3)
        assert found(await search(storage, "apple")) == {(sid, 1)}  # what an edit or undo replaced is not found
        assert found(await search(storage, "banana")) == {(sid, 2)}
        await storage.append_messages(tenant, sid, make_messages(session, ["apple again"], start=3))
        assert found(await search(storage, "apple")) == {(sid, 1), (sid, 3)}
        records = await collect(storage.export_records(tenant))
        await storage.delete_session(tenant, sid)
        assert await search(storage, "apple") == []
        await storage.import_records(replay(records))
        assert found(await search(storage, "apple")) == {(sid, 1), (sid, 3)}
        kept = await storage.create_session(make_session(user_id="stayer"))
        await storage.append_messages(tenant, kept.id, make_messages(kept, ["apple kept"]))
        await storage.delete_user(tenant, "leaver")
        assert found(await search(storage, "apple")) == {(kept.id, 1)}

    async def test_odd_search_text_finds_or_finds_nothing_but_never_fails(self, storage: Storage) -> None:
        session = await storage.create_session(make_session())
        texts = ['say "hello*" AND NEAR(x, y) OR NOT -z ^col:1', "日本語のテキスト", "emoji 🎉 party", "nul \x00 byte"]
        await storage.append_messages(session.tenant, session.id, make_messages(session, texts))
        for text in ['"', '""', "*", "hello*", '"hello', "AND", "OR NOT", "NEAR(x", "col:1", "^col", "-z", "(", "{x}"]:
            hits = await search(storage, text)
            assert found(hits) <= {(session.id, 1)}, text
        assert found(await search(storage, '"hello*" near')) == {(session.id, 1)}
        assert found(await search(storage, "日本語のテキスト")) == {(session.id, 2)}
        assert found(await search(storage, "party 🎉")) == {(session.id, 3)}
        assert found(await search(storage, "byte \x00")) == {(session.id, 4)}
        for nothing in ("", "   ", "***", "🎉", "\x00"):  # no words: nothing to look for
            assert await search(storage, nothing) == []
        assert await search(storage, "word " * 500) == []

    async def test_a_cancelled_append_leaves_search_as_its_messages(self, storage: Storage) -> None:
        for index, delay in enumerate((0, 0.001, 0.005, 0.02)):
            session = await storage.create_session(make_session())
            batch = [
                Message(session.id, seq, Role.USER, (Text(f"needle{index} {seq} " + "x" * 20_000),))
                for seq in range(1, 301)
            ]
            task = asyncio.ensure_future(storage.append_messages(session.tenant, session.id, batch))
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            seen = len(await storage.get_messages(session.tenant, session.id))
            assert len(await search(storage, f"needle{index}", limit=1000)) == seen
