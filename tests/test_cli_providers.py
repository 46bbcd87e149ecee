"""The heavy user's commands with the real provider plugins, on their fake APIs: the key file
is the last place a provider's key is looked for, `threadline models` lists what each API
offers (else what its plugin knows, and why), session ids complete from the storage, and
`threadline install` installs a plugin into the environment it runs in."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
for plugin in ("anthropic", "gemini"):
    sys.path.insert(0, str(PLUGINS / plugin / "tests"))

from fake_anthropic import FakeAnthropic  # noqa: E402
from fake_gemini import FakeGemini  # noqa: E402

from threadline_openai.testing import FakeOpenAI  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


async def threadline(config: Path, *args: str, stdin: str = "", **env: str) -> tuple[int, str, str]:
    """The command as a user runs it, without any provider's key in the environment unless
    ``env`` sets one; its exit status, stdout and stderr."""
    environment = {name: value for name, value in os.environ.items() if name not in KEY_VARIABLES} | env
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "threadline", "--config", str(config), *args,
        stdin=PIPE, stdout=PIPE, stderr=PIPE, env=environment, cwd=config.parent,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None and "Traceback" not in err.decode(), err.decode()
    return process.returncode, out.decode(), err.decode()


async def ok(config: Path, *args: str, stdin: str = "", **env: str) -> str:
    status, out, err = await threadline(config, *args, stdin=stdin, **env)
    assert status == 0, err
    return out


@pytest.fixture
async def apis() -> AsyncIterator[tuple[FakeOpenAI, FakeAnthropic, FakeGemini]]:
    async with FakeOpenAI() as openai, FakeAnthropic() as anthropic, FakeGemini() as gemini:
        yield openai, anthropic, gemini


def write_config(tmp_path: Path, urls: dict[str, str], defaults: str = 'provider = "openai"') -> Path:
    path = tmp_path / "threadline.toml"
    tables = "".join(f'[providers.{name}]\nbase_url = "{url}"\nmax_retries = 0\n' for name, url in urls.items())
    path.write_text(f'[defaults]\n{defaults}\n[storage]\nbackend = "sqlite"\npath = "{tmp_path / "t.db"}"\n{tables}')
    return path


async def test_a_provider_takes_its_key_from_the_key_file_and_the_environment_wins(
    tmp_path: Path, apis: tuple[FakeOpenAI, FakeAnthropic, FakeGemini]
) -> None:
    openai, anthropic, _ = apis
    config = write_config(tmp_path, {"openai": openai.url, "anthropic": anthropic.url})
    await ok(config, "keys", "set", "openai", stdin="sk-from-the-file\n")
    await ok(config, "prompt", "hi")
    assert openai.requests[-1].headers["authorization"] == "Bearer sk-from-the-file"
    await ok(config, "prompt", "hi", OPENAI_API_KEY="sk-from-the-environment")
    assert openai.requests[-1].headers["authorization"] == "Bearer sk-from-the-environment"
    status, _, err = await threadline(config, "prompt", "-p", "anthropic", "hi")
    assert status == 1 and "or run `threadline keys set anthropic`" in err
    await ok(config, "keys", "set", "anthropic", "--value", "sk-ant-file")
    await ok(config, "prompt", "-p", "anthropic", "hi")
    headers = anthropic.requests[-1].headers
    assert "sk-ant-file" in headers.get("x-api-key", "") + headers.get("authorization", "")


async def test_an_api_key_that_is_only_an_unset_variable_lets_the_key_file_be_used(tmp_path: Path) -> None:
    """The key as DESIGN.md writes it, `${OPENAI_API_KEY}`, with the variable unset: the key
    file is where the key is looked for next."""
    config = tmp_path / "threadline.toml"
    config.write_text('[storage]\nbackend = "memory"\n[providers.openai]\napi_key = "${OPENAI_API_KEY}"\n')
    status, _, error = await threadline(config, "config", "check")
    assert status != 0 and "providers.openai.api_key: environment variable OPENAI_API_KEY is not set" in error
    assert "`threadline keys set openai`" in error
    assert (await ok(config, "models", "default")).startswith("echo/")
    await ok(config, "keys", "set", "openai", stdin="sk-stored")
    assert (await ok(config, "models", "default")).startswith("openai/")
    await ok(config, "config", "check")


async def test_a_key_file_others_may_read_is_named_when_a_command_passes_it_over(tmp_path: Path) -> None:
    """The choice of the default provider counts such a file as no key (a command that calls
    no provider still runs), and says so once, not silently."""
    config = tmp_path / "threadline.toml"
    config.write_text('[storage]\nbackend = "memory"\n')
    await ok(config, "keys", "set", "anthropic", stdin="sk-ant-1")
    keys = Path(os.environ["XDG_CONFIG_HOME"]) / "threadline" / "keys.json"
    keys.chmod(0o644)
    status, out, error = await threadline(config, "prompt", "--no-log", "hi")
    assert status == 0 and out == "hi\n"  # the offline echo answered
    assert error.count(f"chmod 600 {keys}") == 1


async def test_models_lists_what_each_api_offers(
    tmp_path: Path, apis: tuple[FakeOpenAI, FakeAnthropic, FakeGemini]
) -> None:
    openai, anthropic, gemini = apis
    config = write_config(tmp_path, {"openai": openai.url, "anthropic": anthropic.url, "gemini": gemini.url})
    for name in ("anthropic", "gemini"):
        await ok(config, "keys", "set", name, stdin=f"{name}-key")
    listed = [json.loads(line) for line in (await ok(config, "models", "--json")).splitlines()]
    by_provider: dict[str, list[str]] = {}
    for row in listed:
        by_provider.setdefault(row["provider"], []).append(row["model"])
        assert row["listed_by"] == ("plugin" if row["provider"] == "echo" else "api"), row
    assert by_provider["openai"] == sorted(openai.models)
    assert by_provider["anthropic"][:3] == anthropic.models
    assert "gemini-2.5-flash-preview-09-2025" in by_provider["gemini"]
    assert "gemini-embedding-001" not in by_provider["gemini"]  # it makes no replies
    default = [row for row in listed if row["default"]]
    assert [(row["provider"], row["model"]) for row in default] == [("openai", "gpt-4.1-mini")]


async def test_models_falls_back_to_the_known_ones_and_says_why(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"openai": "http://127.0.0.1:9/v1"})
    status, out, err = await threadline(config, "models", "--provider", "openai")
    assert status == 0
    note = "note: openai: the models its plugin knows of, not its API's: the connection to http://127.0.0.1:9/v1/models"
    assert f"{note} failed" in err
    assert "openai/gpt-4.1-mini  (default, openai's default)" in out.splitlines()
    status, out, err = await threadline(config, "models", "--provider", "anthropic")
    assert "no API key" in err and "`threadline keys set anthropic`" in err
    assert "anthropic/claude-sonnet-4-6  (anthropic's default)" in out.splitlines()


async def test_models_default_names_a_model_one_provider_knows(tmp_path: Path) -> None:
    config = write_config(tmp_path, {}, defaults="")
    await ok(config, "models", "default", "claude-sonnet-4-5")
    assert await ok(config, "models", "default") == "anthropic/claude-sonnet-4-5\n"
    await ok(config, "models", "default", "openai/my-fine-tune")
    assert await ok(config, "models", "default") == "openai/my-fine-tune\n"


async def test_session_ids_complete_from_the_storage(tmp_path: Path) -> None:
    config = write_config(tmp_path, {}, defaults='provider = "echo"')
    first = json.loads(await ok(config, "prompt", "--json", "first question"))["session"]
    second = json.loads(await ok(config, "prompt", "--json", "second question"))["session"]
    completing = {"_THREADLINE_COMPLETE": "bash_complete", "COMP_CWORD": "5"}
    words = f"threadline --config {config} sessions show "
    out = await ok(config, COMP_WORDS=words, **completing)
    assert sorted(out.splitlines()) == sorted([f"plain,{first}", f"plain,{second}"])
    out = await ok(config, COMP_WORDS=words + first[:20], **completing)
    assert out.splitlines() == [f"plain,{first}"]


# -- install --------------------------------------------------------------------------------

PLUGIN_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "threadline-tiny"
version = "0.1.0"
dependencies = ["threadline"]

[project.entry-points.threadline]
tiny = "threadline_tiny"

[tool.hatch.build.targets.wheel]
packages = ["src/threadline_tiny"]
"""
PLUGIN_CODE = """\
from threadline.plugin import hookimpl


@hookimpl
def threadline_register_tools(register):
    register(lambda: "tiny", name="tiny")
"""


