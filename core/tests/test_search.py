"""Full-text search: ``SessionManager.search``, its words and snippets, and ``threadline
sessions search`` (its mistakes; threadline-sqlite's tests find what a stored chat said)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_cli import ok, threadline, user_error

from threadline import ConfigError, Message, Role, SearchHit, SearchQuery, SessionManager, SessionRecord, Text
from threadline.builtins.memory import MemoryStorage
from threadline.model import converter
from threadline.search import search_messages, search_terms, snippet
from threadline.search_cli import SINCE_FORMS, parse_since, run_search


class NoSearch(MemoryStorage):
    search_messages = None  # as a storage without the capability


async def test_the_manager_searches_its_tenant_and_passes_its_filters(manager: SessionManager) -> None:
    mine = await manager.create_session(user_id="ann")
    await mine.send("The quick brown fox")
    other = await manager.create_session(user_id="bob", tenant="elsewhere")
    await other.send("A quick fox elsewhere")
    hits = await manager.search("QUICK fox")
    assert [(hit.session_id, hit.seq) for hit in hits] in ([(mine.id, 1), (mine.id, 2)], [(mine.id, 2), (mine.id, 1)])
    assert all(isinstance(hit, SearchHit) and hit.snippet == "The [quick] brown [fox]" for hit in hits)
    assert [hit.session_id for hit in await manager.search("fox", tenant="elsewhere")] == [other.id] * 2
    assert await manager.search("fox", user_id="bob") == []
    assert await manager.search("fox", provider="openai") == []
    assert len(await manager.search("fox", since=datetime.now(UTC) - timedelta(minutes=1), limit=1)) == 1


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"text": "***"}, "nothing to search for in '\\*\\*\\*': give at least one word"),
        ({"text": ""}, "nothing to search for"),
        ({"text": "fox", "limit": 0}, "limit must be 1 to 1000, got 0"),
        ({"text": "fox", "since": datetime(2026, 1, 1)}, "since must be a timezone-aware datetime"),
        ({"text": "fox", "tenant": ""}, "tenant must be a non-empty name"),
    ],
)
async def test_a_search_that_cannot_be_made_says_why(
    manager: SessionManager, arguments: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        await manager.search(**arguments)  # type: ignore[arg-type]


async def test_a_storage_that_cannot_search_says_which_can() -> None:
    async with SessionManager(storage=NoSearch()) as manager:
        with pytest.raises(ConfigError, match="NoSearch storage cannot search messages; threadline-sqlite and the"):
            await manager.search("fox")


def test_search_terms_are_words_with_nothing_of_fts_syntax() -> None:
    assert search_terms('"Café*" AND near(x) -y ***  don\'t') == (
        ("cafe",), ("and",), ("near", "x"), ("y",), ("don", "t")
    )  # fmt: skip
    assert search_terms("   ") == search_terms("") == search_terms("*** ( )") == ()


def test_words_fold_as_sqlites_unicode61_tokenizer_folds_them() -> None:
    """Each character lowercased on its own, its accent taken off; no case folding beyond that
    (ß is no ss), no compatibility forms (ﬁ is no fi): what threadline-sqlite's index holds."""
    assert search_terms("Straße ﬁnance İstanbul Cafe\u0301 ΟΔΟΣ x_y ½ \u0301") == (
        ("straße",), ("ﬁnance",), ("istanbul",), ("cafe",), ("οδοσ",), ("x", "y"), ("½",)
    )  # fmt: skip


def test_the_memory_scan_gives_each_hit_its_sessions_fields() -> None:
    session = SessionRecord(title="Trip", user_id="ann", provider="echo", model="m1")
    message = Message(session.id, 1, Role.USER, (Text("a fox"),))
    (hit,) = search_messages([message], SearchQuery("fox"), {session.id: session})
    assert (hit.title, hit.user_id, hit.provider, hit.model, hit.snippet) == ("Trip", "ann", "echo", "m1", "a [fox]")


async def test_search_json_is_the_hit_as_the_kernels_converter_writes_it(
    manager: SessionManager, capsys: pytest.CaptureFixture[str]
) -> None:
    session = await manager.create_session(user_id="ann")
    await session.send("The quick fox")
    await run_search(manager, "fox", user_id=None, provider=None, since=None, limit=1, as_json=True)
    (hit,) = await manager.search("fox", limit=1)
    line = json.loads(capsys.readouterr().out)
    assert line == converter.unstructure(hit) and line["role"] == hit.role.value
    assert line["created_at"] == hit.created_at.isoformat()


def test_a_snippet_marks_the_match_and_cuts_around_it() -> None:
    text = " ".join(f"w{n}" for n in range(40)) + " Target here and " + " ".join(f"v{n}" for n in range(40))
    cut = snippet(text, search_terms("target"))
    assert cut.startswith("…w") and cut.endswith("…") and "[Target] here" in cut
    assert len(cut.split()) == 16
    assert snippet("Short text", search_terms("short")) == "[Short] text"
    assert snippet("no words: ***", search_terms("x")) == "no words: ***"
    assert snippet("", ()) == ""


def test_since_takes_dates_times_and_durations() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("12h", now) == parse_since("12 hrs", now) == now - timedelta(hours=12)
    assert parse_since("7d", now) == parse_since("1w", now) == now - timedelta(days=7)
    for unit, names in {
        timedelta(minutes=2): ("m", "min", "mins", "minute", "minutes"),
        timedelta(hours=2): ("h", "hr", "hrs", "hour", "hours"),
        timedelta(days=2): ("d", "day", "days"),
        timedelta(weeks=2): ("w", "wk", "wks", "week", "weeks"),
    }.items():  # each unit as its letter, short form or word, singular or plural
        for name in names:
            assert parse_since(f"2{name}", now) == parse_since(f"2 {name.upper()}", now) == now - unit, name
    assert "minutes, hours, days or weeks" in SINCE_FORMS
    assert parse_since("2026-01-31T09:00+01:00", now) == datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    assert parse_since("2026-01-31", now).utcoffset() is not None  # local midnight
    for wrong in ("yesterday", "7 fortnights", "-3d", "", "30s", "2 ms", "1 hs", "1 y"):
        with pytest.raises(ValueError, match="is not a date or a duration: give a date \\(2026-01-31\\)"):
            parse_since(wrong, now)


def test_sessions_search_mistakes_are_clear(config: Path) -> None:
    assert "no messages match 'fox'" in ok_stderr(threadline("sessions", "search", "fox", config=config))
    assert ok(threadline("sessions", "search", "fox", "--json", config=config)) == ""
    said = user_error(threadline("sessions", "search", "fox", "--since", "last tuesday", config=config))
    assert "Invalid value for '--since': 'last tuesday' is not a date or a duration" in said
    said = user_error(threadline("sessions", "search", "***", config=config))
    assert "nothing to search for in '***': give at least one word (letters or digits)" in said
    said = user_error(threadline("sessions", "search", "x", "--limit", "0", config=config))
    assert "Invalid value for '--limit'" in said
    assert "Missing argument 'TEXT'" in user_error(threadline("sessions", "search", config=config))


def ok_stderr(result: object) -> str:
    ok(result)  # type: ignore[arg-type]
    return result.stderr  # type: ignore[attr-defined,no-any-return]
