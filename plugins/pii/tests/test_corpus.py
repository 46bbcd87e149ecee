"""The generated corpus (tests/corpus.py): how well the builtin detector finds each entity,
and, sent through threadline-openai (Chat Completions, the real SDK) to a local OpenAI API
that records every request, with SQLite on disk: no seeded value reaches a request body or
the database file, in the user's messages, the replies, streamed or not, tool-call arguments
and tool results alike."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from corpus import Sample, generate

import threadline
from threadline.testing import Reply, ScriptedToolCall
from threadline_openai.testing import FakeOpenAI
from threadline_pii.entities import BUILTIN, find

CORPUS = generate(1200)
SESSIONS, TURNS = 120, 10  # one user message per turn: every message of the corpus is sent


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_precision_and_recall_per_entity_meet_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    entities = list(BUILTIN.values())
    caught, seeded, found_as, right = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    near_misses = near_misses_masked = 0
    for sample in CORPUS:
        found = find(sample.text, entities)
        for value in sample.seeded:
            span = (value.start, value.end)
            if not value.entity:
                near_misses += 1
                near_misses_masked += any(overlaps(span, (f.start, f.end)) for f in found)
                continue
            seeded[value.entity] += 1
            caught[value.entity] += any(
                f.entity == value.entity and f.start <= span[0] and f.end >= span[1] for f in found
            )
        for f in found:
            found_as[f.entity] += 1
            right[f.entity] += any(
                v.entity == f.entity and f.start <= v.start and f.end >= v.end for v in sample.seeded
            )
    recall = {entity: caught[entity] / seeded[entity] for entity in seeded}
    precision = {entity: right[entity] / found_as[entity] for entity in found_as}
    with capsys.disabled():
        print(f"\n{len(CORPUS)} messages; per entity: seeded, recall, precision")
        for entity in sorted(seeded):
            print(f"  {entity:12} {seeded[entity]:5}  {recall[entity]:7.2%}  {precision.get(entity, 0):7.2%}")
        print(f"  near-misses  {near_misses:5}  masked: {near_misses_masked / near_misses:.2%}")
    for entity in ("credit_card", "iban", "us_ssn", "api_key"):
        assert recall[entity] == 1.0, entity
    for entity in ("email", "phone", "ip"):
        assert recall[entity] >= 0.99, entity
    assert near_misses_masked / near_misses <= 0.01
    assert near_misses >= 1000 and min(seeded.values()) >= 150


@threadline.tool
def lookup(who: str) -> str:
    """A customer's record."""
    return f"record of {who}: {CORPUS[len(who) % len(CORPUS)].text}"


def replies(turn: int, sample: Sample) -> list[Reply]:
    """What the model answers a turn: every third turn it calls ``lookup`` with values of the
    corpus (whose result holds more of them) before its text reply; the text holds values too."""
    text = Reply(text=f"Noted: {sample.text}")
    if turn % 3:
        return [text]
    return [Reply(tool_calls=(ScriptedToolCall("lookup", {"who": sample.seeded[0].value}),)), text]


@pytest.mark.parametrize("action", ["mask", "pseudonymize"])
async def test_no_seeded_value_reaches_a_request_or_the_database_file(tmp_path: Path, action: str) -> None:
    """With pseudonymize the database keeps the values, in the pseudonym maps alone: the
    export, which leaves the maps out, is what holds none."""
    async with FakeOpenAI(chunk_size=3) as api:
        config = threadline.Config.from_dict(
            {
                "storage": {"backend": "sqlite", "path": str(tmp_path / "threadline.db")},
                "providers": {"openai": {"api": "chat", "base_url": api.url, "api_key": "sk-test", "max_retries": 0}},
                "middleware": {"chain": ["pii"], "pii": {"scope": ["provider", "storage"], "action": action}},
            }
        )
        exported = io.StringIO()
        async with threadline.SessionManager(config, tools=[lookup]) as manager:
            for number in range(SESSIONS):
                session = await manager.create_session(provider="openai", tools=["lookup"])
                for turn in range(TURNS):
                    sample = CORPUS[number * TURNS + turn]
                    api.script(replies(turn, sample))
                    if turn % 2:
                        await session.send(sample.text)
                    else:
                        async for _ in session.stream(sample.text):
                            pass
            await manager.export_jsonl(exported)
    assert len(api.requests) == SESSIONS * sum(len(replies(turn, CORPUS[0])) for turn in range(TURNS))
    bodies = b"\n".join(request.body for request in api.requests)
    files = b"".join(path.read_bytes() for path in sorted(tmp_path.iterdir()))  # noqa: ASYNC240 (the -wal too)
    stored = files if action == "mask" else exported.getvalue().encode()
    assert stored and (tmp_path / "threadline.db").exists()
    values = {value.value.encode() for sample in CORPUS for value in sample.seeded if value.entity}
    assert len(values) > 1500
    assert sorted(v for v in values if v in bodies) == []
    assert sorted(v for v in values if v in stored) == []
    near_misses = {value.value.encode() for sample in CORPUS for value in sample.seeded if not value.entity}
    assert len([v for v in near_misses if v in bodies]) >= 0.99 * len(near_misses)  # not masked by the way
