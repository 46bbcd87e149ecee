"""First-party plugins touch the kernel only through its public API (``threadline``) and the
plugin API (``threadline.plugin``), and their tests through ``threadline.testing`` besides:
what a third-party plugin can rely on is what ours use."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import threadline
import threadline.plugin

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
#: old_databases/ scripts run against past releases' kernels, which had no threadline.plugin
SOURCES = sorted(PLUGINS.glob("*/src/**/*.py")) + [
    path for path in sorted(PLUGINS.glob("*/tests/**/*.py")) if "old_databases" not in path.parts
]
#: module -> the names a plugin may import from it (None: the module itself, or any name)
ALLOWED: dict[str, set[str] | None] = {
    "threadline": set(threadline.__all__),
    "threadline.plugin": set(threadline.plugin.__all__),
    "threadline.testing": None,
}


def imports_in(tree: ast.AST) -> Iterator[tuple[int, str, str | None]]:
    """``(line, module, name)`` of each absolute import; ``name`` is None for ``import module``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from ((node.lineno, node.module, alias.name) for alias in node.names)


def refusal(module: str, name: str | None) -> str | None:
    """Why importing ``name`` from ``module`` reaches past the plugin API; None when it does not."""
    if module != "threadline" and not module.startswith("threadline."):
        return None  # not the kernel (threadline_openai is the plugin's own)
    if module.startswith("threadline.testing."):
        module = "threadline.testing"
    if module not in ALLOWED:
        return f"{module} is the kernel's own: import from threadline or threadline.plugin"
    names = ALLOWED[module]
    if name is None or names is None or name in names:
        return None
    return f"{name} is not in {module}.__all__ (add it to threadline.plugin if plugins need it)"


def test_every_plugins_sources_and_tests_are_checked() -> None:
    found = {path.relative_to(PLUGINS).parts[:2] for path in SOURCES}
    plugins = ("openai", "anthropic", "gemini", "sqlite")
    assert found >= {(plugin, kind) for plugin in plugins for kind in ("src", "tests")}


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(PLUGINS)))
def test_plugins_import_only_the_public_and_plugin_apis(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    wrong = [
        f"{path.relative_to(PLUGINS)}:{line}: from {module} import {name or '(the module)'}: {why}"
        for line, module, name in imports_in(tree)
        if (why := refusal(module, name))
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "name", "refused"),
    [
        ("threadline", "Message", False),
        ("threadline", "errors", True),
        ("threadline.plugin", "translating", False),
        ("threadline.plugin", "converter", True),
        ("threadline.model", "Message", True),
        ("threadline.testing.wire_server", "HTTPReply", False),
        ("threadline_openai.errors", "translate", False),
        ("threadline.providers", None, True),
    ],
)
def test_the_check_refuses_what_reaches_past_the_plugin_api(module: str, name: str | None, refused: bool) -> None:
    assert (refusal(module, name) is not None) is refused


# -- every import declared ---------------------------------------------------------------

#: import names that differ from the name of the distribution that provides them
DISTRIBUTIONS = {"google": "google-genai", "opentelemetry": "opentelemetry-api"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(package: Path) -> set[str]:
    """The distributions ``package``'s pyproject.toml depends on, its extras' included."""
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project.get("optional-dependencies", {}).values() for r in extra),
    ]
    return {normalized(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]) for requirement in requirements}


def third_party(package: Path) -> set[str]:
    """The top-level modules ``package``'s source imports that neither Python nor it provides."""
    own = {path.name for path in (package / "src").iterdir() if path.is_dir()}
    imported = {
        module.split(".")[0]
        for path in (package / "src").rglob("*.py")
        for _, module, _ in imports_in(ast.parse(path.read_text(encoding="utf-8")))
    }
    return imported - own - set(sys.stdlib_module_names) - {"__future__"}


@pytest.mark.parametrize("package", [ROOT / "core", *sorted(PLUGINS.glob("*/"))], ids=lambda path: path.name)
def test_every_import_is_a_declared_dependency(package: Path) -> None:
    missing = {
        module
        for module in third_party(package)
        if normalized(DISTRIBUTIONS.get(module, module)) not in declared(package)
    }
    assert not missing, f"{package.name}/src imports {sorted(missing)}: add them to {package.name}/pyproject.toml"
