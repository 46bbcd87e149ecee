"""Templates and model aliases saved as files in the user config dir: merged with the config's
own by the loader, used by sessions and turns, and kept by `threadline templates` and
`threadline aliases`, run as a user runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_cli import ok, threadline, user_error

from threadline import ConfigError, SessionManager
from threadline.builtins.memory import MemoryStorage
from threadline.config import Alias, Config, Template
from threadline.user_files import save_template, set_alias, with_user_files


def user_dir() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "threadline"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "threadline.toml"
    path.write_text(
        '[defaults]\nprovider = "echo"\n[storage]\nbackend = "memory"\n'
        '[templates.support]\nsystem_prompt = "Help."\n[aliases]\nshared = "echo-shared"\n'
    )
    return path


def test_the_loader_merges_saved_templates_and_aliases(tmp_path: Path, config: Path) -> None:
    save_template("pirate", Template(provider="echo", system_prompt='Say "arr"\n\u007f', tools=()), tmp_path)
    set_alias("fast", Alias("echo-1", "echo"), tmp_path)
    merged = with_user_files(Config.load(config), tmp_path)
    assert set(merged.templates) == {"support", "pirate"}
    assert merged.templates["pirate"].system_prompt == 'Say "arr"\n\u007f'  # written as TOML, read back
    assert merged.aliases == {"shared": Alias("echo-shared"), "fast": Alias("echo-1", "echo")}
    assert set(Config.load(config).templates) == {"support"}  # the config file alone, as a library loads it


def test_a_name_in_both_places_or_a_bad_file_is_an_error_naming_the_file(tmp_path: Path, config: Path) -> None:
    save_template("support", Template(system_prompt="Other."), tmp_path)
    with pytest.raises(ConfigError, match=r"template 'support' is both \[templates.support\] in .*threadline.toml"):
        with_user_files(Config.load(config), tmp_path)
    (tmp_path / "templates" / "support.toml").unlink()
    (tmp_path / "templates" / "broken.toml").write_text("system_prompt = [")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        with_user_files(Config.load(config), tmp_path)
    (tmp_path / "templates" / "broken.toml").write_text("sytem_prompt = 'x'")
    with pytest.raises(ConfigError, match=r"broken.toml: template: extra fields found \(sytem_prompt\)"):
        with_user_files(Config.load(config), tmp_path)
    (tmp_path / "templates" / "broken.toml").unlink()
    (tmp_path / "aliases.toml").write_text('shared = "x"\n')
    with pytest.raises(ConfigError, match=r"alias 'shared' is both \[aliases\] shared in"):
        with_user_files(Config.load(config), tmp_path)
    (tmp_path / "aliases.toml").write_text("fast = 3\n")
    with pytest.raises(ConfigError, match=r"aliases.toml: fast: expected a model name or a table"):
        with_user_files(Config.load(config), tmp_path)


def test_a_saved_file_that_cannot_be_read_is_reported_and_left_out(tmp_path: Path, config: Path) -> None:
    save_template("good", Template(system_prompt="Fine."), tmp_path)
    (tmp_path / "templates" / "bad.toml").write_text("system_prompt = [")
    reported: list[ConfigError] = []
    merged = with_user_files(Config.load(config), tmp_path, report=reported.append)
    assert set(merged.templates) == {"support", "good"}
    (error,) = reported
    assert error.file == str(tmp_path / "templates" / "bad.toml")
    assert "`threadline templates remove bad`" in str(error)


async def test_an_alias_in_defaults_model_is_resolved_after_the_call_and_the_template() -> None:
    config = Config.from_dict({
        "defaults": {"provider": "echo", "model": "fast"},
        "aliases": {"fast": {"model": "echo-fast", "provider": "echo"}, "big": "echo-big"},
        "templates": {"plain": {"system_prompt": "Hi."}, "large": {"model": "big"}},
    })  # fmt: skip
    async with SessionManager(config, storage=MemoryStorage()) as manager:
        for template, model in ((None, "echo-fast"), ("plain", "echo-fast"), ("large", "echo-big")):
            session = await manager.create_session(template=template)
            assert (session.record.provider, session.record.model) == ("echo", model), template
            assert (await session.send("hi")).model == model
        assert (await manager.create_session(model="big")).record.model == "echo-big"


async def test_an_alias_stands_for_its_model_in_sessions_turns_and_templates() -> None:
    config = Config.from_dict({
        "defaults": {"provider": "echo"},
        "aliases": {"fast": {"model": "echo-fast", "provider": "echo"}, "any": "echo-any"},
        "templates": {"quick": {"model": "fast"}},
    })  # fmt: skip
    async with SessionManager(config, storage=MemoryStorage()) as manager:
        session = await manager.create_session(model="fast")
        assert (session.record.provider, session.record.model) == ("echo", "echo-fast")
        assert (await manager.create_session(template="quick")).record.model == "echo-fast"
        assert (await manager.create_session(model="any")).record.model == "echo-any"
        reply = await session.send("hi", model="any")
        assert reply.model == "echo-any"
        with pytest.raises(ConfigError, match="model alias 'fast' is echo/echo-fast, not a model of provider 'x'"):
            manager.resolve_model("x", "fast")
        assert manager.resolve_model(None, "not-an-alias") == (None, "not-an-alias")


def test_templates_save_list_show_and_use(config: Path) -> None:
    said = ok(threadline("templates", "save", "pirate", "--system", "Talk like a pirate.", "--provider", "echo",
                         config=config))  # fmt: skip
    assert f"saved template pirate to {user_dir() / 'templates' / 'pirate.toml'}" in said
    listed = ok(threadline("templates", "list", config=config)).splitlines()
    assert [line.split()[0] for line in listed] == ["pirate", "support"]
    assert "Talk like a pirate." in listed[0] and "[templates.support] in" in listed[1]
    shown = ok(threadline("templates", "show", "pirate", config=config))
    assert 'system_prompt = "Talk like a pirate."' in shown and 'provider = "echo"' in shown
    reply = json.loads(ok(threadline("prompt", "-t", "pirate", "--json", "ahoy", config=config)))
    assert reply["text"] == "ahoy"
    assert "Invalid value for -t/--template: no template named 'nope'" in user_error(
        threadline("prompt", "-t", "nope", "x", config=config)
    )
    assert "saved already" in user_error(threadline("templates", "save", "pirate", "--system", "x", config=config))
    ok(threadline("templates", "save", "pirate", "--system", "Arr.", "--replace", config=config))
    assert 'system_prompt = "Arr."' in ok(threadline("templates", "show", "pirate", config=config))
    ok(threadline("templates", "remove", "pirate", config=config))
    assert not (user_dir() / "templates" / "pirate.toml").exists()


def test_templates_mistakes_are_refused_and_write_nothing(config: Path) -> None:
    cases = [
        (["save", "support", "--system", "x"], "is [templates.support] in"),
        (["save", "x", "--provider", "nope"], "not saved: no provider plugin named 'nope'; installed:"),
        (["save", "x", "--tool", "nope"], "not saved: no tool named 'nope'"),
        (["save", "x"], "say what the template holds"),
        (["save", "../evil", "--system", "x"], "'../evil' cannot name a template"),
        (["save", "x", "--from-session", "nope"], "no session 'nope'"),
        (["show", "nope"], "no template named 'nope'; templates: support"),
        (["edit", "support"], "is [templates.support] in"),
        (["remove", "nope"], "no template named 'nope'"),
    ]
    for arguments, says in cases:
        assert says in user_error(threadline("templates", *arguments, config=config)), arguments
    assert not (user_dir() / "templates").exists() or not list((user_dir() / "templates").iterdir())


def test_templates_edit_checks_what_was_saved(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(threadline("templates", "save", "pirate", "--system", "Arr.", config=config))
    path = user_dir() / "templates" / "pirate.toml"
    before = path.read_text()
    edited = tmp_path / "edited.toml"
    monkeypatch.setenv("EDITOR", f"cp {edited}")
    for text, says in [
        ("system_prompt = [", "not valid TOML"),
        ("model = 3", "template.model: expected str"),
        ('provider = "nope"', "no provider plugin named 'nope'"),
        ("", "the edit left the template empty"),
    ]:
        edited.write_text(text)
        said = user_error(threadline("templates", "edit", "pirate", config=config))
        assert "not saved" in said and "as it was" in said and says in said, said
        assert path.read_text() == before
    edited.write_text('system_prompt = "Yo ho."\n')
    assert f"saved {path}" in ok(threadline("templates", "edit", "pirate", config=config))
    assert 'system_prompt = "Yo ho."' in ok(threadline("templates", "show", "pirate", config=config))


def test_aliases_set_list_use_and_remove(config: Path) -> None:
    assert "fast = echo/echo-fast" in ok(threadline("aliases", "set", "fast", "echo-fast", "--provider", "echo",
                                                    config=config))  # fmt: skip
    listed = ok(threadline("aliases", "list", config=config)).splitlines()
    assert listed[0].startswith("fast  echo/echo-fast  (")
    assert listed[1].startswith("shared  echo-shared  ([aliases] in")
    reply = json.loads(ok(threadline("prompt", "-m", "fast", "--json", "hi", config=config)))
    assert (reply["provider"], reply["model"]) == ("echo", "echo-fast")
    assert "is in [aliases] of" in user_error(threadline("aliases", "set", "shared", "x", config=config))
    assert "no provider plugin named 'nope'" in user_error(
        threadline("aliases", "set", "x", "m", "--provider", "nope", config=config)
    )
    assert "is in [aliases] of" in user_error(threadline("aliases", "remove", "shared", config=config))
    assert "no alias named 'nope'; aliases: fast, shared" in user_error(
        threadline("aliases", "remove", "nope", config=config)
    )
    ok(threadline("aliases", "remove", "fast", config=config))
    assert "fast" not in ok(threadline("aliases", "list", config=config))


def test_a_saved_template_is_kept_as_written_without_expanding_variables(config: Path) -> None:
    prompt = "use ${NOPE} here, $$5, ${HOME}"
    ok(threadline("templates", "save", "good", "--system", prompt, config=config))
    for command in (("templates", "list"), ("sessions", "list")):
        result = threadline(*command, config=config)
        assert result.returncode == 0 and "NOPE" not in result.stderr, result.stderr
    assert f"system_prompt = {json.dumps(prompt)}" in ok(threadline("templates", "show", "good", config=config))
    ok(threadline("aliases", "set", "odd", "m-${NOPE}", config=config))
    assert "odd  m-${NOPE}  (" in ok(threadline("aliases", "list", config=config))


def test_a_broken_template_file_fails_only_what_uses_it_and_can_be_mended_or_removed(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(threadline("templates", "save", "good", "--system", "Fine.", config=config))
    bad = user_dir() / "templates" / "bad.toml"
    bad.write_text("system_prompt = [")
    result = threadline("sessions", "list", config=config)
    assert result.returncode == 0, result.stderr
    assert f"warning: {bad}: not valid TOML" in result.stderr
    assert "`threadline templates edit bad` or `threadline templates remove bad`" in result.stderr
    assert "good" in ok(threadline("templates", "list", config=config))
    assert "no template named 'bad'" in user_error(threadline("templates", "show", "bad", config=config))
    edited = tmp_path / "edited.toml"
    edited.write_text('system_prompt = "Mended."\n')
    monkeypatch.setenv("EDITOR", f"cp {edited}")
    assert f"saved {bad}" in ok(threadline("templates", "edit", "bad", config=config))
    assert bad.read_text() == 'system_prompt = "Mended."\n'
    bad.write_text("sytem_prompt = 'x'")
    result = threadline("templates", "remove", "bad", config=config)
    assert result.returncode == 0, result.stderr
    assert not bad.exists()
    assert "warning" not in threadline("templates", "list", config=config).stderr


def test_templates_save_without_replace_never_writes_over_one_saved_meanwhile(tmp_path: Path) -> None:
    path = save_template("race", Template(system_prompt="First."), tmp_path, replace=False)
    with pytest.raises(FileExistsError):
        save_template("race", Template(system_prompt="Second."), tmp_path, replace=False)
    assert 'system_prompt = "First."' in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["race.toml"]  # no partial file left


def test_an_alias_named_as_a_known_model_is_set_with_a_note(config: Path) -> None:
    result = threadline("aliases", "set", "echo-1", "echo-2", "--provider", "echo", config=config)
    assert "note: 'echo-1' is also a model of echo; the alias comes first" in ok(result) + result.stderr
    quiet = threadline("aliases", "set", "quick", "echo-2", "--provider", "echo", config=config)
    assert "note:" not in ok(quiet) + quiet.stderr
