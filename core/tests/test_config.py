"""threadline.toml: loading, interpolation, and errors that say where and what would be right."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import pytest

from threadline import Config, ConfigError, SessionManager
from threadline.builtins.echo import EchoProvider
from threadline.config import Settings, read_disabled_plugins, user_data_dir

pytestmark = pytest.mark.usefixtures("only_builtins")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "threadline.toml"
    path.write_text(text)
    return path


async def test_a_config_file_assembles_the_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREETING", "Ahoy")
    path = write(tmp_path, """
        [defaults]
        provider = "echo"
        model = "echo-9"

        [providers.echo]
        chunk_size = 3
        replies = [{ text = "${GREETING}, ${NAME:-sailor}!" }]

        [templates.pirate]
        system_prompt = "Talk like a pirate."
    """)  # fmt: skip
    async with SessionManager.from_config(path) as manager:
        session = await manager.create_session(template="pirate")
        assert session.record.system_prompt == "Talk like a pirate."
        assert session.record.model == "echo-9"
        assert (await session.send("hi")).text == "Ahoy, sailor!"
        provider = manager.provider("echo")
        assert isinstance(provider, EchoProvider) and provider.config.chunk_size == 3


def test_dollar_dollar_is_a_literal_dollar(tmp_path: Path) -> None:
    config = Config.load(write(tmp_path, '[providers.echo]\ndefault_model = "cost$$${X:-5}"\n'))
    assert config.plugin_config(dict, config.providers["echo"], "providers.echo") == {"default_model": "cost$5"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage\n", "not valid TOML"),
        ("[provider.echo]\n", "unknown section 'provider'; the sections are defaults, storage, providers"),
        ("[storage]\nbackend = 'postgres'\n", "storage.backend: no storage plugin named 'postgres'; installed: memory"),
        ("[providers.echo]\nchunk_size = 'big'\n", "providers.echo.chunk_size: expected int, got str"),
        ("[providers.echo]\nlatency = inf\n", "providers.echo: latency must be a finite number, got inf"),
        (
            "[providers.echo]\nchunk = 3\nsize = 4\n",
            "providers.echo: extra fields found (chunk, size); the keys are: replies, chunk_size",
        ),
        ("[providers.nope]\n", "providers.nope: no providers plugin named 'nope'; installed: echo"),
        ("[defaults]\nprovider = 'gpt'\n", "defaults.provider: no provider plugin named 'gpt'; installed: echo"),
        ("[defaults]\nmax_tool_steps = 0\n", "defaults: 'max_tool_steps' must be >= 1: 0"),
        ("[defaults]\ntenant = ''\n", "defaults: tenant must be a non-empty name, or left out for its default"),
        ("[middleware]\nchain = ['pii']\n", "middleware.pii: no middleware plugin named 'pii'; installed: none"),
        ("[middleware]\nchain = 'pii'\n", "middleware.chain"),
        ("[providers.echo]\napi_key = '${NO_SUCH_VAR_XYZ}'\n", "NO_SUCH_VAR_XYZ is not set"),
        ("[templates.t]\nprovider = 'ghost'\n", "templates.t.provider: no provider plugin named 'ghost'"),
        ("[providers.echo]\nreplies = ['hi']\n", "providers.echo.replies[0]: expected a mapping, got str"),
        (
            "[providers.echo]\nreplies = [{ text = 'a', txt = 'b' }]\n",
            "providers.echo.replies[0]: extra fields found (txt); the keys are: text, tool_calls, error, retry_after",
        ),
        (
            "[providers.echo]\nreplies = [{ tool_calls = [{ name = 'f', args = {} }] }]\n",
            "providers.echo.replies[0].tool_calls[0]: extra fields found (args); the keys are: name, arguments",
        ),
        ("[providers.echo]\nreplies = [{ error = 'late' }]\n", "providers.echo.replies[0].error: 'late' is not one of"),
    ],
)
def test_errors_name_the_file_the_key_and_what_would_be_right(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        SessionManager.from_config(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


@attrs.frozen
class Speed:
    mode: Literal["fast", "safe"] = "fast"
    fallback: Literal["fast", "safe"] | None = None
    gear: str = attrs.field(default="low", validator=attrs.validators.in_(["low", "high"]))
    label: str = attrs.field(default="a", validator=attrs.validators.matches_re("[a-z]+"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "quick"}, "plugins.speed.mode: 'quick' is not one of 'fast', 'safe'"),
        ({"mode": 1}, "plugins.speed.mode: 1 is not one of 'fast', 'safe'"),
        ({"fallback": "Safe"}, "plugins.speed.fallback: 'Safe' is not one of 'fast', 'safe'"),
        ({"mode": "x" * 18}, f"plugins.speed.mode: '{'x' * 18}' is not one of 'fast', 'safe'"),  # 20 characters
        ({"mode": "x" * 19}, "plugins.speed.mode: a long str is not one of 'fast', 'safe'"),  # 21: may be a key
        ({"gear": "mid"}, "plugins.speed.gear: 'mid' is not one of 'low', 'high'"),
        ({"label": "A1"}, "plugins.speed.label: 'label' must match regex '[a-z]+' ('A1' doesn't)"),
    ],
)
def test_a_value_that_is_not_an_allowed_one_is_named_with_the_allowed_ones(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Config(path="tl.toml").plugin_config(Speed, settings, "plugins.speed")
    assert str(raised.value) == f"tl.toml: {message}"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        Config.load(tmp_path / "nope.toml")


def test_the_default_config_needs_no_file() -> None:
    manager = SessionManager()
    assert manager.storage_backend == "memory"
    assert manager.config.defaults.provider is None and manager.default_provider == "echo"


SECRET = "sk-live-4f9a8b7c6d5e"


def test_secrets_are_never_shown_in_a_repr() -> None:
    from threadline.plugin import ProviderConfig

    config = Config.from_dict({
        "providers": {"echo": {"api_key": SECRET, "nested": {"token": SECRET}}},
        "storage": {"backend": "memory", "url": f"redis://user:{SECRET}@127.0.0.1:6379/0"},
        "middleware": {"chain": ["x"], "x": {"password": SECRET}},
    })  # fmt: skip
    assert config.providers["echo"]["api_key"] == SECRET  # the value itself is there for the plugin
    for shown in (repr(config), repr(config.providers), str(config.storage), repr(config.middleware)):
        assert SECRET not in shown and "***" in shown

    @attrs.frozen(kw_only=True)
    class SomeConfig(ProviderConfig):
        default_model: str = "m"

    assert SECRET not in repr(SomeConfig(api_key=SECRET))


@pytest.mark.parametrize(
    "table",
    [
        {"api_key": [SECRET]},
        {"api_key": {"value": SECRET}},
        {"chunk_size": "${TL_TEST_KEY}"},
        {"latency": SECRET},
        {"replies": [{"error": "${TL_TEST_KEY}"}]},
    ],
)
def test_config_errors_never_echo_the_value(table: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_TEST_KEY", SECRET)
    config = Config.from_dict({"providers": {"echo": table}}, file="tl.toml")
    with pytest.raises(ConfigError) as error:
        SessionManager(config)
    assert "tl.toml: providers.echo" in str(error.value) and SECRET not in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'storage = "x"\n', r"storage: expected a table \(\[storage\]\), got str"),
        (b'middleware = "x"\n', r"middleware: expected a table \(\[middleware\]\), got str"),
        (b'plugins = "x"\n', r"plugins: expected a table \(\[plugins\]\), got str"),
        (b'defaults = "x"\n', r"defaults: expected a table \(\[defaults\]\), got str"),
        (bytes(range(256)), "not UTF-8 text"),
        ('[defaults]\ntenant = "x"\n'.encode("utf-16"), "not UTF-8 text"),
        (b"x = " + b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested too deeply to read"),
    ],
)
def test_a_config_no_parser_expects_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "threadline.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"^{path}: {message}"):
        Config.load(path)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[defaults]\nmodel = "${NOPE_X}"\n', "defaults.model", "environment variable NOPE_X is not set"),
        ('[storage]\nbackend = "${NOPE_X}"\n', "storage.backend", "environment variable NOPE_X is not set"),
        ("providers = 1\n", "providers", "expected a table ([providers]), got int"),
        ("[providers]\necho = 1\n", "providers.echo", "expected a table ([providers.echo]), got int"),
        ("[middleware]\nchain = [1]\n", "middleware.chain[0]", "expected str, got int"),
        ("[middleware]\npii = 1\n", "middleware.pii", "expected a table ([middleware.pii]), got int"),
        ("[templates]\nt = 1\n", "templates.t", "expected a table ([templates.t]), got int"),
        ('[templates.t]\nmodel = "${NOPE_X}"\n', "templates.t.model", "environment variable NOPE_X is not set"),
        ("[templates.t]\ntools = 'x'\n", "templates.t.tools", "expected a list, got str"),
        ("[plugins]\ndisable = 'echo'\n", "plugins.disable", "expected a list, got str"),
    ],
)
def test_every_section_names_the_file_and_the_key_it_refuses(tmp_path: Path, text: str, key: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Config.load(path)
    assert (caught.value.file, caught.value.key) == (str(path), key)
    assert str(caught.value).startswith(f"{path}: {key}: {message}")


def test_a_settings_repr_hides_secrets_and_shows_the_rest_as_a_dict() -> None:
    settings = Settings({"n": 1, "api_key": "sk-1", "url": "https://me:pw@host/x", "inner": {"token": "t", "m": "x"}})
    assert (
        repr(settings)
        == "{'n': 1, 'api_key': '***', 'url': 'https://me:***@host/x', 'inner': {'token': '***', 'm': 'x'}}"
    )


def test_the_data_folder_follows_xdg_data_home_else_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_data_dir() == tmp_path / "xdg" / "threadline"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "threadline"


@pytest.mark.parametrize(
    ("text", "disabled"),
    [("", ()), ("[plugins]\n", ()), ("[plugins]\ndisable = ['echo', 'x']\n", ("echo", "x"))],
)
def test_the_disabled_plugins_are_read_before_anything_else(tmp_path: Path, text: str, disabled: tuple[str]) -> None:
    assert read_disabled_plugins(write(tmp_path, text + "[storage]\nbackend = 1\n")) == disabled


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("plugins = 1\n", "plugins: expected a table ([plugins]), got int"),
        ("[plugins]\ndisable = 'echo'\n", "plugins.disable: expected a list of plugin names"),
        ("[plugins]\ndisable = [1]\n", "plugins.disable: expected a list of plugin names"),
        ("[plugins\n", "not valid TOML: "),
    ],
)
def test_disabled_plugins_that_cannot_be_read_are_a_config_error(tmp_path: Path, text: str, error: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_disabled_plugins(path)
    assert str(caught.value).startswith(f"{path}: {error}")


def test_disabled_plugins_of_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        read_disabled_plugins(tmp_path / "none.toml")
