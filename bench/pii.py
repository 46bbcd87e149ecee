"""Time to first token, and to the whole stream, of a 100-chunk reply streamed through a
``Session`` with the ``pii`` middleware (mask, pseudonymize) and without it, in the same
process and run, taking turns call by call.

The reply comes from threadline-openai (Chat Completions, the real SDK) on the local fake
OpenAI API, 100 chunks, in two cuts: as a model's tokenizer cuts text (a word with the space
before it, punctuation apart), and in pieces of 4 characters, the first ``Cert``, so that
most chunks end in the middle of a word, which an ``@`` could still make an address: the
mask holds a word back until it ends, the worst case of its hold-back. Two paces: as fast
as the local server writes (what threadline adds), and paced like a hosted model (the
first byte after ``--stall`` seconds, then one chunk every ``--gap`` seconds), where
holding back a word costs a chunk's wait.

Run: python bench/pii.py [--calls 300] [--stall 0.25] [--gap 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs
import regex

from threadline import Config, SessionManager, TextDelta
from threadline.builtins.memory import MemoryStorage
from threadline.testing import Reply
from threadline.testing.wire_server import HTTPReply, ReceivedRequest
from threadline_openai.testing import FakeOpenAI

TEXT = (
    "Certainly. Your order left our warehouse on Monday and should arrive within three days. "
    "If it does not, write to support@example.com or call +44 20 7946 0958 and quote your "
    "order number; we will send a new one at once. Anything else I can do for you today? "
    "Our opening hours are nine to five, Monday to Friday, and the shop is closed on holidays."
)
#: a word with the space before it, or a run of punctuation: roughly how a tokenizer cuts
TOKEN = regex.compile(r" ?\w+| ?[^\w\s]+|\s+")
CUTS = {
    "tokens": lambda text: TOKEN.findall(text)[:100],
    "4 characters": lambda text: [text[i : i + 4] for i in range(0, 400, 4)],
}
QUESTION = "Where is my order? You can reach me at ann.lee@example.com."


@attrs.define
class PacedOpenAI(FakeOpenAI):
    """The fake API with its first byte and its chunks paced."""

    stall: float = 0.0
    gap: float = 0.0
    cut: Callable[[str], list[str]] = CUTS["tokens"]

    def text_pieces(self, text: str) -> list[str]:
        return self.cut(text)

    def answer(self, request: ReceivedRequest, reply: Reply) -> HTTPReply:
        return attrs.evolve(super().answer(request, reply), stall=self.stall, chunk_delay=self.gap)


CONTENDERS = {
    "no middleware": None,
    "pii, mask": {"action": "mask"},
    "pii, pseudonymize": {"action": "pseudonymize"},
}


def config(url: str, pii: dict[str, Any] | None) -> Config:
    settings: dict[str, Any] = {
        "providers": {"openai": {"api": "chat", "base_url": url, "api_key": "sk-test", "max_retries": 0}},
        "defaults": {"provider": "openai"},
    }
    if pii is not None:
        settings["middleware"] = {"chain": ["pii"], "pii": pii}
    return Config.from_dict(settings)


async def one_stream(manager: SessionManager) -> tuple[float, float, int]:
    """Seconds to the first text and to the end of one streamed turn, and the chunks seen."""
    session = await manager.create_session(title="bench")
    start = time.perf_counter()
    first, pieces = 0.0, 0
    async for event in session.stream(QUESTION):
        if isinstance(event, TextDelta) and event.text:
            first = first or time.perf_counter() - start
            pieces += 1
    return first, time.perf_counter() - start, pieces


async def measure(calls: int, cut: str, stall: float, gap: float) -> dict[str, list[tuple[float, float]]]:
    """Seconds to the first text and to the end of each stream of each contender; they take
    turns call by call, in an order that rotates, after 5 rounds that warm up."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
    text = "".join(CUTS[cut](TEXT * 2))
    async with PacedOpenAI(default_reply=Reply(text=text), stall=stall, gap=gap, cut=CUTS[cut]) as api:
        managers = {
            name: SessionManager(config(api.url, pii), storage=MemoryStorage()) for name, pii in CONTENDERS.items()
        }
        for manager in managers.values():
            await manager.open()
        try:
            order = list(managers)
            for call in range(calls + 5):
                gc.collect()
                for name in order[call % len(order) :] + order[: call % len(order)]:
                    first, whole, pieces = await one_stream(managers[name])
                    assert pieces > 50, (name, pieces)  # the mask lets held pieces out together
                    if call >= 5:
                        times[name].append((first, whole))
        finally:
            for manager in managers.values():
                await manager.close()
    return times


def report(times: dict[str, list[tuple[float, float]]], title: str) -> None:
    print(title)
    base_first = statistics.median(first for first, _ in times["no middleware"])
    base_whole = statistics.median(whole for _, whole in times["no middleware"])
    for name, measured in times.items():
        first = statistics.median(f for f, _ in measured)
        whole = statistics.median(w for _, w in measured)
        print(
            f"  {name:18} first token {first * 1e3:8.2f} ms ({(first / base_first - 1) * 100:+5.1f} %)"
            f"   whole stream {whole * 1e3:8.2f} ms ({(whole / base_whole - 1) * 100:+5.1f} %)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="streams per contender and pace [300]")
    parser.add_argument("--stall", type=float, default=0.25, help="paced: seconds to the first byte [0.25]")
    parser.add_argument("--gap", type=float, default=0.01, help="paced: seconds between chunks [0.01]")
    args = parser.parse_args()
    rounds = max(args.calls // 10, 20)
    for cut in CUTS:
        fast = await measure(args.calls, cut, 0.0, 0.0)
        report(fast, f"100 chunks ({cut}), median of {args.calls} streams each, taking turns; local, unpaced")
        paced = await measure(rounds, cut, args.stall, args.gap)
        report(
            paced,
            f"100 chunks ({cut}), median of {rounds} streams each, paced: first byte after "
            f"{args.stall * 1e3:g} ms, then a chunk every {args.gap * 1e3:g} ms",
        )


if __name__ == "__main__":
    asyncio.run(main())
