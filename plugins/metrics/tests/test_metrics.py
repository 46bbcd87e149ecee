"""Conversations on the offline echo provider through the ``metrics`` middleware, their
``/metrics`` scraped over HTTP and read with prometheus_client's parser: exact counts,
token sums, errors by class, stream timings."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from typing import Any

import pytest
from scraping import config, scrape, value

import threadline
from threadline.testing import Reply, ScriptedToolCall


async def test_calls_are_counted_timed_and_their_tokens_summed(port: int) -> None:
    async with threadline.SessionManager(config(port=port)) as manager:
        session = await manager.create_session(provider="echo")
        replies = [await session.send(text) for text in ("one two three", "four five")]
        async for _ in session.stream("six seven eight nine"):
            pass
        streamed = (await session.history())[-1]
        samples = await scrape(port)
    ok = {"provider": "echo", "model": "echo-1", "operation": "chat"}
    assert value(samples, "threadline_requests_total", **ok, status="ok", error="") == 3
    assert value(samples, "gen_ai_client_operation_duration_seconds_count", **ok, status="ok") == 3
    output = sum(reply.usage.output_tokens for reply in [*replies, streamed] if reply.usage)
    inputs = sum(reply.usage.input_tokens for reply in [*replies, streamed] if reply.usage)
    assert output > 0 and inputs > 0
    assert value(samples, "gen_ai_client_token_usage_sum", **ok, token_type="output") == output
    assert value(samples, "gen_ai_client_token_usage_sum", **ok, token_type="input") == inputs
    assert value(samples, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **ok) == 1
    chunks = value(samples, "gen_ai_client_operation_time_per_output_chunk_seconds_count", **ok)
    assert chunks >= 1  # every chunk after the first


async def test_errors_are_counted_by_class_whole_or_streamed(port: int) -> None:
    async with threadline.SessionManager(config(port=port)) as manager:
        session = await manager.create_session(provider="echo")
        echo = manager.provider("echo")
        echo.script([Reply(error="rate_limited"), Reply(error="unavailable"), Reply(error="dropped", text="a b c d")])  # type: ignore[attr-defined]
        with pytest.raises(threadline.RateLimited):
            await session.send("hi")
        with pytest.raises(threadline.ProviderUnavailable):
            await session.send("hi")
        with pytest.raises(threadline.ProviderUnavailable):
            async for _ in session.stream("hi"):
                pass
        samples = await scrape(port)
    assert value(samples, "threadline_requests_total", status="error", error="RateLimited") == 1
    assert value(samples, "threadline_requests_total", status="error", error="ProviderUnavailable") == 2
    assert value(samples, "threadline_requests_total", status="ok") == 0
    assert value(samples, "gen_ai_client_token_usage_count") == 0  # a failed call has no token counts


async def test_a_stream_left_early_is_counted_as_cancelled(port: int) -> None:
    async with threadline.SessionManager(config(port=port)) as manager:
        session = await manager.create_session(provider="echo")
        events = session.stream("one two three four five six seven eight nine ten")
        async for _ in events:
            break
        await events.aclose()  # type: ignore[attr-defined]
        samples = await scrape(port)
    assert value(samples, "threadline_requests_total", status="error", error="cancelled") == 1


async def test_labels_by_tenant_and_user_when_asked(port: int) -> None:
    async with threadline.SessionManager(config(port=port, labels=["tenant", "user_id"])) as manager:
        session = await manager.create_session(provider="echo", user_id="ann")
        await session.send("hi")
        samples = await scrape(port)
    assert value(samples, "threadline_requests_total", tenant="default", user_id="ann", status="ok") == 1


async def test_without_a_port_managers_count_into_the_default_registry() -> None:
    from prometheus_client import REGISTRY

    def requests() -> float:
        return sum(
            sample.value
            for family in REGISTRY.collect()
            if family.name == "threadline_requests"
            for sample in family.samples
            if sample.name == "threadline_requests_total" and sample.labels.get("status") == "ok"
        )

    before = requests()
    for _ in range(2):  # a second manager reuses the instruments: no duplicate registration
        async with threadline.SessionManager(config()) as manager:
            await (await manager.create_session(provider="echo")).send("hi")
    assert requests() == before + 2
    with pytest.raises(threadline.ConfigError, match=r"middleware\.metrics\.labels: labels \['tenant'\] differ"):
        threadline.SessionManager(config(labels=["tenant"]))


def test_the_port_is_served_only_while_the_manager_is_open(port: int) -> None:

    async def run() -> None:
        async with threadline.SessionManager(config(port=port)):
            assert await scrape(port) is not None
        with pytest.raises(OSError):
            await scrape(port)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"port": 0}, "port"),
        ({"prometheus": False, "port": 9464}, "port serves the Prometheus metrics, which prometheus = false turns off"),
        ({"labels": ["model"]}, "'model' is not one of 'tenant', 'user_id'"),
        ({"labels": ["tenant", "tenant"]}, "labels names a label twice"),
        ({"capture_content": True}, "capture_content records messages on the spans, which need otel = true"),
        ({"prices": {"openai": {"": {"input": 1, "output": 1}}}}, 'has a model named ""'),
    ],
)
def test_a_bad_setting_is_a_config_error(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(threadline.ConfigError, match=says):
        threadline.SessionManager(config(**settings))


def test_discovering_plugins_imports_neither_prometheus_client_nor_opentelemetry() -> None:
    code = "import sys, threadline_metrics; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "prometheus_client" not in loaded and "opentelemetry" not in loaded and "threadline_metrics" in loaded


async def test_a_port_another_process_holds_is_warned_of_and_the_manager_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:  # another worker of the application, or the application beside the CLI
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with threadline.SessionManager(config(port=port)) as manager:
            reply = await (await manager.create_session(provider="echo")).send("still works")
    assert reply.text == "still works"
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "threadline_metrics"]
    assert f"cannot serve /metrics on 127.0.0.1:{port} ([middleware.metrics] port)" in warning
    assert "Give each process its own port" in warning


async def test_managers_opened_one_after_another_each_serve_their_metrics(port: int) -> None:
    for round in range(8):  # each registry is new: none takes on the instruments of one gone before
        labels = ["tenant"] if round % 2 else []
        async with threadline.SessionManager(config(port=port, labels=labels)) as manager:
            await (await manager.create_session(provider="echo")).send("hi")
            assert value(await scrape(port), "threadline_requests_total", status="ok") == 1


async def test_a_failed_call_is_labelled_by_the_model_the_provider_answers_with(port: int) -> None:
    async with threadline.SessionManager(config(port=port)) as manager:
        session = await manager.create_session(provider="echo")  # no model: the provider's default
        manager.provider("echo").script([Reply(error="rate_limited")])  # type: ignore[attr-defined]
        with pytest.raises(threadline.RateLimited):
            await session.send("before any call answered")
        await session.send("hi")
        samples = await scrape(port)
    assert value(samples, "threadline_requests_total", model="echo-1", status="ok") == 1
    assert value(samples, "threadline_requests_total", model="echo-1", status="error", error="RateLimited") == 1


async def test_sessions_in_a_turn_are_a_gauge(port: int) -> None:
    seen: list[float] = []
    both_in, both_seen = asyncio.Barrier(2), asyncio.Barrier(2)

    @threadline.tool
    async def wait_a_little() -> str:
        """Takes a moment: until both sessions are in their turn and both have looked."""
        await both_in.wait()
        samples = await scrape(port)
        seen.append(value(samples, "threadline_sessions_active"))
        await both_seen.wait()
        return "done"

    async with threadline.SessionManager(config(port=port), tools=[wait_a_little]) as manager:
        sessions = [await manager.create_session(provider="echo", tools=["wait_a_little"]) for _ in range(2)]
        for _ in sessions:
            manager.provider("echo").script([Reply(tool_calls=(ScriptedToolCall("wait_a_little", {}),))])  # type: ignore[attr-defined]
        await asyncio.wait_for(asyncio.gather(*(session.send("go") for session in sessions)), timeout=30)
        after = value(await scrape(port), "threadline_sessions_active")
    assert seen == [2, 2] and after == 0


async def test_every_storage_operation_is_timed_by_backend_and_operation(port: int) -> None:
    async with threadline.SessionManager(config(port=port)) as manager:
        session = await manager.create_session(provider="echo")
        for text in ("one", "two", "three"):
            await session.send(text)
        await manager.get_session(session.id)
        await session.undo()
        await session.revisions()
        samples = await scrape(port)
    timed = "threadline_storage_operation_duration_seconds_count"
    assert value(samples, timed, backend="memory", operation="create_session") == 1
    assert value(samples, timed, backend="memory", operation="append_messages") == 6  # each user message, each reply
    assert value(samples, timed, backend="memory", operation="take_turn") == 4  # three turns, one undo
    assert value(samples, timed, backend="memory", operation="get_session") == 6  # one asked, one a turn, two the undo
    assert value(samples, timed, backend="memory", operation="replace_messages") == 1
    assert value(samples, timed, backend="memory", operation="get_revisions") == 1


async def test_with_prometheus_off_nothing_is_counted_but_replies_are_still_priced() -> None:
    from prometheus_client import REGISTRY

    def requests() -> float:
        return (
            REGISTRY.get_sample_value(
                "threadline_requests_total",
                {"operation": "chat", "provider": "echo", "model": "echo-1", "status": "ok", "error": ""},
            )
            or 0.0
        )

    before = requests()
    async with threadline.SessionManager(config(prometheus=False)) as manager:
        reply = await (await manager.create_session(provider="echo")).send("hi")
        assert "TimedStorage" not in repr(manager.storage)  # nothing timed either
    assert requests() == before
    assert reply.usage is not None and reply.usage.cost == 0.0  # echo's price, from the table
