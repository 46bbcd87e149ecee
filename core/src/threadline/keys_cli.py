"""``threadline keys``: API keys kept in the key file (:mod:`threadline.keys`), for the providers
whose key is set neither in the config file nor in the environment."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from threadline.keys import check_name, delete_key, keys_path, read_keys, write_key


@click.group()
def keys() -> None:
    """Store API keys in a file only you can read (keys.json in the user config dir).

    A provider takes the key stored under its name when its [providers.NAME] table sets no
    api_key and its environment variable (OPENAI_API_KEY, ...) is not set."""


def _name(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


@keys.command("set")
@click.argument("name", callback=_name)
@click.option(
    "--value",
    metavar="KEY",
    help="The key itself, instead of a prompt or stdin (a warning says why not: shell history, `ps`).",
)
def set_key(name: str, value: str | None) -> None:
    """Store the key of provider NAME (openai, anthropic, gemini, ...), read from a prompt that
    does not show it, or from stdin when it is piped; over any key stored under NAME."""
    if value is not None:
        click.echo("warning: a key given with --value is kept in shell history and shown to `ps`", err=True)
        key = value
    elif sys.stdin.isatty():
        key = click.prompt(f"{name} API key", hide_input=True, err=True)
    else:
        key = sys.stdin.read()
    key = key.strip()
    if not key:
        raise click.UsageError(f"no key given: type it at the prompt, or pipe it in: threadline keys set {name} < FILE")
    if any(character.isspace() for character in key):
        raise click.UsageError("a key is one word, without spaces or line breaks: give the key alone")
    path = keys_path()
    repaired = write_key(name, key, path)
    if repaired:
        click.echo(f"note: others could read {path}; it is now yours alone (mode 0600)", err=True)
    click.echo(f"stored the {name} key in {path}", err=True)
    _say_what_else(name)


def _say_what_else(name: str) -> None:
    """On stderr, after a key is stored: that no installed provider is called ``name``, or
    that a key set elsewhere wins over the key file: the ``api_key`` of ``[providers.NAME]``
    in the config file (one that is only an unset ``${VAR}`` counts as none), or one of the
    provider's environment variables."""
    from threadline.cli import _state
    from threadline.keys import unset_variable
    from threadline.registry import Registry

    state = _state()
    registry = Registry.collect(state.plugin_manager())
    if name not in registry.providers:
        installed = ", ".join(sorted(registry.providers)) or "none"
        click.echo(f"note: no installed provider is named {name!r} (installed: {installed})", err=True)
        return
    api_key = None
    if state.config_path.is_file():
        from threadline.config import Config
        from threadline.errors import ConfigError

        with contextlib.suppress(ConfigError):  # the command that uses the config says what is wrong with it
            api_key = Config.load(state.config_path).providers.get(name, {}).get("api_key")
    if api_key and unset_variable(api_key) is None:
        click.echo(f"note: api_key in [providers.{name}] of {state.config_path} wins over the key file", err=True)
        return
    variables = getattr(registry.providers[name].config, "key_variables", ())
    shadowing = [variable for variable in variables if os.environ.get(variable)]
    if shadowing:
        click.echo(f"note: {shadowing[0]} is set, and wins over the key file", err=True)


@keys.command("get")
@click.argument("name", callback=_name)
def get_key(name: str) -> None:
    """Print the key stored under NAME."""
    path = keys_path()
    stored = read_keys(path)
    if name not in stored:
        names = ", ".join(sorted(stored)) or "none"
        raise click.ClickException(
            f"no key named {name!r} in {path} (stored: {names}); `threadline keys set {name}` stores one"
        )
    click.echo(stored[name])


@keys.command("list")
def list_keys() -> None:
    """List the names of the stored keys, never the keys."""
    path = keys_path()
    names = sorted(read_keys(path))
    for name in names:
        click.echo(name)
    if not names:
        click.echo(f"no keys stored in {path}", err=True)


@keys.command("remove")
@click.argument("name", callback=_name)
def remove_key(name: str) -> None:
    """Remove the key stored under NAME."""
    path = keys_path()
    if not delete_key(name, path):
        names = ", ".join(sorted(read_keys(path))) or "none"
        raise click.ClickException(f"no key named {name!r} in {path} (stored: {names})")
    click.echo(f"removed the {name} key from {path}", err=True)


@keys.command("path")
def path() -> None:
    """Print the path of the key file (which need not exist yet)."""
    click.echo(keys_path())