def uv(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "uv", *arguments], check=True, capture_output=True, timeout=600)


def run(venv: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"} | env
    return subprocess.run(
        [str(venv / "bin" / "threadline"), *arguments], capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.mark.skipif(os.name == "nt", reason="the venv's programs are in bin/")
def test_install_puts_a_plugin_into_the_environment_threadline_runs_in(tmp_path: Path) -> None:
    """A throwaway venv with the kernel of this checkout and no pip: threadline installs with
    uv (on PATH), and lists the plugin once installed; uninstall takes it out again."""
    venv = tmp_path / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-e", str(ROOT / "core"))
    project = tmp_path / "threadline-tiny"
    (project / "src" / "threadline_tiny").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (project / "src" / "threadline_tiny" / "__init__.py").write_text(PLUGIN_CODE)
    uv_dir = str(Path(shutil.which("uv") or Path(sys.executable).with_name("uv")).parent)
    path = {"PATH": f"{uv_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    installed = run(venv, "install", str(project), **path)
    assert installed.returncode == 0, installed.stderr
    assert "running: " in installed.stderr and "pip install" in installed.stderr
    (tiny,) = [line for line in installed.stdout.splitlines() if line.startswith("tiny ")]
    assert "threadline-tiny 0.1.0" in tiny and "loaded" in tiny

    refused = run(venv, "install", str(ROOT / "bench"), **path)
    assert refused.returncode == 2 and "add --any" in refused.stderr

    removed = run(venv, "uninstall", "threadline-tiny", **path)
    assert removed.returncode == 0, removed.stderr
    assert "tiny " not in removed.stdout
