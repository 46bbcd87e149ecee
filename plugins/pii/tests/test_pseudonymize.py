"""action = "pseudonymize", through a real SessionManager, SQLite on disk and the offline echo
provider (which repeats what it was sent, tokens included): the provider sees only tokens,
the user sees the values, and a session resumed in a new manager keeps its tokens."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import threadline
from threadline import Message, Role, Text, TextDelta
from threadline.plugin import PluginError, SessionRecord
from threadline.testing import Reply, ScriptedToolCall
from threadline_pii import PIIConfig, reveal
from threadline_pii.middleware import PIIMiddleware
from threadline_pii.pseudonyms import METADATA_KEY, Pseudonyms

ANN, BO, PHONE = "ann.lee@example.com", "bo@example.org", "+14155550123"


def config(database: Path, **pii: Any) -> threadline.Config:
    return threadline.Config.from_dict(
        {
            "storage": {"backend": "sqlite", "path": str(database)},
            "middleware": {"chain": ["pii"], "pii": {"action": "pseudonymize", **pii}},
        }
    )


async def streamed(session: threadline.Session, text: str) -> str:
    return "".join([event.text async for event in session.stream(text) if isinstance(event, TextDelta)])


def sent(manager: threadline.SessionManager) -> str:
    return repr(manager.provider("echo").requests)  # type: ignore[attr-defined]


async def test_the_provider_sees_tokens_the_user_sees_values_and_a_resumed_session_keeps_them(
    tmp_path: Path,
) -> None:
    database = tmp_path / "threadline.db"
    async with threadline.SessionManager(config(database)) as manager:
        session = await manager.create_session(provider="echo")
        shown = await streamed(session, f"Mail {ANN} or call {PHONE}")
        assert shown == f"Mail {ANN} or call {PHONE}"  # echo repeated the tokens; they were put back
        assert ANN not in sent(manager) and PHONE not in sent(manager) and "<EMAIL_1>" in sent(manager)
        user, reply = await session.history()
        assert user.text == reply.text == "Mail <EMAIL_1> or call <PHONE_1>"
        assert user.metadata[METADATA_KEY] == {"<EMAIL_1>": ANN, "<PHONE_1>": PHONE}
        assert METADATA_KEY not in reply.metadata  # it brought in no new value
        assert [m.text for m in await reveal(session)] == [shown, shown]
        session_id = session.id
    async with threadline.SessionManager(config(database)) as manager:
        session = await manager.get_session(session_id)
        reply = await session.send(f"again {ANN}, and {BO}")
        assert reply.text == "again <EMAIL_1>, and <EMAIL_2>"  # as stored; reveal() gives what was said
        assert (await reveal(session, [reply]))[0].text == f"again {ANN}, and {BO}"
        assert ANN not in sent(manager) and BO not in sent(manager)


@threadline.tool
def send_mail(to: str) -> str:
    """Send a mail; say who else got it."""
    return f"sent to {to}; copied to {BO}"


async def test_a_tool_is_given_values_and_its_result_is_pseudonymized(tmp_path: Path) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db"), tools=[send_mail]) as manager:
        session = await manager.create_session(provider="echo", tools=["send_mail"])
        echo = manager.provider("echo")
        echo.script([Reply(tool_calls=(ScriptedToolCall("send_mail", {"to": "<EMAIL_1>"}),))])  # type: ignore[attr-defined]
        await session.send(f"write to {ANN}")
        _, call, result, _ = await session.history()
        assert call.tool_calls[0].arguments == {"to": "<EMAIL_1>"}
        assert result.parts[0].content == "sent to <EMAIL_1>; copied to <EMAIL_2>"  # type: ignore[union-attr]
        assert result.metadata[METADATA_KEY] == {"<EMAIL_2>": BO}
        assert ANN not in sent(manager) and BO not in sent(manager)


async def test_a_fork_keeps_its_tokens_and_export_leaves_the_map_out_unless_raw(tmp_path: Path) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db")) as manager:
        session = await manager.create_session(provider="echo")
        await session.send(f"hi {ANN}")
        fork = await session.fork()
        assert (await fork.send(f"{BO} and {ANN}")).text == "<EMAIL_2> and <EMAIL_1>"
        exported, raw = io.StringIO(), io.StringIO()
        await manager.export_jsonl(exported)
        await manager.export_jsonl(raw, raw=True)
    assert ANN not in exported.getvalue() and BO not in exported.getvalue()
    assert "<EMAIL_1>" in exported.getvalue()
    maps = [json.loads(line)["metadata"].get(METADATA_KEY) for line in raw.getvalue().splitlines()]
    assert maps.count({"<EMAIL_1>": ANN}) == 2 and {"<EMAIL_2>": BO} in maps  # the fork copied its own


async def test_an_edit_is_pseudonymized_and_its_revision_exports_without_the_map(tmp_path: Path) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db")) as manager:
        session = await manager.create_session(provider="echo")
        await session.send(f"hi {ANN}")
        edited = await session.edit(1, f"hi {BO}")
        assert edited.text == "hi <EMAIL_2>"
        # the old message's map goes along: the echoed reply after it still says <EMAIL_1>
        assert edited.metadata[METADATA_KEY] == {"<EMAIL_1>": ANN, "<EMAIL_2>": BO}
        assert [m.text for m in await reveal(session)] == [f"hi {BO}", f"hi {ANN}"]
        (revision,) = await session.revisions()
        assert revision.replaced[0].metadata[METADATA_KEY] == {"<EMAIL_1>": ANN}  # kept, map and all
        exported, raw = io.StringIO(), io.StringIO()
        await manager.export_jsonl(exported)
        await manager.export_jsonl(raw, raw=True)
    assert '"type":"revision"' in exported.getvalue()
    assert ANN not in exported.getvalue() and BO not in exported.getvalue()
    assert ANN in raw.getvalue() and BO in raw.getvalue()


async def test_tokens_are_read_again_after_another_process_edits_the_history(tmp_path: Path) -> None:
    """Another process undoes the turn that brought <EMAIL_1> and gives that token to another
    address: this process must not go on with its own, older, map."""
    database = tmp_path / "t.db"
    async with (
        threadline.SessionManager(config(database)) as here,
        threadline.SessionManager(config(database)) as there,
    ):
        mine = await here.create_session(provider="echo")
        await mine.send(f"write to {ANN}")
        theirs = await there.get_session(mine.id)
        await theirs.undo()
        await theirs.send(f"write to {BO}")  # as many messages as before: <EMAIL_1> is BO now
        reply = await mine.send(f"and {BO} again")
        assert reply.text == "and <EMAIL_1> again"
        assert [m.text for m in await reveal(mine)][-1] == f"and {BO} again"


async def test_with_scope_provider_the_storage_keeps_values_and_the_provider_gets_tokens(tmp_path: Path) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db", scope=["provider"])) as manager:
        session = await manager.create_session(provider="echo", system_prompt=f"Escalate to {PHONE}")
        reply = await session.send(f"mail {ANN}")
        assert reply.text == f"mail {ANN}"  # the tokens echoed back were put back
        assert "<EMAIL_1>" in sent(manager) and ANN not in sent(manager) and PHONE not in sent(manager)
        user, _ = await session.history()
        assert user.text == f"mail {ANN}" and user.metadata[METADATA_KEY] == {"<EMAIL_1>": ANN}


async def test_a_session_record_is_masked_not_pseudonymized(tmp_path: Path) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db")) as manager:
        session = await manager.create_session(provider="echo", system_prompt=f"Escalate to {PHONE}")
        await session.send(f"about {ANN}")
        assert (session.record.system_prompt, session.record.title) == ("Escalate to [PHONE]", "about <EMAIL_1>")


async def test_pseudonymize_outside_a_manager_says_what_it_needs() -> None:
    pii = PIIMiddleware(PIIConfig(action="pseudonymize"))
    with pytest.raises(PluginError, match="reads a session's tokens from its storage"):
        await pii.message(Message("s", 1, Role.USER, (Text(f"mail {ANN}"),)), SessionRecord(id="s"))


async def test_turns_that_wait_for_each_other_number_their_values_apart(tmp_path: Path) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db")) as manager:
        session = await manager.create_session(provider="echo")
        await asyncio.gather(session.send(f"mail {ANN}"), session.send(f"mail {BO}"), session.send(f"mail {ANN}"))
        users = [m for m in await session.history() if m.role is Role.USER]
        assert sorted(m.text for m in users) == ["mail <EMAIL_1>", "mail <EMAIL_1>", "mail <EMAIL_2>"]
        assert {m.text: m.text for m in await reveal(session, users)}.keys() == {f"mail {ANN}", f"mail {BO}"}


async def test_a_value_first_seen_in_a_failed_turn_keeps_its_token(tmp_path: Path) -> None:
    async with threadline.SessionManager(config(tmp_path / "t.db", scope=["provider"])) as manager:
        session = await manager.create_session(provider="echo")
        manager.provider("echo").script([Reply(error="unavailable")])  # type: ignore[attr-defined]
        with pytest.raises(threadline.ProviderUnavailable):
            await session.send(f"mail {ANN}")
        assert (await session.send(f"again {ANN}")).text == f"again {ANN}"  # <EMAIL_1> was sent and put back
        assert "<EMAIL_1>" in sent(manager) and ANN not in sent(manager)


async def test_an_import_of_an_export_without_the_map_numbers_new_values_after_the_old(tmp_path: Path) -> None:
    exported = tmp_path / "export.jsonl"
    async with threadline.SessionManager(config(tmp_path / "one.db")) as manager:
        session = await manager.create_session(provider="echo")
        await session.send(f"mail {ANN}")
        with exported.open("w") as out:
            await manager.export_jsonl(out)
    async with threadline.SessionManager(config(tmp_path / "two.db")) as manager:
        await manager.import_jsonl(exported)
        session = await manager.get_session(session.id)
        assert (await session.send(f"and {BO}")).text == "and <EMAIL_2>"  # <EMAIL_1> is ann's, though unknown here
        assert (await reveal(session))[-1].text == f"and {BO}"


async def test_sessions_beyond_those_kept_at_hand_are_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("threadline_pii.middleware.SESSIONS_KEPT", 1)
    async with threadline.SessionManager(config(tmp_path / "t.db")) as manager:
        one, two = await manager.create_session(provider="echo"), await manager.create_session(provider="echo")
        await one.send(f"mail {ANN}")
        await two.send(f"mail {BO}")
        assert (await one.send(f"{BO} or {ANN}")).text == "<EMAIL_2> or <EMAIL_1>"
        pii = manager.middleware["pii"]
        assert list(pii.sessions) == [("default", one.id)]  # type: ignore[attr-defined]
        await one.delete()
        assert list(pii.sessions) == []  # type: ignore[attr-defined]
        assert {session for session, _, _ in pii.sent.values()} == {two.id}  # type: ignore[attr-defined]


async def test_a_value_put_back_where_the_detector_would_miss_it_is_stored_as_its_token(tmp_path: Path) -> None:
    card = "4111 1111 1111 1111"
    async with threadline.SessionManager(config(tmp_path / "t.db")) as manager:
        session = await manager.create_session(provider="echo")
        await session.send(f"mail {ANN}, card {card}")
        echo = manager.provider("echo")
        echo.script([Reply(text="Noted: x<CREDIT_CARD_1>y, __<EMAIL_1>__, jim<EMAIL_1>")])  # type: ignore[attr-defined]
        reply = await session.send("ok?")
        # a card glued to letters is no card to the detector; the address after "jim" is
        # another one, which gets a token of its own
        assert reply.text == "Noted: x<CREDIT_CARD_1>y, __<EMAIL_1>__, <EMAIL_2>"
        assert (await reveal(session, [reply]))[0].text == f"Noted: x{card}y, __{ANN}__, jim{ANN}"
        await session.send("and?")
        assert ANN not in sent(manager) and card not in sent(manager)


def test_the_cli_shows_and_exports_a_session_without_its_map_unless_raw(tmp_path: Path) -> None:
    (tmp_path / "threadline.toml").write_text(
        f'[storage]\nbackend = "sqlite"\npath = "{tmp_path / "t.db"}"\n'
        '[middleware]\nchain = ["pii"]\n[middleware.pii]\naction = "pseudonymize"\n'
    )

    def threadline_cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "threadline", *args], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return done.stdout

    async def chat() -> str:
        async with threadline.SessionManager.from_config(tmp_path / "threadline.toml") as manager:
            session = await manager.create_session(provider="echo")
            await session.send(f"mail {ANN}")
            return session.id

    session_id = asyncio.run(chat())
    for shown in (threadline_cli("sessions", "show", session_id, "--json"), threadline_cli("sessions", "export")):
        assert "<EMAIL_1>" in shown and ANN not in shown
    for shown in (
        threadline_cli("sessions", "show", session_id, "--json", "--raw"),
        threadline_cli("sessions", "export", "--raw"),
    ):
        assert json.dumps({"threadline_pii": {"<EMAIL_1>": ANN}}, separators=(",", ":")) in shown


def test_a_known_value_is_put_back_to_its_token_only_where_it_stands_alone() -> None:
    known = Pseudonyms()
    for token, value in {"<STATE_1>": "IL", "<EMAIL_1>": "bo@x.io", "<PERSON_1>": "Ann", "<IP_1>": "10.1.2.3"}.items():
        known.add(token, value)
    text = "mail <EMAIL_1>, jimbo@x.io and bo@x.io; the Annual report of Ann from IL; hosts 10.1.2.34, 10.1.2.3"
    assert known.retokenize(text) == (
        "mail <EMAIL_1>, jimbo@x.io and <EMAIL_1>; the Annual report of <PERSON_1> from <STATE_1>; "
        "hosts 10.1.2.34, <IP_1>"
    )
