"""The plugin template makes, for every kind, a plugin whose own ``tox`` installs it into a
fresh environment beside the kernel of this checkout (found without being told, as threadline
is not on PyPI yet) and passes its tests as generated; installed so, it is listed by
``threadline plugins`` and works when a config file selects it."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from attrs import frozen
from cookiecutter.exceptions import FailedHookException
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
    tox: subprocess.CompletedProcess[str]

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


def render(where: Path, kind: str, variable: str | None = None, **answers: str) -> Path:
    """The template rendered as a user renders it, THREADLINE_KERNEL set to ``variable``; with
    cookiecutter's own settings, not the user's, and its replay kept in ``where``, not in ~."""
    context = {"plugin_name": f"sample-{kind}", "kind": kind, "description": f"A sample {kind}.", **answers}
    settings = {"replay_dir": str(where / "replay"), "cookiecutters_dir": str(where / "cookiecutters")}
    with pytest.MonkeyPatch.context() as patch:
        if variable is None:
            patch.delenv("THREADLINE_KERNEL", raising=False)
        else:
            patch.setenv("THREADLINE_KERNEL", variable)
        project = cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(where), default_config=settings
        )
        return Path(project)


@pytest.fixture(scope="module")
def tox(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs tox: this Python's, else one installed for these tests."""
    if importlib.util.find_spec("tox") is not None:
        return [sys.executable, "-m", "tox"]
    venv = tmp_path_factory.mktemp("tox") / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "tox>=4.20", "tox-uv>=1.11")
    return [str(venv / "bin" / "python"), "-m", "tox"]


@pytest.fixture(scope="module", params=KINDS)
def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tox: list[str]
) -> Iterator[Generated]:
    """A plugin of each kind, rendered with no setting, then tested by its own tox: the steps
    its README gives. The environment tox made is where the other tests run threadline."""
    kind = request.param
    where = tmp_path_factory.mktemp(kind)
    project = render(where, kind)
    environment = {
        key: value
        for key, value in os.environ.items()
        if key != "THREADLINE_KERNEL" and not key.startswith("TOX_") and key != "VIRTUAL_ENV"
    }
    work = where / "tox"
    result = subprocess.run(
        [*tox, "run", "-e", "py", "-c", str(project / "tox.ini"), "--workdir", str(work)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=project,
        timeout=600,
        check=False,
    )
    home = where / "home"
    home.mkdir()
    yield Generated(kind, f"sample-{kind}", project, work / "py", home, result)


def test_the_files_of_each_kind(generated: Generated) -> None:
    made = (p for p in generated.project.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files = {str(p.relative_to(generated.project)) for p in made}
    assert files == {f.format(kind=generated.kind) for f in COMMON} | OWN_FILES[generated.kind]


def test_the_generated_tests_pass_under_its_own_tox(generated: Generated) -> None:
    result = generated.tox
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_its_tox_took_the_kernel_from_this_checkout(generated: Generated) -> None:
    assert f"deps = {{env:THREADLINE_KERNEL:{ROOT / 'core'}}}" in (generated.project / "tox.ini").read_text()
    where = "import importlib.metadata as m; print(m.distribution('threadline').read_text('direct_url.json'))"
    result = generated.run("python", "-c", where)
    assert json.loads(result.stdout)["url"] == (ROOT / "core").as_uri(), result.stdout + result.stderr


def test_it_imports_only_the_kernel_api_for_plugins(generated: Generated) -> None:
    """``threadline`` and ``threadline.plugin``, and ``threadline.testing`` in tests: nothing else
    of the kernel's."""
    allowed = {"threadline", "threadline.plugin"}
    for path in generated.project.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in (n for n in names if n == "threadline" or n.startswith("threadline.")):
                ok = allowed | ({"threadline.testing"} if path.parts[-2] == "tests" else set())
                assert name in ok, f"{path.relative_to(generated.project)} imports {name}"


@pytest.mark.parametrize("generated", ["storage"], indirect=True)
def test_the_storage_skeleton_is_every_method_of_the_contract(generated: Generated) -> None:
    """Its own code for each ``Storage`` method, each documented, each on docs/storage.md."""
    check = """
import inspect, json
from threadline.plugin import Storage
from threadline_sample_storage.storage import SampleStorageStorage as Own
methods = [n for n in dir(Storage) if not n.startswith("_")]
print(json.dumps({
    "bases": [c.__name__ for c in Own.__mro__[1:]],
    "methods": methods,
    "documented": [n for n in methods if n in vars(Own) and inspect.getdoc(vars(Own)[n])],
}))
"""
    result = generated.run("python", "-c", check)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["bases"] == ["object"]  # nothing inherited from the kernel's storages
    assert found["documented"] == found["methods"] and len(found["methods"]) == 17
    page = (ROOT / "docs" / "storage.md").read_text()
    assert [m for m in found["methods"] if f"### `{m}(" not in page] == []


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


# -- where the kernel comes from, until threadline is on PyPI -----------------------------


GIT = "threadline @ git+https://example.org/threadline.git#subdirectory=core"


@pytest.mark.parametrize(
    ("variable", "answer", "default"),
    [
        pytest.param(None, None, str(ROOT / "core"), id="nothing set: the checkout the template is in"),
        pytest.param(GIT, None, GIT, id="THREADLINE_KERNEL"),
        pytest.param(None, "", "threadline>=0.1", id="answered empty: PyPI"),
    ],
)
def test_the_kernel_setting_becomes_the_tox_default(
    tmp_path: Path, variable: str | None, answer: str | None, default: str
) -> None:
    project = render(tmp_path, "tools", variable, **({} if answer is None else {"threadline_kernel": answer}))
    assert f"deps = {{env:THREADLINE_KERNEL:{default}}}\n" in (project / "tox.ini").read_text()
    readme = (project / "README.md").read_text()
    assert "THREADLINE_KERNEL" in readme
    assert ('pip install -e ".[test]"' if answer == "" else f'pip install "{default}" -e ".[test]"') in readme


@pytest.mark.parametrize(
    ("kernel", "says"),
    [
        (str(ROOT), f"give its kernel, {ROOT / 'core'}"),
        ("core", "not an absolute path"),
        (str(ROOT / "docs"), "does not hold the threadline kernel"),
    ],
)
def test_a_kernel_path_that_is_not_the_kernel_is_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], kernel: str, says: str
) -> None:
    with pytest.raises(FailedHookException):
        render(tmp_path, "tools", threadline_kernel=kernel)
    assert says in capfd.readouterr().err


def test_rendering_for_these_tests_leaves_the_home_folder_alone(tmp_path: Path) -> None:
    """cookiecutter keeps a replay of every rendering in ~/.cookiecutter_replay/ unless told
    otherwise: :func:`render`, run where HOME is an empty folder, leaves it empty."""
    home = tmp_path / "home"
    home.mkdir()
    code = "import sys, pathlib, test_cookiecutter_plugin as t; t.render(pathlib.Path(sys.argv[1]), 'tools')"
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(Path(__file__).parent)}
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert list(home.iterdir()) == []
