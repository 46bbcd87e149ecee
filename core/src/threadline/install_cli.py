"""``threadline install`` and ``uninstall``: plugins installed into (or removed from) the
Python environment threadline runs in, with pip (``python -m pip``), or with uv where that
environment has no pip; then the plugins, as ``threadline plugins`` lists them.

Only threadline's own distributions are taken (``threadline-*``, and ``threadline`` to
upgrade it), so that a typo does not install whatever a registry holds under that name;
``--any`` takes any requirement."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Final

import click

KERNEL: Final = "threadline"
PREFIX: Final = "threadline-"
#: a requirement's distribution name, before its extras, version or marker
_NAME: Final = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalized(name: str) -> str:
    """A distribution name as the packaging standards compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution(requirement: str) -> str | None:
    """The distribution ``requirement`` names: its name (``threadline-openai>=0.1``), the
    ``[project] name`` of a project directory, the name a wheel or sdist file starts with;
    ``None`` when that cannot be told (a URL, a directory without a pyproject.toml)."""
    import tomllib  # here: the CLI's start stays light

    path = Path(requirement).expanduser()
    if requirement.startswith((".", "/", "~")) or path.exists():
        if path.is_dir():
            try:
                name = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
            except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
                return None
            return str(name)
        if path.name.endswith((".whl", ".tar.gz", ".zip")):
            return path.name.split("-", 1)[0]
        return None
    if "://" in requirement or "@" in requirement:
        return None
    match = _NAME.match(requirement)
    return match[1] if match else None


def _check(requirements: tuple[str, ...], allow_any: bool, verb: str) -> None:
    """Refuse what is not a threadline distribution (unless ``allow_any``)."""
    if allow_any:
        return
    for requirement in requirements:
        name = distribution(requirement)
        if name is None:
            raise click.UsageError(
                f"cannot tell which distribution {requirement!r} is (a URL, or a directory without a "
                f"pyproject.toml [project] name): add --any to {verb} it all the same"
            )
        if normalized(name) != KERNEL and not normalized(name).startswith(PREFIX):
            raise click.UsageError(
                f"{name!r} is not a threadline plugin: plugins are the distributions named threadline-* "
                f"(threadline-openai, say; `threadline plugins` lists the installed ones); add --any to {verb} "
                f"another distribution {'in' if verb == 'install' else 'from'} threadline's environment"
            )


def installer() -> tuple[list[str], bool]:
    """The command that installs into this Python's environment, and whether it is uv's: its
    pip, else uv's pip (told to install for this Python)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"], False
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip"], True
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv", "pip"], True
    raise click.ClickException(
        f"the environment threadline runs in ({sys.prefix}) has no pip, and uv is not on PATH: install "
        f"one (`{sys.executable} -m ensurepip`), or install plugins with your own tool"
    )


def _run(verb: str, arguments: list[str]) -> None:
    """Run the installer's ``verb``, its output passing through; its failure is ours."""
    import subprocess  # here: the CLI's start stays light

    program, is_uv = installer()
    command = [*program, verb, *(["--python", sys.executable] if is_uv else ["-y"] if verb == "uninstall" else [])]
    command += arguments
    click.echo(f"running: {' '.join(command)}", err=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise click.ClickException(f"{' '.join([*program, verb])} failed (exit status {result.returncode})")


def _list_plugins() -> None:
    """``threadline plugins`` in a new process: it finds what was just installed."""
    import subprocess

    from threadline.cli import _state

    state = _state()
    config = [] if state.source == "user" else ["--config", str(state.config_path)]
    subprocess.run([sys.executable, "-m", "threadline", *config, "plugins"], check=False, env=os.environ)


@click.command()
@click.argument("requirements", nargs=-1, required=True, metavar="PLUGIN...")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade what is installed already to the newest version.")
@click.option(
    "-e",
    "--editable",
    "editable",
    is_flag=True,
    help="Install the project directories given as editable (for development).",
)
@click.option("--any", "allow_any", is_flag=True, help="Take any distribution, not only threadline-* ones.")
def install(requirements: tuple[str, ...], upgrade: bool, editable: bool, allow_any: bool) -> None:
    """Install plugins (threadline-* distributions: names, project directories, wheels) into the
    Python environment threadline runs in, with its pip (uv's where it has none); then list
    the plugins."""
    _check(requirements, allow_any, "install")
    arguments = ["--upgrade"] if upgrade else []
    for requirement in requirements:
        arguments += ["-e", requirement] if editable else [requirement]
    _run("install", arguments)
    _list_plugins()


@click.command()
@click.argument("requirements", nargs=-1, required=True, metavar="PLUGIN...")
@click.option("--any", "allow_any", is_flag=True, help="Take any distribution, not only threadline-* ones.")
def uninstall(requirements: tuple[str, ...], allow_any: bool) -> None:
    """Uninstall plugins from the Python environment threadline runs in; then list the plugins."""
    _check(requirements, allow_any, "uninstall")
    names = [distribution(requirement) or requirement for requirement in requirements]
    if KERNEL in map(normalized, names):
        raise click.UsageError("threadline cannot uninstall itself: use pip (or uv) to uninstall threadline")
    _run("uninstall", names)
    _list_plugins()
