"""Shell completion: ``threadline completion bash|zsh|fish`` prints the script click makes for
the shell, and session ids complete from the sessions of the config's storage."""

from __future__ import annotations

from typing import Final

import click
from click.shell_completion import CompletionItem, get_completion_class

#: the environment variable click's completion scripts call the program with
COMPLETE_VAR: Final = "_THREADLINE_COMPLETE"
SHELLS: Final = ("bash", "zsh", "fish")
#: the most sessions a completion offers: the most recently active
MOST: Final = 200


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script of SHELL: commands, options, and session ids from the
    sessions of the config's storage. Load it from the shell's startup file (see the
    examples), or evaluate it there: eval "$(_THREADLINE_COMPLETE=bash_source threadline)"."""
    from threadline.cli import cli

    complete = get_completion_class(shell)
    assert complete is not None  # one of SHELLS, which click has
    click.echo(complete(cli, {}, "threadline", COMPLETE_VAR).source())


def session_ids(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """The ids of the most recently active sessions that start with ``incomplete``, each with
    its title; none when the storage cannot be read (a completion never fails loudly)."""
    import asyncio

    from threadline.cli import _State

    state = ctx.find_object(_State)
    if state is None:
        return []

    async def ids() -> list[CompletionItem]:
        async with state.manager(notice=False) as manager:
            page = await manager.list_sessions(limit=MOST)
            return [
                CompletionItem(record.id, help=record.title or None)
                for record in page.items
                if record.id.startswith(incomplete)
            ]

    try:
        return asyncio.run(ids())
    except Exception:  # no config yet, a storage down: nothing to offer
        return []
