"""Refuse a plugin name that would not make a distribution, a module and a config key, and a
kernel path that does not hold the threadline kernel."""

import re
import sys
from pathlib import Path

NAME = "{{ cookiecutter.plugin_name }}"
KERNEL = {{ cookiecutter.threadline_kernel|jsonify }}

if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", NAME):
    sys.exit(
        f"plugin_name {NAME!r} is not a valid name: use lower-case letters and digits, words joined "
        "by single hyphens, starting with a letter (for example: reverse, word-count)"
    )

# A path (not a requirement such as "threadline @ git+https://...") must be the kernel's own
# directory, absolute, as tox and pip read it from wherever they run.
if KERNEL and "://" not in KERNEL and "@" not in KERNEL and not KERNEL.startswith("threadline"):
    kernel = Path(KERNEL)
    if not kernel.is_absolute():
        sys.exit(f"threadline_kernel {KERNEL!r} is not an absolute path: give the full path of core/")
    if (kernel / "core" / "pyproject.toml").is_file():
        sys.exit(f"threadline_kernel {KERNEL!r} is a threadline checkout: give its kernel, {kernel / 'core'}")
    if not (kernel / "src" / "threadline" / "__init__.py").is_file():
        sys.exit(
            f"threadline_kernel {KERNEL!r} does not hold the threadline kernel: give the core/ directory "
            "of a threadline checkout, or leave it empty to install threadline from PyPI"
        )
