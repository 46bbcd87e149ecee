"""What calls cost: the shipped price table (dated model names priced by their model, never
by a prefix), the config's prices over it, the cost counted in ``threadline_cost_usd_total``
and stored with each reply; a model with no price costs 0, with one warning."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

import threadline
from threadline.plugin import Capabilities, Done, Event, Request, Response, Text, TextDelta, Usage, hookimpl
from threadline_metrics.prices import Price, shipped


def config(**metrics: Any) -> threadline.Config:
    return threadline.Config.from_dict(
        {"storage": {"backend": "memory"}, "middleware": {"chain": ["metrics"], "metrics": metrics}}
    )


@pytest.mark.parametrize(
    ("provider", "model", "key"),
    [
        ("openai", "gpt-4.1-mini", "gpt-4.1-mini"),
        ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a snapshot with a price of its own
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gemini", "models/gemini-2.0-flash-001", "gemini-2.0-flash"),
    ],
)
def test_a_dated_or_versioned_model_is_priced_as_its_model(provider: str, model: str, key: str) -> None:
    table = shipped()
    assert table.price(provider, model) == table.prices[provider][key]


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-4o-audio-preview"), ("openai", "gpt-5-pro"), ("anthropic", "gpt-4.1"), ("nowhere", "gpt-4.1")],
)
def test_a_model_the_table_does_not_name_has_no_price_not_a_similar_ones(provider: str, model: str) -> None:
    assert shipped().price(provider, model) is None


def test_cached_input_is_priced_apart_and_a_provider_reported_cost_is_kept() -> None:
    price = Price(input=2.0, output=8.0, cached=0.5)
    assert price.cost(Usage(1_000_000, 1_000_000, 400_000)) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 8.0)
    assert Price(input=2.0, output=8.0).cost(Usage(1_000_000, 0, 400_000)) == pytest.approx(2.0)  # no cache price
    assert shipped().cost("openai", Usage(10, 10, cost=0.25), "gpt-4.1") == 0.25


def test_the_shipped_table_is_dated_and_prices_only_providers_that_exist() -> None:
    table = shipped()
    assert table.taken == "2026-12-05"
    assert set(table.prices) == {"openai", "anthropic", "gemini", "echo"}
    assert all(
        price.output >= price.input >= (price.cached or 0) for rows in table.prices.values() for price in rows.values()
    )


async def test_calls_are_priced_counted_and_their_cost_stored() -> None:
    prices = {"echo": {"echo-1": {"input": 3.0, "output": 15.0, "cached": 0.3}}}
    async with threadline.SessionManager(config(prices=prices)) as manager:
        session = await manager.create_session(provider="echo", model="echo-1")
        before = _cost_in_default_registry()
        sent = await session.send("one two three")
        async for event in session.stream("four five"):
            if isinstance(event, threadline.Done):
                streamed = event.message
        replies = [sent, streamed]
    expected = [(r.usage.input_tokens * 3.0 + r.usage.output_tokens * 15.0) / 1e6 for r in replies if r and r.usage]
    assert len(expected) == 2 and all(cost > 0 for cost in expected)
    assert [r.usage.cost for r in replies if r and r.usage] == pytest.approx(expected)  # stored with the reply
    assert _cost_in_default_registry() - before == pytest.approx(sum(expected))


def _cost_in_default_registry() -> float:
    value = REGISTRY.get_sample_value(
        "threadline_cost_usd_total", {"operation": "chat", "provider": "echo", "model": "echo-1"}
    )
    return value or 0.0


class Local:
    """A model server the price table does not know, as a local one would be."""

    def capabilities(self, model: str | None) -> Capabilities:
        return Capabilities()

    async def complete(self, request: Request) -> Response:
        return Response((Text("ok"),), Usage(12, 3), model="llama-local")

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        yield TextDelta("ok")
        yield Done(Usage(12, 3), model="llama-local")

    async def close(self) -> None:
        pass


class LocalPlugin:
    @hookimpl
    def threadline_register_providers(self, register: Any) -> None:
        register("local", lambda _config: Local())


async def test_a_model_without_a_price_costs_0_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "threadline_metrics")
    async with threadline.SessionManager(config(), plugins=[LocalPlugin()]) as manager:
        session = await manager.create_session(provider="local")
        replies = [await session.send("hi"), await session.send("again")]
        async for _ in session.stream("and once more"):
            pass
    assert all(reply.usage is not None and reply.usage.cost is None for reply in replies)  # unknown, not free
    counted = {"operation": "chat", "provider": "local", "model": "llama-local"}
    assert REGISTRY.get_sample_value("threadline_cost_usd_total", counted) == 0.0  # the series is there, at 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "threadline_metrics"]
    assert len(warnings) == 1
    assert (
        "no price for local model 'llama-local'" in warnings[0] and "[middleware.metrics.prices.local]" in warnings[0]
    )


async def test_a_price_in_the_config_adds_a_model_or_replaces_a_shipped_one() -> None:
    prices = {"local": {"llama-local": {"input": 0.5, "output": 1.0}}, "openai": {"gpt-4.1": {"input": 1, "output": 2}}}
    async with threadline.SessionManager(config(prices=prices), plugins=[LocalPlugin()]) as manager:
        reply = await (await manager.create_session(provider="local")).send("hi")
        table = manager.middleware["metrics"].prices  # type: ignore[attr-defined]
    assert reply.usage is not None and reply.usage.cost == pytest.approx((12 * 0.5 + 3 * 1.0) / 1e6)
    assert table.price("openai", "gpt-4.1-2025-04-14") == Price(1.0, 2.0)
    assert table.price("openai", "gpt-4.1-mini") == shipped().prices["openai"]["gpt-4.1-mini"]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ({"input": -1, "output": 1}, "input"),
        ({"input": 1}, "output"),
        ({"input": 1, "output": "free"}, "output"),
        ({"input": 1, "output": 1, "cahced": 1}, "cahced"),
        ({"input": 1, "output": 1.7e308}, "output"),  # its cost would overflow to infinity
    ],
)
def test_a_bad_price_is_a_config_error_naming_its_key(row: dict[str, Any], says: str) -> None:
    with pytest.raises(threadline.ConfigError, match=rf"middleware\.metrics\.prices.*{says}"):
        threadline.SessionManager(config(prices={"openai": {"gpt-x": row}}))


async def test_prices_for_a_provider_no_plugin_registers_are_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    prices = {"opneai": {"gpt-4.1": {"input": 1, "output": 2}}}
    async with threadline.SessionManager(config(prices=prices)):
        pass
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "threadline_metrics"]
    assert "[middleware.metrics.prices.opneai]: no provider is called 'opneai' (installed: " in warning


async def test_a_reply_from_a_model_without_a_price_is_not_charged_at_the_price_of_the_one_asked_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prices = {"local": {"asked-for": {"input": 100.0, "output": 100.0}}}  # the reply names llama-local
    async with threadline.SessionManager(config(prices=prices), plugins=[LocalPlugin()]) as manager:
        reply = await (await manager.create_session(provider="local", model="asked-for")).send("hi")
    assert reply.usage is not None and reply.usage.cost is None
    assert any("no price for local model 'llama-local'" in r.getMessage() for r in caplog.records)
