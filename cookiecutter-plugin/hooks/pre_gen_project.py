"""Refuse a plugin name that would not make a distribution, a module and a config key."""

import re
import sys

NAME = "{{ cookiecutter.plugin_name }}"

if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", NAME):
    sys.exit(
        f"plugin_name {NAME!r} is not a valid name: use lower-case letters and digits, words joined "
        "by single hyphens, starting with a letter (for example: reverse, word-count)"
    )
