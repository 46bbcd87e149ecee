"""What the ``threadline`` group does with a command line that names no command: a question
given with ``prompt``'s options first (``threadline -c "more please"``, ``threadline -m gpt-4.1
"question"``) goes to ``prompt``, as a question with a space in it already does."""

from __future__ import annotations

import click

#: the command that options the group does not know are taken for
PROMPT = "prompt"


def with_prompt(group: click.Group, args: list[str]) -> list[str]:
    """``args`` with ``prompt`` put before the first argument that is an option of ``prompt``'s
    and not of the group's own (``--config``, ``--version``, ``--help``), when no command came
    before it; else ``args`` as they are."""
    command = group.commands.get(PROMPT)
    if command is None:
        return args
    own = _options(group)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return args  # a command, a question, or the end of the options: click decides
        name = arg.split("=", 1)[0]
        if name in own:
            takes_value = own[name] and "=" not in arg
            index += 2 if takes_value else 1
            continue
        if _is_option_of(command, arg):
            return [*args[:index], PROMPT, *args[index:]]
        return args  # an option nobody has: click's own error names it
    return args


def _options(command: click.Command) -> dict[str, bool]:
    """The option names of ``command`` (``--help`` too), each with whether it takes a value."""
    names: dict[str, bool] = {name: False for name in command.get_help_option_names(click.Context(command))}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                names[name] = not param.is_flag and not param.count
    return names


def _is_option_of(command: click.Command, arg: str) -> bool:
    """Whether ``arg`` is one of ``command``'s options: ``--name``, ``--name=value``, ``-x``,
    or a short option with its value or more short flags after it (``-mgpt-4.1``, ``-cs``)."""
    names = _options(command)
    if arg.split("=", 1)[0] in names:
        return True
    return not arg.startswith("--") and arg[:2] in names
