"""The docs stay true to the code.

Every ```python block of the pages a reader copies from (README.md, each package's README,
docs/*.md) runs as a program, offline: in an empty working directory, with a home of its own
and no API key set, so only the echo provider answers and data lands in that directory or that
home. When the page shows a ```toml config above the block, the last one is the block's
./threadline.toml. On a provider plugin's page the block talks to a local server that speaks
the provider's API (the fake of the plugin's own tests), which the provider's SDK is pointed
at by its base-URL environment variable. Every ```toml block is a threadline.toml that
`threadline config check` accepts, with the API keys it names set.

A block that is not meant to run says so and why, alone on the line before it:
``<!-- not run: a test module of your plugin: MyStorage and MyProvider are its classes -->``.
Such a block must still be valid Python or TOML.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import os
import re
import runpy
import sys
import tomllib
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import click
import pytest
from plugin_site import install_plugin

import threadline.plugin
from threadline import (
    Defaults,
    MiddlewareSection,
    PluginsSection,
    SessionManager,
    StorageSection,
    Template,
    hookspecs,
)
from threadline.cli import cli
from threadline.config import SECTIONS
from threadline.plugin import ProviderConfig
from threadline.testing.wire_server import ScriptedAPI

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [
    ROOT / "README.md",
    ROOT / "core" / "README.md",
    *sorted(ROOT.glob("plugins/*/README.md")),
    *sorted(DOCS.rglob("*.md")),
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"^<!-- not run: (\S.*) -->$", re.MULTILINE)
KEYS = {"OPENAI_API_KEY": "sk-docs", "ANTHROPIC_API_KEY": "sk-ant-docs", "GEMINI_API_KEY": "docs"}
#: a provider plugin's page: the fake API of its tests, and the variable its SDK takes its URL from
FAKE_APIS = {
    "openai": ("threadline_openai.testing", "FakeOpenAI", "OPENAI_BASE_URL"),
    "anthropic": ("fake_anthropic", "FakeAnthropic", "ANTHROPIC_BASE_URL"),
    "gemini": ("fake_gemini", "FakeGemini", "GOOGLE_GEMINI_BASE_URL"),
}


@attrs.frozen
class Block:
    """One fenced code block of a page; ``config``: the last runnable config block above it."""

    page: Path
    line: int
    language: str
    code: str
    not_run: str | None
    config: str | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> Iterator[Block]:
    text = page.read_text(encoding="utf-8")
    config = None
    for fence in FENCE.finditer(text):
        language, code = fence.groups()
        line = text.count("\n", 0, fence.start()) + 1
        mark = NOT_RUN.fullmatch(text.splitlines()[line - 2]) if line > 1 else None
        block = Block(page, line, language, code, mark and mark[1], config)
        if language == "toml" and not block.not_run:
            config = code
        yield block


ALL = [block for page in PAGES for block in blocks(page)]


def examples(language: str, *, run: bool = True) -> list[pytest.param]:
    chosen = [block for block in ALL if block.language == language and (block.not_run is None) == run]
    return [pytest.param(block, id=str(block)) for block in chosen]


def offline(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a new user on this machine: a home of their own, no threadline settings
    and no provider's API key or URL (only the echo provider can answer)."""
    ours = ("THREADLINE_", "XDG_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_")
    environment = {name: value for name, value in os.environ.items() if not name.startswith(ours)}
    return {**environment, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1", **extra}


async def run(command: list[str], where: Path, stdin: bytes = b"", **extra: str) -> tuple[int, str, str]:
    """Run ``command`` in ``where`` as a new user would; its exit status, stdout and stderr."""
    home = where / "home"
    home.mkdir(exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *command, cwd=where, env=offline(home, **extra), stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def provider_api(page: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ScriptedAPI | None]:
    """On a provider plugin's page, the fake API of its tests, running; else None."""
    if page.parent.parent != ROOT / "plugins" or page.parent.name not in FAKE_APIS:
        yield None
        return
    module, name, _ = FAKE_APIS[page.parent.name]
    monkeypatch.syspath_prepend(str(page.parent / "tests"))
    async with getattr(importlib.import_module(module), name)() as api:
        yield api


@pytest.mark.parametrize("block", examples("python"))
async def test_python_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "example.py").write_text(block.code, encoding="utf-8")
    if block.config is not None:
        (tmp_path / "threadline.toml").write_text(block.config, encoding="utf-8")
    async with provider_api(block.page, monkeypatch) as api:
        reach = {} if api is None else {FAKE_APIS[block.page.parent.name][2]: api.url, **KEYS}
        status, out, err = await run([sys.executable, "example.py"], tmp_path, **reach)
    assert status == 0, f"{block} failed:\n{out}\n{err}"
    assert api is None or api.requests, f"{block} never called the provider's API"


@pytest.mark.parametrize("block", examples("toml"))
async def test_config_example_passes_config_check(block: Block, tmp_path: Path) -> None:
    (tmp_path / "threadline.toml").write_text(block.code, encoding="utf-8")
    status, out, err = await run([sys.executable, "-m", "threadline", "config", "check"], tmp_path, **KEYS)
    assert status == 0, f"{block} is not a valid config:\n{err}"
    assert out.startswith(f"ok: {tmp_path / 'threadline.toml'}")


@pytest.mark.parametrize("block", examples("python", run=False) + examples("toml", run=False))
def test_an_example_not_run_is_still_valid(block: Block) -> None:
    if block.language == "python":
        compile(block.code, str(block), "exec")
    else:
        tomllib.loads(block.code)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_not_run_mark_is_on_a_block(page: Path) -> None:
    marks = len(NOT_RUN.findall(page.read_text(encoding="utf-8")))
    assert marks == sum(block.not_run is not None for block in blocks(page)), f"{page}: a mark not right before a block"


async def test_the_tools_page_plugin_gives_the_chat_its_tool(tmp_path: Path) -> None:
    """docs/tools.md's plugin, installed as its pyproject.toml says, and its template: the chat
    started from the template calls the tool, and /history shows the call and its result."""
    page = list(blocks(DOCS / "tools.md"))
    project = tomllib.loads(next(block.code for block in page if "[project]" in block.code))["project"]
    code = next(block.code for block in page if block.language == "python")
    entry_points = project["entry-points"]["threadline"]
    install_plugin(tmp_path / "site", project["name"], entry_points, dict.fromkeys(entry_points.values(), code))
    config = next(block.code for block in page if "[templates." in block.code)
    (tmp_path / "threadline.toml").write_text(config, encoding="utf-8")
    template = next(iter(tomllib.loads(config)["templates"]))
    site = {"PYTHONPATH": str(tmp_path / "site")}

    status, _, err = await run([sys.executable, "-m", "threadline", "config", "check"], tmp_path, **site)
    assert status == 0, err
    chat = [sys.executable, "-m", "threadline", "chat", "--template", template]
    status, out, err = await run(chat, tmp_path, b"What time is it in Lisbon?\n/history\n", **site)
    assert status == 0, err
    assert out.startswith("[calling time_in]tool results: ")
    assert '2 assistant: [call time_in({"zone": "Europe/Lisbon"})]' in out
    assert re.search(r"3 tool: \[result: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\]", out), out  # Lisbon's time


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """The ``threadline`` command itself, for its own options, and each command it runs."""
    if not path:
        yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # a command of its own too (`threadline models`)
                yield (*path, name), command
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def options(command: click.Command) -> set[str]:
    return {name for param in command.params if isinstance(param, click.Option) for name in param.opts} | {"--help"}


def command_rows() -> dict[tuple[str, ...], str]:
    """The rows of docs/cli.md's command table, by the command's words (``threadline sessions
    show ID``: sessions, show); a command's rows joined."""
    rows: dict[tuple[str, ...], str] = {}
    for row in re.finditer(r"^\| `threadline([^`]*)`.*$", (DOCS / "cli.md").read_text(), re.MULTILINE):
        words = tuple(itertools.takewhile(re.compile("[a-z][a-z-]*").fullmatch, row[1].split()))
        rows[words] = rows.get(words, "") + row[0]
    return rows


def test_the_cli_page_has_every_command_and_option() -> None:
    rows = command_rows()
    for path, command in commands():
        assert path in rows, f"`threadline {' '.join(path)}` has no row in docs/cli.md"
        for option in options(command) - {"--help"}:
            if option.startswith("--"):
                assert re.search(f"(?<![\\w-]){option}(?![\\w-])", rows[path]), f"{option} of {path} is not in its row"


def plugin_commands() -> dict[tuple[str, ...], click.Command]:
    """The commands the installed plugins add (threadline-metrics' ``usage``, say)."""
    group = click.Group()
    threadline.get_plugin_manager().hook.threadline_register_commands(cli=group)
    return {(name,): command for name, command in group.commands.items()}


def test_the_cli_page_has_only_commands_and_options_the_program_has() -> None:
    program = dict(commands()) | plugin_commands()
    for path, row in command_rows().items():
        assert path in program, f"docs/cli.md: `threadline {' '.join(path)}` is no command"
        named = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", row))
        assert named <= options(program[path]), f"docs/cli.md: no {named - options(program[path])} in {path}"


def config_sections() -> dict[str, str]:
    """docs/config.md's sections by heading (``[defaults]``, ``sqlite``, ...), each up to the next heading."""
    parts = re.split(r"^#{2,3} (.+)$", (DOCS / "config.md").read_text(), flags=re.MULTILINE)
    return {heading.strip("`"): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def keys_in(table: str) -> set[str]:
    """The keys a section's table lists: the first cell of each row."""
    return set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))


