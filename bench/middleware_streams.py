"""What a middleware adds to a conversation's model calls: time to first token, and to the
whole stream, of a 100-chunk reply streamed through a ``Session`` (and, asked for, the time
of a whole call) with each contender's ``[middleware]`` chain and without one, in the same
process and run, taking turns call by call. ``bench/pii.py`` and ``bench/metrics.py`` name
their contenders and run :func:`main`.

The reply comes from threadline-openai (Chat Completions, the real SDK) on the local fake
OpenAI API, 100 chunks, in two cuts: as a model's tokenizer cuts text (a word with the space
before it, punctuation apart), and in pieces of 4 characters, the first ``Cert``, so that
most chunks end in the middle of a word. Two paces: as fast as the local server writes
(what threadline adds), and paced like a hosted model (the first byte after ``--stall``
seconds, then one chunk every ``--gap`` seconds).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Mapping
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

#: a contender's name and its middleware, by name, with their settings (none: no chain)
Contenders = Mapping[str, Mapping[str, Mapping[str, Any]]]


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


def config(url: str, middleware: Mapping[str, Mapping[str, Any]]) -> Config:
    settings: dict[str, Any] = {
        "providers": {"openai": {"api": "chat", "base_url": url, "api_key": "sk-test", "max_retries": 0}},
        "defaults": {"provider": "openai"},
    }
    if middleware:
        settings["middleware"] = {"chain": list(middleware), **middleware}
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


async def one_send(manager: SessionManager) -> float:
    """Seconds of one whole turn."""
    session = await manager.create_session(title="bench")
    start = time.perf_counter()
    await session.send(QUESTION)
    return time.perf_counter() - start


Times = dict[str, list[tuple[float, float, float]]]


async def measure(contenders: Contenders, calls: int, cut: str, stall: float, gap: float, sends: bool) -> Times:
    """Seconds to the first text and to the end of each stream of each contender (and of a
    whole call, with ``sends``); they take turns call by call, in an order that rotates,
    after 5 rounds that warm up."""
    times: Times = {name: [] for name in contenders}
    text = "".join(CUTS[cut](TEXT * 2))
    async with PacedOpenAI(default_reply=Reply(text=text), stall=stall, gap=gap, cut=CUTS[cut]) as api:
        managers = {
            name: SessionManager(config(api.url, chain), storage=MemoryStorage()) for name, chain in contenders.items()
        }
        for manager in managers.values():
            await manager.open()
        try:
            order = list(managers)
            for call in range(calls + 5):
                gc.collect()
                for name in order[call % len(order) :] + order[: call % len(order)]:
                    first, whole, pieces = await one_stream(managers[name])
                    assert pieces > 50, (name, pieces)  # a hold-back lets held pieces out together
                    send = await one_send(managers[name]) if sends else 0.0
                    if call >= 5:
                        times[name].append((first, whole, send))
        finally:
            for manager in managers.values():
                await manager.close()
    return times


def report(times: Times, title: str, sends: bool) -> None:
    print(title)
    base = [statistics.median(measured[i] for measured in next(iter(times.values()))) for i in range(3)]
    for name, measured in times.items():
        first, whole, send = (statistics.median(m[i] for m in measured) for i in range(3))
        line = (
            f"  {name:18} first token {first * 1e3:8.2f} ms ({(first / base[0] - 1) * 100:+5.1f} %)"
            f"   whole stream {whole * 1e3:8.2f} ms ({(whole / base[1] - 1) * 100:+5.1f} %)"
        )
        if sends:
            line += f"   whole call {send * 1e3:8.2f} ms ({(send / base[2] - 1) * 100:+5.1f} %)"
        print(line)


async def main(contenders: Contenders, doc: str, *, sends: bool = False) -> None:
    """Measure ``contenders`` (the first is the baseline) at both cuts and both paces."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="streams per contender and pace [300]")
    parser.add_argument("--stall", type=float, default=0.25, help="paced: seconds to the first byte [0.25]")
    parser.add_argument("--gap", type=float, default=0.01, help="paced: seconds between chunks [0.01]")
    args = parser.parse_args()
    rounds = max(args.calls // 10, 20)
    for cut in CUTS:
        fast = await measure(contenders, args.calls, cut, 0.0, 0.0, sends)
        report(fast, f"100 chunks ({cut}), median of {args.calls} streams each, taking turns; local, unpaced", sends)
        paced = await measure(contenders, rounds, cut, args.stall, args.gap, sends)
        report(
            paced,
            f"100 chunks ({cut}), median of {rounds} streams each, paced: first byte after "
            f"{args.stall * 1e3:g} ms, then a chunk every {args.gap * 1e3:g} ms",
            sends,
        )
