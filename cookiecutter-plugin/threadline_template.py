"""A Jinja extension for this template: where the threadline kernel is, for the generated
plugin's tox.ini, README and CI, until threadline is published on PyPI.

cookiecutter loads it by name from ``_extensions`` in cookiecutter.json; it is not copied into
the plugin it makes.
"""

from __future__ import annotations

import os
from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

#: the environment variable that names the kernel: here, and in the generated tox.ini
VARIABLE = "THREADLINE_KERNEL"


def threadline_kernel() -> str:
    """The default of the ``threadline_kernel`` question: ``THREADLINE_KERNEL`` if it is set,
    else the ``core/`` directory of the threadline checkout this template sits in, else ``""``
    (the kernel comes from PyPI)."""
    if os.environ.get(VARIABLE):
        return os.environ[VARIABLE]
    core = Path(__file__).resolve().parent.parent / "core"
    return str(core) if (core / "src" / "threadline" / "__init__.py").is_file() else ""


class ThreadlineKernel(Extension):
    """Gives templates ``threadline_kernel()``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["threadline_kernel"] = threadline_kernel