def fields(config: type) -> set[str]:
    return {field.name for field in attrs.fields(config)} - {"settings"}  # a section's plugin tables


def test_the_config_page_lists_every_key_of_the_kernel() -> None:
    sections = config_sections()
    assert set(SECTIONS) == {match[1] for heading in sections if (match := re.match(r"\[(\w+)", heading))}
    for heading, config in [
        ("[defaults]", Defaults),
        ("[storage]", StorageSection),
        ("[middleware]", MiddlewareSection),
        ("[templates.<name>]", Template),
        ("[plugins]", PluginsSection),
    ]:
        assert keys_in(sections[heading]) == fields(config), f"docs/config.md, {heading}"


def test_the_config_page_lists_every_key_of_each_installed_plugin() -> None:
    sections, registry = config_sections(), SessionManager().registry
    common = fields(ProviderConfig)
    assert keys_in(sections["Every other provider"]) == common
    for name, registration in registry.providers.items():
        if issubclass(registration.config, ProviderConfig):
            row = re.search(rf"^\| \[`{name}`\].*\| (.*) \|$", sections["Every other provider"], re.MULTILINE)
            assert row, f"{name} has no row in docs/config.md, Every other provider"
            assert set(re.findall(r"`(\w+)`", row[1])) == fields(registration.config) - common, name
        else:
            assert keys_in(sections[name]) == fields(registration.config), f"docs/config.md, {name}"
    for name, registration in registry.storage.items():
        assert keys_in(sections[name]) == fields(registration.config), f"docs/config.md, {name}"


