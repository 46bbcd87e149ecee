"""detector = "presidio": Presidio's analyzer, run on a spaCy pipeline made here (a blank
English one whose entity ruler knows two names and a town: the tests cannot download a
trained model), finds names and places beside the builtin entities, in every action; it is
imported only when chosen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import threadline
from threadline import TextDelta
from threadline_pii import PIIConfig, PresidioConfig
from threadline_pii.middleware import PIIMiddleware

SAID = "Ann Lee moved to Springfield; mail ann.lee@example.com"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(  # type: ignore[attr-defined]
        [
            {"label": "PERSON", "pattern": [{"LOWER": "ann"}, {"LOWER": "lee"}]},
            {"label": "PERSON", "pattern": [{"LOWER": "bo"}, {"LOWER": "chen"}]},
            {"label": "GPE", "pattern": "Springfield"},
        ]
    )
    path = tmp_path_factory.mktemp("model") / "en_tiny"
    nlp.to_disk(path)
    return str(path)


def config(database: Path, model: str, **pii: Any) -> threadline.Config:
    settings = {"detector": "presidio", "presidio": {"model": model}, **pii}
    return threadline.Config.from_dict(
        {
            "storage": {"backend": "sqlite", "path": str(database)},
            "middleware": {"chain": ["pii"], "pii": settings},
        }
    )


async def test_names_and_places_are_masked_beside_the_builtin_entities(tmp_path: Path, model: str) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db", model)) as manager:
        session = await manager.create_session(provider="echo")
        reply = await session.send(SAID)
        assert reply.text == "[PERSON] moved to [LOCATION]; mail [EMAIL]"
        assert "Ann Lee" not in repr(manager.provider("echo").requests)  # type: ignore[attr-defined]


async def test_pseudonyms_of_names_come_back_in_the_stream(tmp_path: Path, model: str) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db", model, action="pseudonymize")) as manager:
        session = await manager.create_session(provider="echo")
        shown = "".join([e.text async for e in session.stream(f"{SAID}. Bo Chen too.") if isinstance(e, TextDelta)])
        assert shown == f"{SAID}. Bo Chen too."
        user, _ = await session.history()
        assert user.text == "<PERSON_1> moved to <LOCATION_1>; mail <EMAIL_1>. <PERSON_2> too."


async def test_block_names_a_person_found(tmp_path: Path, model: str) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db", model, action="block")) as manager:
        session = await manager.create_session(provider="echo")
        with pytest.raises(threadline.BadRequest, match=r"\(person\)"):
            await session.send("ask Bo Chen")


async def test_a_stream_is_held_back_by_the_clause_and_a_split_name_is_still_found(model: str) -> None:
    from test_stream import streamed, text_of

    pii = PIIMiddleware(PIIConfig(detector="presidio", presidio=PresidioConfig(model=model)))
    text = "Hello there, Ann Lee. We met in Springfield"
    whole = pii.redact(text)
    assert whole == "Hello there, [PERSON]. We met in [LOCATION]"
    for split in range(len(text) + 1):
        assert text_of(await streamed(pii, [text[:split], text[split:]])) == whole, split
    events = await streamed(pii, ["Hello there, Ann", " Lee. We", " met in Spring", "field"])
    pieces = [event.text for event in events if isinstance(event, TextDelta)]
    assert pieces[:2] == ["Hello there, ", "[PERSON]. "]


def test_a_model_that_is_not_installed_is_a_config_error_saying_how_to_get_it() -> None:
    with pytest.raises(threadline.ConfigError, match=r"presidio\.model: the spaCy model 'xx_no_such' is not installed"):
        PIIMiddleware(PIIConfig(detector="presidio", presidio=PresidioConfig(model="xx_no_such")))


def test_neither_presidio_nor_spacy_is_imported_unless_chosen() -> None:
    def loaded(code: str) -> set[str]:
        shown = f"import sys\n{code}\nprint(' '.join({{m.split('.')[0] for m in sys.modules}}))"
        return set(
            subprocess.run([sys.executable, "-c", shown], capture_output=True, text=True, check=True).stdout.split()
        )

    assert not {"regex", "spacy", "presidio_analyzer"} & loaded("import threadline_pii")  # discovery stays light
    used = loaded(
        "from threadline_pii import PIIConfig, make_middleware\nmake_middleware(PIIConfig()).redact('a@b.io')"
    )
    assert "regex" in used and not {"spacy", "presidio_analyzer"} & used
