"""``SharedStorageContract``: what a storage that several processes share promises on top of
the :class:`StorageContract`: each sees at once what the others wrote, whatever it keeps in
memory between reads (a history cache).

Subclass it and give two fixtures: ``storage``, an opened, empty storage (with its cache on,
or parametrized over cache settings), and ``other``, a second storage opened on the same
data, as another process would have it, with any cache of its own off: its reads are the
reference that ``storage``'s must equal::

    class TestMyStorageShared(SharedStorageContract):
        @pytest.fixture
        async def other(self, tmp_path):
            other = MyStorage(MyConfig(path=tmp_path / "db", cache=0))
            await other.open()
            yield other
            await other.close()
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import pytest

from threadline.contracts import Storage
from threadline.errors import SessionNotFound
from threadline.model import Message, MessageStatus, Role, SessionRecord, Text

SESSION = "s1"
#: (after_seq, last) of a history of five or more messages
RANGES = [(0, None), (0, 1), (0, 3), (2, None), (2, 1), (2, 2), (4, None), (0, 100), (100, None), (0, 0), (2, 0)]
#: something done to a session whose history ``storage`` holds: given ``storage``, ``other``
#: and a counter that varies it
Change = Callable[[Storage, Storage, int], Awaitable[object]]


async def started(storage: Storage, texts: list[str]) -> SessionRecord:
    session = await storage.create_session(SessionRecord(id=SESSION))
    await storage.append_messages("default", SESSION, messages(texts))
    return session


def messages(texts: list[str], start: int = 1) -> list[Message]:
    return [Message(SESSION, seq, Role.USER, (Text(text),)) for seq, text in enumerate(texts, start)]


async def texts(storage: Storage) -> list[str]:
    return [m.text for m in await storage.get_messages("default", SESSION)]


async def own_status_change(storage: Storage, other: Storage, index: int) -> None:
    """What a failed send does: the reader's own storage marks a message."""
    await storage.set_message_status("default", SESSION, 2, "failed" if index % 2 == 0 else "ok", "boom")


async def status_change_by_another(storage: Storage, other: Storage, index: int) -> None:
    await other.set_message_status("default", SESSION, 3, "incomplete" if index % 2 == 0 else "ok")


async def append_by_another(storage: Storage, other: Storage, index: int) -> None:
    count = (await other.get_session("default", SESSION)).message_count
    await other.append_messages("default", SESSION, messages([f"more {index}"], count + 1))


async def update_of_the_session(storage: Storage, other: Storage, index: int) -> None:
    session = await other.get_session("default", SESSION)
    await other.update_session(attrs.evolve(session, title=f"title {index}"))


async def made_again_shorter(storage: Storage, other: Storage, index: int) -> None:
    await other.delete_session("default", SESSION)
    await started(other, [f"again {index}", "x", "y", "z"])


async def made_again_as_long(storage: Storage, other: Storage, index: int) -> None:
    count = (await other.get_session("default", SESSION)).message_count
    await other.delete_session("default", SESSION)
    await started(other, [f"again {index}:{seq}" for seq in range(count)])


async def edit_by_another(storage: Storage, other: Storage, index: int) -> None:
    """As many messages as before, one of them new: only the revision tells."""
    count = (await other.get_session("default", SESSION)).message_count
    await other.replace_messages(
        "default", SESSION, 1, messages([f"edited {index}", *["same"] * (count - 2)], 2), count=count
    )


async def undo_by_another(storage: Storage, other: Storage, index: int) -> None:
    count = (await other.get_session("default", SESSION)).message_count
    await other.replace_messages("default", SESSION, count - 2, [], count=count)
    await other.append_messages("default", SESSION, messages([f"after the undo {index}"] * 2, count - 1))


async def own_edit(storage: Storage, other: Storage, index: int) -> None:
    count = (await storage.get_session("default", SESSION)).message_count
    await storage.replace_messages("default", SESSION, 2, messages([f"mine {index}"], 3), count=count)
    await storage.append_messages("default", SESSION, messages(["x", "y"], 4))


CHANGES: list[Change] = [
    own_status_change, status_change_by_another, append_by_another, update_of_the_session,
    made_again_shorter, made_again_as_long, edit_by_another, undo_by_another, own_edit,
]  # fmt: skip


class SharedStorageContract:
    """Every test gets ``storage`` and ``other``, on the same data, from the subclass."""

    pytestmark = pytest.mark.asyncio

    async def test_appends_by_another_writer_are_seen(self, storage: Storage, other: Storage) -> None:
        await started(storage, ["a", "b"])
        assert await texts(storage) == ["a", "b"]  # now held, if the storage keeps histories
        await other.append_messages("default", SESSION, messages(["c"], 3))
        assert await texts(storage) == ["a", "b", "c"]
        assert [m.text for m in await storage.get_messages("default", SESSION, last=1)] == ["c"]

    async def test_a_status_change_by_another_writer_is_seen(self, storage: Storage, other: Storage) -> None:
        await started(storage, ["a", "b"])
        await texts(storage)
        await other.set_message_status("default", SESSION, 2, "incomplete", "cut off")
        second = (await storage.get_messages("default", SESSION))[1]
        assert (second.status, second.error) == (MessageStatus.INCOMPLETE, "cut off")

    async def test_a_session_deleted_and_made_again_is_read_afresh(self, storage: Storage, other: Storage) -> None:
        session = await started(storage, ["old", "old"])
        await texts(storage)
        await other.delete_session("default", SESSION)
        await other.create_session(attrs.evolve(session, title="again"))
        await other.append_messages("default", SESSION, messages(["new", "new"]))
        assert await texts(storage) == ["new", "new"]

    async def test_a_session_deleted_by_another_is_gone(self, storage: Storage, other: Storage) -> None:
        await started(storage, ["a"])
        await texts(storage)
        await other.delete_session("default", SESSION)
        with pytest.raises(SessionNotFound):
            await storage.get_messages("default", SESSION)
        with pytest.raises(SessionNotFound):
            await storage.get_messages("default", SESSION, last=1)

    @pytest.mark.parametrize("change", CHANGES, ids=[change.__name__ for change in CHANGES])
    async def test_ranged_reads_after_a_change_answer_as_the_other_does(
        self, storage: Storage, other: Storage, change: Change
    ) -> None:
        """Each range is read right after the change, from a history read whole just before
        it: the first read after a change is the one that finds a held history stale."""
        await started(storage, ["a", "b", "c", "d", "e"])
        for index, (after_seq, last) in enumerate(RANGES):
            await storage.get_messages("default", SESSION)
            await change(storage, other, index)
            got = await storage.get_messages("default", SESSION, after_seq=after_seq, last=last)
            expected = await other.get_messages("default", SESSION, after_seq=after_seq, last=last)
            assert got == expected, f"after {change.__name__}: after_seq={after_seq} last={last}"
