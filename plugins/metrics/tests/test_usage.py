"""``threadline usage``'s report: the tokens and cost of stored replies, by day, provider,
model and user, priced by the table or by the cost a reply stored, read from the storage
alone (no middleware in these managers' chains)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import attrs
import pytest

import threadline
from threadline.plugin import Message, Middleware, Role, SessionPage, SessionQuery, Text, Usage, hookimpl
from threadline_metrics import usage
from threadline_metrics.prices import shipped
from threadline_metrics.usage import Report, report

MINI = shipped().prices["openai"]["gpt-4.1-mini"]


def reply(
    session: threadline.Session, seq: int, day: int, usage: Usage, model: str, provider: str = "openai"
) -> Message:
    when = datetime(2026, 11, day, 23, 59, tzinfo=UTC)
    return Message(
        session.id, seq, Role.ASSISTANT, (Text("ok"),), created_at=when, usage=usage, provider=provider, model=model
    )


@pytest.fixture
async def manager() -> AsyncIterator[threadline.SessionManager]:
    """Ann's replies on 1 and 2 November, Bob's on 2 November, and one of another tenant."""
    config = threadline.Config.from_dict({"storage": {"backend": "memory"}})
    async with threadline.SessionManager(config) as manager:
        ann = await manager.create_session(provider="echo", user_id="ann")
        bob = await manager.create_session(provider="echo", user_id="bob")
        other = await manager.create_session(provider="echo", user_id="ann", tenant="acme")
        storage = manager.storage
        await storage.append_messages("default", ann.id, [
            reply(ann, 1, 1, Usage(1000, 100), "gpt-4.1-mini-2025-04-14"),
            reply(ann, 2, 2, Usage(2000, 200, 1000), "gpt-4.1-mini"),
            reply(ann, 3, 2, Usage(10, 10, cost=0.5), "gpt-4.1-mini"),  # a cost the reply stored is kept
        ])  # fmt: skip
        await storage.append_messages("default", bob.id, [
            reply(bob, 1, 2, Usage(500, 50), "llama-local", provider="local"),
            Message(bob.id, 2, Role.USER, (Text("not a call"),), created_at=datetime(2026, 11, 2, tzinfo=UTC)),
        ])  # fmt: skip
        await storage.append_messages("acme", other.id, [reply(other, 1, 1, Usage(9, 9), "gpt-4.1-mini")])
        yield manager


def rows(made: Report) -> dict[tuple[str, ...], tuple[int, int, int, int, float]]:
    return {key: row.numbers() for key, row in made.rows.items()}


async def test_replies_are_summed_and_priced_by_day_provider_model_and_user(manager: threadline.SessionManager) -> None:
    made = await report(manager)
    first, second = MINI.cost(Usage(1000, 100)), MINI.cost(Usage(2000, 200, 1000)) + 0.5
    assert rows(made) == {
        ("2026-11-01", "openai", "gpt-4.1-mini-2025-04-14", "ann"): (1, 1000, 100, 0, pytest.approx(first)),
        ("2026-11-02", "openai", "gpt-4.1-mini", "ann"): (2, 2010, 210, 1000, pytest.approx(second)),
        ("2026-11-02", "local", "llama-local", "bob"): (1, 500, 50, 0, 0.0),
    }
    assert made.unpriced == {("local", "llama-local"): 1}


async def test_a_report_by_model_alone_for_a_day_range_and_a_user(manager: threadline.SessionManager) -> None:
    made = await report(manager, ("provider",), since=date(2026, 11, 2), until=date(2026, 11, 2), user_id="ann")
    assert rows(made) == {("openai",): (2, 2010, 210, 1000, pytest.approx(MINI.cost(Usage(2000, 200, 1000)) + 0.5))}
    assert rows(await report(manager, ("user",), until=date(2026, 11, 1))) == {
        ("ann",): (1, 1000, 100, 0, pytest.approx(MINI.cost(Usage(1000, 100))))
    }
    assert rows(await report(manager, ("user",), since=date(2026, 11, 3))) == {}


async def test_another_tenant_is_reported_when_named(manager: threadline.SessionManager) -> None:
    assert rows(await report(manager, ("user",), tenant="acme")) == {
        ("ann",): (1, 9, 9, 0, pytest.approx(MINI.cost(Usage(9, 9))))
    }


class Sliding(Middleware):
    """Between the first and second page of a listing, a turn in the session ``moved`` moves
    it to the top of the list: before the cursor the listing goes on from."""

    def __init__(self) -> None:
        self.listings = 0
        self.moved: str | None = None

    def wrap_storage(self, storage: threadline.Storage, backend: str) -> threadline.Storage:
        layer = self

        class Moving:
            async def list_sessions(self, query: SessionQuery) -> SessionPage:
                layer.listings += 1
                if layer.listings == 2 and layer.moved is not None:
                    record = await storage.get_session("default", layer.moved)
                    await storage.update_session(attrs.evolve(record, title="busy"))
                return await storage.list_sessions(query)

            def __getattr__(self, name: str) -> object:
                return getattr(storage, name)

        return Moving()  # type: ignore[return-value]


async def test_a_session_that_moves_up_the_list_while_it_is_read_is_still_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(usage, "PAGE", 1)
    sliding = Sliding()

    class Plugin:
        @hookimpl
        def threadline_register_middleware(self, register: Any) -> None:
            register("sliding", lambda _config: sliding)

    config = threadline.Config.from_dict({"storage": {"backend": "memory"}, "middleware": {"chain": ["sliding"]}})
    async with threadline.SessionManager(config, plugins=[Plugin()]) as manager:
        storage = manager.storage
        sessions = [await manager.create_session(provider="echo", user_id=name) for name in ("a", "b", "c")]
        for session in sessions:
            await storage.append_messages("default", session.id, [reply(session, 1, 1, Usage(10, 1), "gpt-4.1")])
        sliding.moved = sessions[0].id  # listed last (least recent), and moved up after the first page
        made = await report(manager, ("user",))
    assert sorted(key for (key,) in made.rows) == ["a", "b", "c"]
