"""One-command set-up for threadline: `python tasks.py chat` or `python tasks.py test`.

Needs only Python 3.11+ and pip. Creates .venv/ in this folder on first use, installs what
the command needs into it, then runs the command. Run `python tasks.py --help` for more.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
TOOLS = ["uv>=0.4", "tox>=4.20", "tox-uv>=1.11"]


def run(*command: str | os.PathLike[str]) -> None:
    result = subprocess.run([str(part) for part in command], cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if not (BIN / "python").exists():
        print(f"creating {VENV} ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip", *TOOLS)


def packages() -> list[str]:
    """The kernel and every plugin in this checkout, installed editable."""
    plugins = sorted(str(p.parent) for p in (ROOT / "plugins").glob("*/pyproject.toml"))
    return ["-e", str(ROOT / "core"), *(arg for path in plugins for arg in ("-e", path))]


def install() -> None:
    ensure_venv()
    run(BIN / "uv", "pip", "install", "--quiet", "--python", BIN / "python", *packages())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("chat", help="chat in the terminal (extra arguments go to `threadline chat`)")
    commands.add_parser(
        "test", help="run every test env: each package alone, lint, types, docs (extra arguments go to tox)"
    )
    commands.add_parser("install", help="install threadline and its plugins into .venv/ (editable)")
    args, rest = parser.parse_known_args()
    if args.command == "test":
        ensure_venv()
        run(BIN / "tox", "run", "--recreate", *rest)  # envs install the packages by path: rebuild them
    else:
        install()
        if args.command == "chat":
            os.execv(BIN / "threadline", [str(BIN / "threadline"), "chat", *rest])


if __name__ == "__main__":
    main()