def test_the_api_reference_has_every_public_name() -> None:
    """Each name of ``threadline`` and ``threadline.plugin`` is rendered on a page of docs/api/,
    by a ``::: name`` line or in the members list of one."""
    pages = "".join(page.read_text() for page in (DOCS / "api").glob("*.md"))
    rendered = re.findall(r"^::: [\w.]*?(\w+)$", pages, re.MULTILINE)
    members = re.findall(r"^ +- (\w+)$", pages, re.MULTILINE)
    assert {*threadline.__all__, *threadline.plugin.__all__} - {*rendered, *members} == {"__version__"}


def test_the_error_tree_is_the_hierarchy() -> None:
    """docs/api/errors.md draws every error class of ``threadline``, each under its base class."""
    tree = next(block.code for block in blocks(DOCS / "api" / "errors.md") if block.language == "text")
    drawn: list[tuple[str, int]] = []  # each class and its depth, in the tree's order
    for line in tree.splitlines():
        name = line.lstrip("│├└─ ").split()[0]
        depth = (len(line) - len(line.lstrip("│├└─ "))) // 4  # each level indents by four characters
        if depth:
            parent = next(above for above, level in reversed(drawn) if level == depth - 1)
            assert getattr(threadline, parent) in getattr(threadline, name).__bases__, line
        drawn.append((name, depth))
    public = (getattr(threadline, name) for name in threadline.__all__)
    errors = {error.__name__ for error in public if isinstance(error, type) and issubclass(error, BaseException)}
    assert {name for name, _ in drawn} == errors


def test_every_package_readme_is_in_the_site_navigation() -> None:
    navigation = (ROOT / "mkdocs.yml").read_text()
    for name, _ in runpy.run_path(str(DOCS / "readmes.py"))["readmes"]():
        assert f": packages/{name}.md\n" in navigation, f"mkdocs.yml's nav has no packages/{name}.md"


def test_every_hookspec_is_documented() -> None:
    reference = (DOCS / "hooks.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("threadline_")]
    assert len(hooks) == 14
    for name in hooks:
        assert f"### `{name}`" in reference, f"{name} is missing from docs/hooks.md"


def test_hook_reference_is_generated_from_the_docstrings() -> None:
    generator = runpy.run_path(str(DOCS / "gen_hooks.py"))
    assert (DOCS / "hooks.md").read_text() == generator["render"](), "run: python docs/gen_hooks.py"
