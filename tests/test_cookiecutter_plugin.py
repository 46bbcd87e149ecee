"""The plugin template makes, for every kind, a plugin that installs into a fresh virtual
environment beside the kernel from this checkout, passes its own tests as generated, is
listed by ``threadline plugins`` and works when a config file selects it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from attrs import frozen
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cookiecutter-plugin"
KINDS = ("provider", "storage", "middleware", "lifecycle", "tools", "command")
COMMON = {
    ".github/workflows/ci.yml",
    "CHANGELOG.md",
    "README.md",
    "pyproject.toml",
    "tox.ini",
    "src/threadline_sample_{kind}/__init__.py",
    "src/threadline_sample_{kind}/py.typed",
    "tests/test_sample_{kind}.py",
}
OWN_FILES = {
    "provider": {"src/threadline_sample_provider/provider.py", "tests/test_contract.py"},
    "storage": {"src/threadline_sample_storage/storage.py", "tests/test_contract.py"},
    "middleware": {"src/threadline_sample_middleware/middleware.py"},
    "lifecycle": set(),
    "tools": set(),
    "command": set(),
}


@frozen
class Generated:
    kind: str
    name: str
    project: Path
    venv: Path
    home: Path

    def run(self, *command: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "XDG_CONFIG_HOME": str(self.home), "XDG_DATA_HOME": str(self.home), **env}
        environment.pop("THREADLINE_PLUGINS", None)
        return subprocess.run(
            [str(self.venv / "bin" / command[0]), *command[1:]],
            input=stdin,
            capture_output=True,
            text=True,
            env=environment,
            cwd=self.project,
            timeout=300,
            check=False,
        )

    def threadline(self, config: str, *arguments: str, stdin: str = "", **env: str) -> str:
        path = self.home / "threadline.toml"
        path.write_text(config, encoding="utf-8")
        result = self.run("threadline", "--config", str(path), *arguments, stdin=stdin, **env)
        assert result.returncode == 0, result.stderr
        return result.stdout


def uv(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "uv", *arguments], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module", params=KINDS)
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    kind = request.param
    where = tmp_path_factory.mktemp(kind)
    name = f"sample-{kind}"
    context = {"plugin_name": name, "kind": kind, "description": f"A sample {kind}.", "author_name": "Tester"}
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(where)))
    venv = where / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = str(venv / "bin" / "python")
    uv("pip", "install", "--quiet", "--python", python, f"{ROOT / 'core'}[testing]", f"{project}[test]")
    home = where / "home"
    home.mkdir()
    yield Generated(kind, name, project, venv, home)


def test_the_files_of_each_kind(generated: Generated) -> None:
    files = {str(p.relative_to(generated.project)) for p in generated.project.rglob("*") if p.is_file()}
    assert files == {f.format(kind=generated.kind) for f in COMMON} | OWN_FILES[generated.kind]


def test_the_generated_tests_pass(generated: Generated) -> None:
    result = generated.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_threadline_plugins_lists_it(generated: Generated) -> None:
    listed = [json.loads(line) for line in generated.threadline("", "plugins", "--json").splitlines()]
    (ours,) = [plugin for plugin in listed if plugin["name"] == generated.name]
    assert ours["distribution"] == f"threadline-{generated.name}" and ours["error"] is None, ours


def test_a_config_file_selecting_it_works(generated: Generated) -> None:
    name, kind = generated.name, generated.kind
    if kind == "provider":
        out = generated.threadline(f'[defaults]\nprovider = "{name}"\n', "chat", stdin="Hello there\n")
        assert "ereht olleH" in out
    elif kind == "storage":
        config = f'[storage]\nbackend = "{name}"\npath = "{generated.home / "store.jsonl"}"\n'
        generated.threadline(config, "chat", stdin="Remember this\n")
        listed = generated.threadline(config, "sessions", "list")
        assert "Remember this" in listed  # the title, read back from the file by a new process
    elif kind == "middleware":
        config = f'[middleware]\nchain = ["{name}"]\n[storage]\nbackend = "memory"\n'
        assert f"middleware: {name}" in generated.threadline(config, "config", "check")
        assert "Hello" in generated.threadline(config, "chat", stdin="Hello\n")
    elif kind == "lifecycle":
        log = generated.home / "events.jsonl"
        generated.threadline("", "chat", stdin="Hello\n", THREADLINE_SAMPLE_LIFECYCLE_LOG=str(log))
        events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
        assert events[0] == "session_created" and events.count("message_appended") == 2
    elif kind == "tools":
        call = '{ name = "sample_tools", arguments = { text = "a b c" } }'
        config = (
            f'[templates.counting]\ntools = ["sample_tools"]\n[providers.echo]\nreplies = [{{ tool_calls = [{call}] }}]'
        )
        assert "tool results: 3" in generated.threadline(config, "chat", "--template", "counting", stdin="Count\n")
    else:
        assert generated.threadline('[storage]\nbackend = "memory"\n', name, "What is up?") == "What is up?\n"
