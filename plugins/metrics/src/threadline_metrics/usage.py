"""The report ``threadline usage`` prints: the tokens and cost of the model calls in the
stored sessions, by day, provider, model and user, priced by the plugin's table (or by the
cost a reply stored). It reads the storage alone: the middleware need not have run."""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import attrs
import click
from attrs import define

from threadline.plugin import Message, Role, SessionQuery, SessionRecord, Storage, Usage, utcnow
from threadline_metrics import MetricsConfig
from threadline_metrics.prices import PriceTable, shipped

if TYPE_CHECKING:
    from threadline import SessionManager

from threadline_metrics.commands import GROUPS

PAGE = 1000


@define
class Row:
    """What the calls of one group used and cost."""

    calls: int = 0
    usage: Usage = attrs.field(factory=Usage)
    cost: float = 0.0

    def numbers(self) -> tuple[int, int, int, int, float]:
        """calls, input, output and cached tokens, cost"""
        return self.calls, self.usage.input_tokens, self.usage.output_tokens, self.usage.cached_tokens, self.cost

    def add(self, usage: Usage, cost: float) -> None:
        self.calls += 1
        self.usage += usage
        self.cost += cost


@define
class Report:
    """What the stored replies used and cost, by ``groups``; ``unpriced``: the calls of
    each provider and model the price table has no price for."""

    groups: tuple[str, ...]
    rows: dict[tuple[str, ...], Row] = attrs.field(factory=lambda: collections.defaultdict(Row))
    unpriced: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)


async def report(
    manager: SessionManager,
    groups: tuple[str, ...] = GROUPS,
    *,
    since: date | None = None,
    until: date | None = None,
    user_id: str | None = None,
    tenant: str | None = None,
) -> Report:
    """The tokens and cost of the replies stored from ``since`` to ``until`` (UTC days,
    both included), by ``groups`` (of :data:`GROUPS`)."""
    prices = _prices(manager)
    made = Report(groups)
    after = datetime.combine(since, time(), UTC) if since else None
    async for session, message in _replies(manager, tenant, user_id, after):
        day = message.created_at.astimezone(UTC).date()
        if (since and day < since) or (until and day > until):
            continue
        if message.usage is None:  # cut off before the provider counted its tokens
            continue
        used = message.usage
        provider, model = message.provider or session.provider, message.model or session.model or ""
        cost = prices.cost(provider, used, model)
        if cost is None:
            made.unpriced[(provider, model)] += 1
        values = {"day": day.isoformat(), "provider": provider, "model": model, "user": session.user_id or ""}
        made.rows[tuple(values[group] for group in groups)].add(used, cost or 0.0)
    return made


def _prices(manager: SessionManager) -> PriceTable:
    """The shipped prices with the config's ``[middleware.metrics] prices`` over them."""
    settings = manager.config.middleware.settings.get("metrics", {})
    config = manager.config.plugin_config(MetricsConfig, settings, "middleware.metrics")
    return shipped().extended(config.prices)


async def _replies(
    manager: SessionManager, tenant: str | None, user_id: str | None, after: datetime | None
) -> AsyncIterator[tuple[SessionRecord, Message]]:
    """Every reply stored before now in the tenant's sessions (of ``user_id``) with activity
    after ``after``. Sessions are listed by their last activity: one that moves up the list
    while the pages are read (a turn in it) is read when the list is taken again, of the
    sessions active since the first."""
    storage, started = manager.storage, utcnow()
    query = SessionQuery(tenant=tenant or manager.tenant, user_id=user_id, updated_after=after, limit=PAGE)
    seen: set[str] = set()
    for listing in (query, attrs.evolve(query, updated_after=started - timedelta(seconds=1))):
        async for session in _sessions(storage, listing):
            if session.id in seen:
                continue
            seen.add(session.id)
            for message in await storage.get_messages(session.tenant, session.id):
                if message.role is Role.ASSISTANT and message.created_at <= started:
                    yield session, message


async def _sessions(storage: Storage, query: SessionQuery) -> AsyncIterator[SessionRecord]:
    while True:
        page = await storage.list_sessions(query)
        for session in page.items:
            yield session
        if page.next_cursor is None:
            return
        query = attrs.evolve(query, cursor=page.next_cursor)


NUMBERS = ("calls", "input", "output", "cached", "cost_usd")


def print_report(made: Report, as_json: bool) -> None:
    rows = sorted(made.rows.items())
    if as_json:
        for key, row in rows:
            click.echo(json.dumps(dict(zip((*made.groups, *NUMBERS), (*key, *row.numbers()), strict=True))))
        return
    if not rows:
        return
    total = Row(
        sum(row.calls for _, row in rows),
        sum((row.usage for _, row in rows), Usage()),
        sum(row.cost for _, row in rows),
    )
    totals = ("total", *[""] * (len(made.groups) - 1))
    lines = [[*made.groups, *NUMBERS]] + [
        [*key, *(f"{n:.6f}" if isinstance(n, float) else str(n) for n in row.numbers())]
        for key, row in [*rows, (totals, total)]
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    left = len(made.groups)  # the groups left-aligned, the numbers right-aligned
    for line in lines:
        cells = (v.ljust(w) if i < left else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True)))
        click.echo("  ".join(cells).rstrip())
