"""threadline.toml: loading, interpolation, and errors that say where and what would be right."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from threadline import Config, ConfigError, SessionManager
from threadline.builtins.echo import EchoProvider

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
        (
            "[providers.echo]\nchunk = 3\n",
            "providers.echo: extra fields found (chunk); the keys are: replies, chunk_size",
        ),
        ("[providers.nope]\n", "providers.nope: no providers plugin named 'nope'; installed: echo"),
        ("[defaults]\nprovider = 'gpt'\n", "defaults.provider: no provider plugin named 'gpt'; installed: echo"),
        ("[defaults]\nmax_tool_steps = 0\n", "defaults: 'max_tool_steps' must be >= 1: 0"),
        ("[defaults]\ntenant = ''\n", "defaults: tenant must be a non-empty name, or left out for its default"),
        ("[middleware]\nchain = ['pii']\n", "middleware.pii: no middleware plugin named 'pii'; installed: none"),
        ("[middleware]\nchain = 'pii'\n", "middleware.chain"),
        ("[providers.echo]\napi_key = '${NO_SUCH_VAR_XYZ}'\n", "NO_SUCH_VAR_XYZ is not set"),
        ("[templates.t]\nprovider = 'ghost'\n", "templates.t.provider: no provider plugin named 'ghost'"),
    ],
)
def test_errors_name_the_file_the_key_and_what_would_be_right(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        SessionManager.from_config(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


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
    [{"api_key": [SECRET]}, {"api_key": {"value": SECRET}}, {"chunk_size": "${TL_TEST_KEY}"}, {"latency": SECRET}],
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
