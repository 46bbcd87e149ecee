"""Fuzzing what users hand threadline: mutated config files through config checking and a chat
on the echo provider, mutated JSON lines through an import and the export after it. Whatever
the input, the answer is a threadline error with a message, never another exception."""

from __future__ import annotations

import asyncio
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline import Config, SessionManager, ThreadlineError, get_plugin_manager
from threadline.builtins.memory import MemoryStorage

PLUGIN_MANAGER = get_plugin_manager()
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))

VALID_CONFIG: dict[str, Any] = {
    "defaults": {"provider": "echo", "model": "echo-1", "tenant": "acme", "max_tool_steps": 3},
    "storage": {"backend": "memory"},
    "providers": {"echo": {"chunk_size": 4, "chunk_delay": 0.0, "latency": 0.0, "default_model": "echo-2"}},
    "middleware": {"chain": []},
    "templates": {"t": {"provider": "echo", "model": "m", "system_prompt": "Be brief.", "tools": [], "metadata": {}}},
    "plugins": {"disable": []},
}
PATHS = [(section,) for section in VALID_CONFIG] + [
    (section, *key)
    for section, table in VALID_CONFIG.items()
    for key in (
        [(name,) for name in table]
        + [(name, inner) for name, value in table.items() if isinstance(value, dict) for inner in value]
    )
]

scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(["echo", "memory", "${HOME}", "${NOPE_NOT_SET}", "$${x}", "\x00", "-1", "inf"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=8,
)


def toml(value: Any) -> str:
    """A value in TOML's inline syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, float | int):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(key)} = {toml(item)}" for key, item in value.items()) + "}"


def document(config: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(section)} = {toml(table)}\n" for section, table in config.items())


def assemble_and_chat(text: bytes) -> None:
    """What `threadline config check` and then `threadline chat --provider echo` do with a file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "threadline.toml"
        path.write_bytes(text)
        try:
            manager = SessionManager(Config.load(path), storage=MemoryStorage(), plugin_manager=PLUGIN_MANAGER)
            asyncio.run(asyncio.wait_for(_chat(manager), timeout=10))
        except ThreadlineError as exc:
            assert str(exc)


async def _chat(manager: SessionManager) -> None:
    async with manager:
        echo = manager.provider("echo").config  # type: ignore[attr-defined]
        if echo.latency + 200 * echo.chunk_delay > 1:  # a slow echo is what the file asked for
            return
        session = await manager.create_session(provider="echo")
        await session.send("hello")
        async for _ in session.stream("again"):
            pass


def test_the_valid_config_chats() -> None:
    assemble_and_chat(document(VALID_CONFIG).encode())


@FUZZ
@given(path=st.sampled_from(PATHS), value=values, drop=st.booleans())
def test_a_config_with_one_value_changed_is_a_chat_or_a_clear_error(
    path: tuple[str, ...], value: Any, drop: bool
) -> None:
    config = json.loads(json.dumps(VALID_CONFIG))
    table = config
    for key in path[:-1]:
        table = table[key]
    if drop:
        del table[path[-1]]
    else:
        table[path[-1]] = value
    assemble_and_chat(document(config).encode())


@FUZZ
@given(data=st.data())
def test_a_config_with_bytes_changed_is_a_chat_or_a_clear_error(data: st.DataObject) -> None:
    text = bytearray(document(VALID_CONFIG).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(text) - 1))
        text[where : where + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    assemble_and_chat(bytes(text))


def exported_lines() -> list[str]:
    async def export() -> str:
        async with SessionManager(storage=MemoryStorage(), plugin_manager=PLUGIN_MANAGER) as tl:
            session = await tl.create_session(user_id="u", metadata={"k": [1, {"x": "y"}]})
            await session.send("hello")
            out = io.StringIO()
            await tl.export_jsonl(out)
            return out.getvalue()

    return asyncio.run(export()).splitlines()


LINES = exported_lines()


def import_then_export(lines: list[bytes]) -> None:
    """What `threadline sessions import FILE` and then `sessions export` do with a file."""

    async def run(path: Path) -> None:
        async with SessionManager(storage=MemoryStorage(), plugin_manager=PLUGIN_MANAGER) as tl:
            try:
                await tl.import_jsonl(path)
            except ThreadlineError as exc:
                assert str(exc)
            await tl.export_jsonl(io.StringIO(), all_tenants=True)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "import.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        asyncio.run(run(path))


@FUZZ
@given(line=st.integers(0, len(LINES) - 1), data=st.data())
def test_an_import_line_with_one_field_changed_is_imported_or_named(line: int, data: st.DataObject) -> None:
    record = json.loads(LINES[line])
    field = data.draw(st.sampled_from(sorted(record)))
    if data.draw(st.booleans()):
        del record[field]
    else:
        record[field] = data.draw(values)
    lines = [text.encode() for text in LINES]
    lines[line] = json.dumps(record).encode()
    import_then_export(lines)


@FUZZ
@given(line=st.integers(0, len(LINES) - 1), data=st.data())
def test_an_import_line_with_bytes_changed_is_imported_or_named(line: int, data: st.DataObject) -> None:
    lines = [text.encode() for text in LINES]
    text = bytearray(lines[line])
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(text) - 1))
        text[where : where + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    lines[line] = bytes(text)
    import_then_export(lines)
