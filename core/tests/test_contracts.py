"""The built-ins pass the same contract suites every plugin runs."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import pytest

from threadline import (
    BadCursor,
    Event,
    Message,
    Request,
    Response,
    Role,
    SessionQuery,
    SessionRecord,
    Text,
    ThreadlineError,
    ToolCallDelta,
    make_cursor,
    read_cursor,
)
from threadline.builtins.echo import EchoConfig, EchoProvider
from threadline.builtins.memory import MemoryStorage
from threadline.testing import ProviderContract, ProviderHarness, SearchContract, StorageContract


class TestMemoryStorage(StorageContract, SearchContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[MemoryStorage]:
        storage = MemoryStorage()
        await storage.open()
        yield storage
        await storage.close()


class TestEchoProvider(ProviderContract):
    @pytest.fixture
    async def provider_harness(self) -> AsyncIterator[ProviderHarness]:
        provider = EchoProvider(EchoConfig(chunk_size=5))
        yield ProviderHarness(
            provider, model="echo-1", script=provider.script, received=lambda: repr(provider.requests)
        )
        await provider.close()


# The suites must catch a backend that breaks a promise, not just pass a good one.


class AcceptsGaps(MemoryStorage):
    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        session = self._get(tenant, session_id)
        self._messages[tenant, session_id].extend(messages)
        self._sessions[tenant, session_id] = attrs.evolve(session, message_count=session.message_count + len(messages))


class IgnoresTenants(MemoryStorage):
    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        return next(s for (_, sid), s in self._sessions.items() if sid == session_id)


class ForgetsToolCallIndex(EchoProvider):
    async def stream(self, request: Request) -> AsyncIterator[Event]:
        async for event in super().stream(request):
            yield attrs.evolve(event, index=0) if isinstance(event, ToolCallDelta) else event


@pytest.mark.parametrize(
    ("storage", "test"),
    [
        (AcceptsGaps(), StorageContract.test_append_refuses_a_gap_or_a_repeat_and_writes_nothing),
        (IgnoresTenants(), StorageContract.test_tenants_do_not_see_each_other),
    ],
)
async def test_the_storage_contract_fails_a_broken_storage(storage: MemoryStorage, test: Any) -> None:
    await storage.open()
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        await test(StorageContract(), storage)


async def test_the_provider_contract_fails_a_provider_that_drops_tool_results() -> None:
    class DropsToolResults(EchoProvider):
        async def complete(self, request: Request) -> Response:
            kept = tuple(m for m in request.messages if m.role is not Role.TOOL)
            return await super().complete(attrs.evolve(request, messages=kept))

    provider = DropsToolResults()
    harness = ProviderHarness(provider, model=None, script=provider.script, received=lambda: repr(provider.requests))
    with pytest.raises(AssertionError, match="the tool result did not reach the backend"):
        await ProviderContract().test_tool_results_are_sent_back(harness)


async def test_the_provider_contract_fails_a_broken_provider() -> None:
    provider = ForgetsToolCallIndex()
    harness = ProviderHarness(provider, model=None, script=provider.script, received=lambda: repr(provider.requests))
    with pytest.raises(AssertionError):
        await ProviderContract().test_stream_numbers_parallel_tool_calls_by_position(harness)


# Cursors


def test_a_cursor_reads_back_what_made_it() -> None:
    session = SessionRecord(id="s1")
    assert read_cursor(make_cursor(session)) == (session.updated_at, "s1")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        make_cursor(SessionRecord(id="x"))[:-4],
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "naive"]').decode(),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", 7]').decode(),
        base64.urlsafe_b64encode(b'[7, "x"]').decode(),
    ],
)
def test_a_cursor_threadline_did_not_give_out_is_refused_saying_what_a_cursor_is(cursor: str) -> None:
    with pytest.raises(BadCursor, match="next_cursor") as refused:
        read_cursor(cursor)
    assert isinstance(refused.value, ThreadlineError) and isinstance(refused.value, ValueError)
    assert refused.value.cursor == cursor


async def test_the_memory_storage_refuses_a_bad_cursor() -> None:
    storage = MemoryStorage()
    await storage.open()
    with pytest.raises(BadCursor, match="'garbage'"):
        await storage.list_sessions(SessionQuery(cursor="garbage"))


async def test_a_stored_records_mappings_cannot_be_changed() -> None:
    storage = MemoryStorage()
    await storage.open()
    session = await storage.create_session(SessionRecord(metadata={"channel": "web"}))
    await storage.append_messages(
        session.tenant, session.id, [Message(session.id, 1, Role.USER, (Text("hi"),), metadata={"ip": "x"})]
    )
    (message,) = await storage.get_messages(session.tenant, session.id)
    stored = await storage.get_session(session.tenant, session.id)
    for mapping in (message.metadata, stored.metadata, stored.provider_state):
        with pytest.raises(TypeError):
            mapping["ip"] = "y"  # type: ignore[index]
