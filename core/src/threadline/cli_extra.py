"""The commands a heavy user expects beside chat and sessions, each in a module of its own
(``keys``, ``models``, ``install`` and ``uninstall``, ``completion``), and the examples every
command's ``--help`` ends with (:mod:`threadline.examples`)."""

from __future__ import annotations

import click

from threadline.completion import completion
from threadline.examples import add_examples
from threadline.install_cli import install, uninstall
from threadline.keys_cli import keys
from threadline.models_cli import models


def add_commands(cli: click.Group) -> None:
    """Add the commands to ``cli``, then the examples to every command's help."""
    for command in (keys, models, install, uninstall, completion):
        cli.add_command(command)
    add_examples(cli)
