"""threadline-context's summaries on every persistent storage, through the real backends:
a summary is stored in place of the older turns, a session opened again by another manager
(a restarted process) reads it and summarises on from it, and the originals stay
recoverable as revisions."""

from __future__ import annotations

from typing import Any

import pytest
from stores import PERSISTENT, StorageTable

from threadline import Config, Role, SessionManager
from threadline_context.summary import HEADING, SUMMARY_KEY

CONTEXT = {"strategy": "summarize", "max_tokens": 1_000, "keep_last": 2, "summary_max_tokens": 40}


def manager(table: dict[str, Any]) -> SessionManager:
    config = {
        "storage": table,
        "providers": {"echo": {"context_windows": {"echo-*": 100_000}}},
        "middleware": {"chain": ["context"], "context": CONTEXT},
    }
    return SessionManager(Config.from_dict(config))


def history(turns: int, start: int = 0) -> list[tuple[str, str]]:
    text = " ".join(["word"] * 20)
    return [pair for n in range(start, start + turns) for pair in (("user", f"q{n} {text}"), ("assistant", f"a{n}"))]


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_summaries_are_stored_and_carried_on_by_a_resumed_session(storage_table: StorageTable, kind: str) -> None:
    table = storage_table(kind)
    async with manager(table) as tl:
        session = await tl.create_session()
        await session.add(history(100))
        await session.send("first")
        first = (await session.history())[0]
        assert first.role is Role.SYSTEM and first.metadata[SUMMARY_KEY] == {"messages": 198}

    async with manager(table) as tl:  # another process, later
        session = await tl.get_session(session.id)
        stored = await session.history()
        assert [m.id for m in stored][:1] == [first.id] and len(stored) == 5
        await session.add(history(100, start=100))
        await session.send("second")
        (transcript,) = tl.provider("echo").requests[-2].messages
        assert transcript.text.startswith(first.text + "\n\nUser: q99 ")
        stored = await session.history()
        assert stored[0].text.startswith(HEADING) and stored[0].id != first.id
        assert [m.text for m in stored[-2:]] == ["second", "second"] and [m.seq for m in stored] == [1, 2, 3, 4, 5]

        old, new = await session.revisions()
        assert len(old.replaced) == 201 and old.replaced[0].text.startswith("q0 ")  # the originals, recoverable
        assert new.replaced[0].id == first.id
