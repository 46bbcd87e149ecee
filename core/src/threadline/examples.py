"""The examples each command's ``--help`` ends with, by the command's words (``()`` is
``threadline`` itself). A command added to the CLI gets a row here; a test runs ``--help`` of
every command and looks for them."""

from __future__ import annotations

from typing import Final

import click

EXAMPLES: Final[dict[tuple[str, ...], tuple[str, ...]]] = {
    (): (
        'threadline "Why is the sky blue?"',
        'threadline -c "And in one sentence?"',
        "threadline chat",
        "threadline --config ./project.toml sessions list",
    ),
    ("chat",): (
        "threadline chat",
        "threadline chat --provider anthropic --model claude-sonnet-4-6",
        "threadline chat --session 4f2a9c0e1b7d4e6a8c3b5d7f9e1a2c4b",
        "threadline chat --template support",
    ),
    ("prompt",): (
        'threadline prompt "Why is the sky blue?"',
        'threadline -m gpt-4.1 "Name three rivers"',
        'git diff | threadline prompt -s "You review code." "Review this"',
        'threadline prompt --no-log --json "What is 2 + 2?"',
        'threadline prompt -c "And in one sentence?"',
        'threadline prompt -a photo.jpg "What is in this picture?"',
        'threadline prompt -o temperature 0.2 -o max_tokens 200 "Name three rivers"',
        "threadline prompt --schema 'name, height_m int' \"The tallest mountain?\"",
    ),
    ("sessions",): ("threadline sessions list", "threadline sessions show ID"),
    ("sessions", "list"): ("threadline sessions list --limit 5", "threadline sessions list --status archived --json"),
    ("sessions", "search"): (
        'threadline sessions search "postgres timeout"',
        "threadline sessions search invoice --since 7d --json",
    ),
    ("templates",): (
        "threadline templates list",
        'threadline templates save support --system "You are a support agent."',
    ),
    ("templates", "save"): (
        'threadline templates save support --provider anthropic --system "You are a support agent."',
        "threadline templates save reviewer --from-session ID",
    ),
    ("templates", "list"): ("threadline templates list",),
    ("templates", "show"): ("threadline templates show support",),
    ("templates", "edit"): ("threadline templates edit support",),
    ("templates", "remove"): ("threadline templates remove support",),
    ("aliases",): ("threadline aliases set fast gpt-4.1-mini", "threadline aliases list"),
    ("aliases", "set"): (
        "threadline aliases set fast gpt-4.1-mini",
        "threadline aliases set smart claude-opus-4-6 --provider anthropic",
    ),
    ("aliases", "list"): ("threadline aliases list",),
    ("aliases", "remove"): ("threadline aliases remove fast",),
    ("sessions", "show"): ("threadline sessions show ID", "threadline sessions show ID --json > session.jsonl"),
    ("sessions", "edit"): (
        'threadline sessions edit ID 3 "What about Lisbon?"',
        "threadline sessions edit ID 3 --remove",
    ),
    ("sessions", "undo"): ("threadline sessions undo ID",),
    ("sessions", "revisions"): ("threadline sessions revisions ID", "threadline sessions revisions ID --json"),
    ("sessions", "archive"): ("threadline sessions archive ID",),
    ("sessions", "delete"): ("threadline sessions delete ID", "threadline sessions delete ID --yes"),
    ("sessions", "export"): (
        "threadline sessions export -o sessions.jsonl",
        "threadline sessions export --all-tenants",
    ),
    ("sessions", "import"): ("threadline sessions import sessions.jsonl",),
    ("sessions", "backup"): ("threadline sessions backup ~/threadline-backup.gz",),
    ("sessions", "restore"): ("threadline sessions restore ~/threadline-backup.gz",),
    ("sessions", "vacuum"): ("threadline sessions vacuum",),
    ("migrate",): (
        "threadline migrate --from old.toml --to new.toml",
        "threadline migrate --from-backend sqlite --from-setting path=chats.db --to new.toml",
    ),
    ("plugins",): ("threadline plugins", "threadline plugins --json"),
    ("config",): ("threadline config check", "threadline config path"),
    ("config", "check"): ("threadline config check", "threadline --config ./project.toml config check"),
    ("config", "path"): ("threadline config path", '$EDITOR "$(threadline config path)"'),
    ("keys",): ("threadline keys set openai", "threadline keys list"),
    ("keys", "set"): ("threadline keys set openai", "pass show openai | threadline keys set openai"),
    ("keys", "get"): (
        "threadline keys get openai",
        'curl -H "Authorization: Bearer $(threadline keys get openai)" ...',
    ),
    ("keys", "list"): ("threadline keys list",),
    ("keys", "remove"): ("threadline keys remove openai",),
    ("keys", "path"): ("threadline keys path", 'ls -l "$(threadline keys path)"'),
    ("models",): ("threadline models", "threadline models --provider anthropic --json"),
    ("models", "default"): (
        "threadline models default",
        "threadline models default openai/gpt-4.1",
        "threadline models default claude-sonnet-4-6",
        "threadline models default --unset",
    ),
    ("install",): (
        "threadline install threadline-openai",
        "threadline install -U threadline-anthropic threadline-gemini",
        "threadline install -e ./threadline-myplugin",
    ),
    ("uninstall",): ("threadline uninstall threadline-gemini",),
    ("completion",): (
        "threadline completion bash >> ~/.bashrc",
        "threadline completion zsh > ~/.zfunc/_threadline",
        "threadline completion fish > ~/.config/fish/completions/threadline.fish",
    ),
}


def add_examples(cli: click.Group) -> None:
    """End the help of ``cli`` and each of its commands with their examples, when they have
    some here and no epilog of their own."""
    for path, command in _commands(cli):
        lines = EXAMPLES.get(path)
        if lines and not command.epilog:
            command.epilog = examples_epilog(*lines)


def examples_epilog(*lines: str) -> str:
    """A command's ``epilog`` that ends its ``--help`` with these example command lines, as
    every threadline command's does: for a plugin's commands,
    ``@click.command(epilog=examples_epilog("threadline usage --since 2026-12-01"))``."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = [(path, group)] if not path else []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found
