"""Managers with the ``metrics`` middleware, and their ``/metrics`` scraped over HTTP and read
with prometheus_client's parser."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

import threadline

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def config(**metrics: Any) -> threadline.Config:
    return threadline.Config.from_dict(
        {"storage": {"backend": "memory"}, "middleware": {"chain": ["metrics"], "metrics": metrics}}
    )


async def scrape(port: int) -> Samples:
    """Every sample ``/metrics`` serves, by name and labels."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    text = await asyncio.to_thread(get)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))
