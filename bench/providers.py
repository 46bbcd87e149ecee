"""Time threadline's provider plugins add to a call and to a streamed chunk, against calling
the same SDK directly, on the same local server (each plugin's fake API from its tests),
in the same process and run.

For each provider: a whole reply (``complete``) and a stream of 100 text chunks, asked
for directly through the SDK, through the threadline provider, and through a
``Session`` (memory storage: the user message and the reply are stored). Whole calls
are measured first, then streams; in each pass the three contenders take turns call by
call, so that a busy moment of the machine hits them all.

Run: python bench/providers.py [--calls 300] [--only openai-chat anthropic]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from attrs import frozen

from threadline import Message, Request, Role, SessionManager, Text, TextDelta
from threadline.builtins.memory import MemoryStorage
from threadline.contracts import Provider
from threadline.testing import Reply

ROOT = Path(__file__).resolve().parent.parent
for plugin in ("anthropic", "gemini"):
    sys.path.insert(0, str(ROOT / "plugins" / plugin / "tests"))

CHUNK = 4
TEXT = ("The quick brown fox jumps over the lazy dog. " * 10)[: 100 * CHUNK]  # 100 chunks of 4 characters
SYSTEM, QUESTION = "Be brief.", "Tell me about foxes."


@frozen
class Kind:
    """One provider: its fake API, the SDK called directly, and the threadline provider."""

    fake: Callable[[], AbstractAsyncContextManager[Any]]
    client: Callable[[str], Any]
    complete: Callable[[Any, str], Awaitable[Any]]
    stream: Callable[[Any, str], AsyncIterator[str]]
    provider: Callable[[str], Provider]
    model: str


def openai_kind(api: str) -> Kind:
    import openai

    from threadline_openai import OpenAIConfig
    from threadline_openai.provider import OpenAIProvider
    from threadline_openai.testing import FakeOpenAI

    def client(url: str) -> Any:
        return openai.AsyncOpenAI(api_key="sk-test", base_url=url, max_retries=0)

    def messages() -> list[dict[str, Any]]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]

    def items() -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}]

    async def complete(sdk: Any, model: str) -> Any:
        if api == "chat":
            return await sdk.chat.completions.create(model=model, messages=messages())
        return await sdk.responses.create(model=model, input=items(), instructions=SYSTEM, store=True)

    async def stream(sdk: Any, model: str) -> AsyncIterator[str]:
        if api == "chat":
            chunks = await sdk.chat.completions.create(
                model=model, messages=messages(), stream=True, stream_options={"include_usage": True}
            )
            async for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        else:
            events = await sdk.responses.create(
                model=model, input=items(), instructions=SYSTEM, store=True, stream=True
            )
            async for event in events:
                if event.type == "response.output_text.delta":
                    yield event.delta

    def provider(url: str) -> Provider:
        return OpenAIProvider(OpenAIConfig(api_key="sk-test", base_url=url, max_retries=0, api=api))  # type: ignore[arg-type]

    return Kind(lambda: FakeOpenAI(chunk_size=CHUNK), client, complete, stream, provider, "gpt-4.1-mini")


def anthropic_kind() -> Kind:
    import anthropic
    from fake_anthropic import FakeAnthropic

    from threadline_anthropic import AnthropicConfig
    from threadline_anthropic.provider import AnthropicProvider

    def client(url: str) -> Any:
        return anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=url, max_retries=0)

    def arguments(model: str) -> dict[str, Any]:
        return {
            "model": model,
            "max_tokens": 8192,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": QUESTION}],
        }

    async def complete(sdk: Any, model: str) -> Any:
        return await sdk.messages.create(**arguments(model))

    async def stream(sdk: Any, model: str) -> AsyncIterator[str]:
        async for event in await sdk.messages.create(**arguments(model), stream=True):
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield event.delta.text

    def provider(url: str) -> Provider:
        return AnthropicProvider(AnthropicConfig(api_key="sk-ant-test", base_url=url, max_retries=0))

    return Kind(lambda: FakeAnthropic(chunk_size=CHUNK), client, complete, stream, provider, "claude-sonnet-4-6")


def gemini_kind() -> Kind:
    from fake_gemini import FakeGemini
    from google import genai
    from google.genai import types

    from threadline_gemini import GeminiConfig
    from threadline_gemini.provider import GeminiProvider

    def client(url: str) -> Any:
        options = types.HttpOptions(base_url=url, retry_options=types.HttpRetryOptions(attempts=1))
        return genai.Client(api_key="gm-test", http_options=options).aio

    def arguments(model: str) -> dict[str, Any]:
        contents = [{"role": "user", "parts": [{"text": QUESTION}]}]
        return {"model": model, "contents": contents, "config": {"system_instruction": SYSTEM}}

    async def complete(sdk: Any, model: str) -> Any:
        return await sdk.models.generate_content(**arguments(model))

    async def stream(sdk: Any, model: str) -> AsyncIterator[str]:
        async for chunk in await sdk.models.generate_content_stream(**arguments(model)):
            if chunk.text:
                yield chunk.text

    def provider(url: str) -> Provider:
        return GeminiProvider(GeminiConfig(api_key="gm-test", base_url=url, max_retries=0))

    return Kind(lambda: FakeGemini(chunk_size=CHUNK), client, complete, stream, provider, "gemini-3.5-flash")


KINDS: dict[str, Callable[[], Kind]] = {
    "openai-responses": lambda: openai_kind("responses"),
    "openai-chat": lambda: openai_kind("chat"),
    "anthropic": anthropic_kind,
    "gemini": gemini_kind,
}


async def drain(stream: AsyncIterator[Any]) -> int:
    """Read a stream to its end, as a program showing the text would: count the text pieces."""
    return sum([1 async for item in stream if isinstance(item, str | TextDelta)])


async def measure(kind: Kind, calls: int) -> dict[str, list[float]]:
    """Seconds of each call of each contender. Whole calls, then streams: in each pass the
    contenders take turns call by call, in an order that rotates, so that neither a busy
    moment nor going first favours one of them."""
    times: dict[str, list[float]] = {}
    async with kind.fake() as fake:
        fake.default_reply = Reply(text=TEXT)  # every call gets the 100-chunk reply
        sdk, provider = kind.client(fake.url), kind.provider(fake.url)
        request = Request(kind.model, (Message("bench", 1, Role.USER, (Text(QUESTION),)),), SYSTEM)
        async with SessionManager(storage=MemoryStorage(), providers={"bench": provider}) as manager:
            created: list[Any] = []

            async def new_session() -> Any:  # titled, so that its first message is a turn like any other
                session = await manager.create_session(
                    provider="bench", model=kind.model, system_prompt=SYSTEM, title="b"
                )
                created.append(session)
                return session

            async def session_complete() -> Any:
                return await (await new_session()).send(QUESTION)

            async def session_stream() -> int:
                return await drain((await new_session()).stream(QUESTION))

            passes: list[list[tuple[str, Callable[[], Awaitable[Any]]]]] = [
                [
                    ("complete: SDK directly", lambda: kind.complete(sdk, kind.model)),
                    ("complete: threadline provider", lambda: provider.complete(request)),
                    ("complete: threadline Session", session_complete),
                ],
                [
                    ("stream: SDK directly", lambda: drain(kind.stream(sdk, kind.model))),
                    ("stream: threadline provider", lambda: drain(provider.stream(request))),
                    ("stream: threadline Session", session_stream),
                ],
            ]
            for contenders in passes:
                for turn in range(calls):
                    shift = turn % len(contenders)
                    for name, call in contenders[shift:] + contenders[:shift]:
                        started = time.perf_counter()
                        await call()
                        times.setdefault(name, []).append(time.perf_counter() - started)
                    for session in created:  # untimed: a heap growing call by call would slow every later call
                        await session.delete()
                    created.clear()
        await (sdk.close() if hasattr(sdk, "close") else sdk.aclose())
    return times


def report(name: str, results: dict[str, list[float]]) -> None:
    median = {key: statistics.median(values) for key, values in results.items()}
    print(f"{name}:")
    for what in ("complete", "stream"):
        base = median[f"{what}: SDK directly"]
        unit = "per call" if what == "complete" else "per 100-chunk stream"
        print(f"   {what:8} SDK directly          {base * 1e3:8.3f} ms {unit}")
        for via in ("threadline provider", "threadline Session"):
            ours = median[f"{what}: {via}"]
            added = (ours - base) / base * 100
            extra = f", {(ours - base) / 100 * 1e6:+.1f} µs a chunk" if what == "stream" else ""
            print(f"   {what:8} {via:22} {ours * 1e3:8.3f} ms  ({added:+.1f} %{extra})")


async def main(calls: int, only: list[str]) -> None:
    gc.collect()
    gc.freeze()
    print(f"median of {calls} calls each, taking turns; replies of {len(TEXT)} characters "
          f"in {len(TEXT) // CHUNK} chunks")  # fmt: skip
    for name in only:
        report(name, await measure(KINDS[name](), calls))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="calls of each kind, for each provider")
    parser.add_argument("--only", nargs="*", default=list(KINDS), choices=list(KINDS))
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.only))
