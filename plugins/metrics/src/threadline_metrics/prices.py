"""What a call costs: the price table shipped with the plugin (``prices.toml``), extended or
corrected by ``[middleware.metrics.prices]``, and the cost of a call's usage by it."""

from __future__ import annotations

import functools
import importlib.resources
import re
import tomllib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

from threadline.plugin import finite

if TYPE_CHECKING:
    from threadline.plugin import Usage

#: a model's date or version suffix: -2025-04-14, -20250929, -001, -latest
_VERSION = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest)$")
_PER_TOKEN = 1e-6  # prices are per million tokens
#: the dearest price taken for real: above it, a price is surely a slip (and the cost of a
#: call could overflow to infinity, which no storage can write)
MOST = 1_000_000.0
_PRICE: list[Any] = [
    attrs.validators.instance_of((int, float)),
    finite,
    attrs.validators.ge(0),
    attrs.validators.le(MOST),
]


@frozen
class Price:
    """A model's price in US dollars per million tokens: ``input`` not read from a cache,
    ``output``, and ``cached`` input (unset: priced as input)."""

    input: float = field(validator=_PRICE)
    output: float = field(validator=_PRICE)
    cached: float | None = field(default=None, validator=attrs.validators.optional(_PRICE))

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs: its cached input at the cached price, the rest of its input
        at the input price, its output at the output price."""
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = self.input if self.cached is None else self.cached
        fresh = usage.input_tokens - cached
        return (fresh * self.input + cached * cached_price + usage.output_tokens * self.output) * _PER_TOKEN


@frozen
class PriceTable:
    """Prices by provider and model; ``taken``: the date the shipped prices were read."""

    prices: Mapping[str, Mapping[str, Price]]
    taken: str

    def price(self, provider: str, model: str | None) -> Price | None:
        """The price of ``provider``'s ``model`` (as named, else without a ``models/`` prefix
        and its date or version suffix), else the provider's ``"*"`` row."""
        table = self.prices.get(provider, {})
        for name in _names(model):
            if name in table:
                return table[name]
        return table.get("*")

    def cost(self, provider: str, usage: Usage, model: str | None) -> float | None:
        """What ``usage`` cost: as the provider reported it, else at the table's price of
        ``model``; ``None`` when the table has none."""
        if usage.cost is not None:
            return usage.cost
        price = self.price(provider, model)
        return None if price is None else price.cost(usage)

    def extended(self, prices: Mapping[str, Mapping[str, Price]]) -> PriceTable:
        """This table with ``prices`` added, each replacing the row of its provider and model."""
        merged = {provider: dict(rows) for provider, rows in self.prices.items()}
        for provider, rows in prices.items():
            merged.setdefault(provider, {}).update(rows)
        return PriceTable(merged, self.taken)


def _names(model: str | None) -> Iterator[str]:
    if model:
        yield model
        name = model.removeprefix("models/")
        yield name
        yield _VERSION.sub("", name)


@functools.cache
def shipped() -> PriceTable:
    """The table in ``prices.toml``, read once."""
    data = tomllib.loads(importlib.resources.files(__package__).joinpath("prices.toml").read_text("utf-8"))
    taken = data.pop("taken")
    data.pop("sources")
    prices = {provider: {model: Price(**row) for model, row in rows.items()} for provider, rows in data.items()}
    return PriceTable(prices, taken)
