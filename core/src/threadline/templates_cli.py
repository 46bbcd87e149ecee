"""``threadline templates`` and ``threadline aliases``: templates and model aliases kept as
files in the user config dir (:mod:`threadline.user_files`), beside the config file's own
``[templates.NAME]`` and ``[aliases]``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from threadline.cli import _SessionId, _state, _Text, _with_manager
from threadline.errors import ConfigError

if TYPE_CHECKING:
    from threadline.config import Template
    from threadline.manager import SessionManager

TEXT = _Text()
SESSION_ID = _SessionId()


@click.group()
def templates() -> None:
    """Save, list, show and edit templates: the provider, model, system prompt and tools a new
    session starts from (`threadline chat --template NAME`, `prompt -t NAME`).

    A saved template is a file of its own, templates/NAME.toml in the user config dir; the
    config file's [templates.NAME] are listed with them. A name both have is an error."""


@templates.command("save")
@click.argument("name", type=TEXT)
@click.option("--system", "system_prompt", metavar="TEXT", type=TEXT, help="The system prompt.")
@click.option("--provider", metavar="NAME", type=TEXT, help="The provider (see `threadline plugins`).")
@click.option("--model", metavar="NAME", type=TEXT, help="The model (an alias too).")
@click.option("--tool", "tools", metavar="NAME", type=TEXT, multiple=True, help="A registered tool; repeat for each.")
@click.option(
    "--from-session",
    metavar="ID",
    type=SESSION_ID,
    help="Start from this session's provider, model, system prompt and tools (the other options change them).",
)
@click.option("--replace", is_flag=True, help="Write over a saved template of that name.")
@_with_manager
async def save(
    manager: SessionManager,
    name: str,
    system_prompt: str | None,
    provider: str | None,
    model: str | None,
    tools: tuple[str, ...],
    from_session: str | None,
    replace: bool,
) -> None:
    """Save a template NAME from the options, or from a session with --from-session."""
    from threadline.config import Template
    from threadline.user_files import save_template, template_path

    path = template_path(name)
    if name in manager.config.templates and not path.exists():
        raise click.UsageError(f"template {name!r} is [templates.{name}] in {manager.config.path}: change it there")
    if path.exists() and not replace:
        raise click.UsageError(_saved_already(name, path))
    base = Template()
    if from_session is not None:
        record = (await manager.get_session(from_session)).record
        base = Template(
            provider=record.provider, model=record.model, system_prompt=record.system_prompt, tools=record.tools
        )
    elif not (system_prompt or provider or model or tools):
        raise click.UsageError("say what the template holds: --system, --provider, --model, --tool or --from-session")
    template = Template(
        provider=provider or base.provider,
        model=model or base.model,
        system_prompt=system_prompt if system_prompt is not None else base.system_prompt,
        tools=tools or base.tools,
    )
    try:
        _check(manager, template)
    except ConfigError as exc:
        raise click.UsageError(f"not saved: {exc.reason}") from None
    try:
        save_template(name, template, replace=replace)
    except FileExistsError:  # saved by another process since the check above
        raise click.UsageError(_saved_already(name, path)) from None
    click.echo(f"saved template {name} to {path}")


def _saved_already(name: str, path: Path) -> str:
    return f"template {name!r} is saved already ({path}): add --replace to write over it"


def _check(manager: SessionManager, template: Template) -> None:
    """What the config loader would refuse in ``template`` (an uninstalled provider, a tool
    nobody registered), refused before it is written."""
    manager._check_provider(template.provider)
    missing = [tool for tool in template.tools if tool not in manager.registry.tools]
    if missing:
        known = ", ".join(sorted(manager.registry.tools)) or "none"
        raise ConfigError(f"no tool named {missing[0]!r}; registered tools: {known}", key="tools")


@templates.command("list")
def list_templates() -> None:
    """List templates: name, provider/model, the start of the system prompt, and where it is
    kept (a file, or the config file)."""
    from threadline.user_files import template_files

    config = _state().config()
    saved = template_files()
    for name, template in sorted(config.templates.items()):
        where = str(saved[name]) if name in saved else f"[templates.{name}] in {config.path}"
        model = "/".join(part for part in (template.provider, template.model) if part) or "(defaults)"
        prompt = (template.system_prompt or "").replace("\n", " ")
        click.echo(f"{name}  {model}  {prompt[:50] + ('…' if len(prompt) > 50 else '')}  ({where})")
    if not config.templates:
        click.echo("no templates: `threadline templates save NAME --system ...` saves one", err=True)


@templates.command("show")
@click.argument("name", type=TEXT)
def show(name: str) -> None:
    """Show template NAME as TOML, and where it is kept."""
    from threadline.user_files import template_files, template_lines

    config = _state().config()
    template = _known(config.templates, name)
    saved = template_files()
    click.echo(f"# {saved.get(name, f'[templates.{name}] in {config.path}')}")
    for line in template_lines(template):
        click.echo(line)


def _known(templates: Mapping[str, Template], name: str) -> Template:
    """Template ``name``, or a usage error naming those there are."""
    if name not in templates:
        known = ", ".join(sorted(templates)) or "none yet"
        raise click.UsageError(f"no template named {name!r}; templates: {known}")
    template: Template = templates[name]
    return template


@templates.command("edit")
@click.argument("name", type=TEXT)
@_with_manager
async def edit(manager: SessionManager, name: str) -> None:
    """Edit saved template NAME in $EDITOR. What is saved is checked first: an edit that is not
    a valid template is refused, with what is wrong, and the file is kept as it was."""
    from threadline.config import Template
    from threadline.user_files import check_template_text, save_template_text, template_path

    path = template_path(name)
    if not path.is_file():
        if name in manager.config.templates:
            raise click.UsageError(f"template {name!r} is [templates.{name}] in {manager.config.path}: edit it there")
        _known(manager.config.templates, name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        mend = f"`threadline templates remove {name}` removes it"
        raise click.ClickException(f"cannot read {path} ({exc}): {mend}") from None
    edited = click.edit(text, extension=".toml", require_save=True)
    if edited is None:
        click.echo(f"not changed: {path}")
        return
    try:
        changed = check_template_text(edited, path)
        _check(manager, changed)
    except ConfigError as exc:
        raise click.ClickException(f"the edit was not saved, the file is as it was: {exc}") from None
    if changed == Template():
        remove = f"`threadline templates remove {name}`"
        raise click.ClickException(f"the edit left the template empty; not saved ({path} is as it was); {remove}")
    save_template_text(path, edited)
    click.echo(f"saved {path}")


@templates.command("remove")
@click.argument("name", type=TEXT)
def remove(name: str) -> None:
    """Remove saved template NAME (its file), even one that cannot be read."""
    from threadline.user_files import remove_template

    if not remove_template(name):
        config = _state().config()
        if name in config.templates:
            raise click.UsageError(f"template {name!r} is [templates.{name}] in {config.path}: remove it there")
        _known(config.templates, name)
    click.echo(f"removed template {name}")


# -- aliases ------------------------------------------------------------------


@click.group()
def aliases() -> None:
    """Other names for models: `threadline aliases set fast gpt-4.1-mini`, then `-m fast`,
    `create_session(model="fast")` or a template's model = "fast" mean that model. Kept in
    aliases.toml in the user config dir, with the config file's [aliases]."""


@aliases.command("set")
@click.argument("name", type=TEXT)
@click.argument("model", type=TEXT)
@click.option("--provider", metavar="NAME", type=TEXT, help="The provider that serves it (see `threadline plugins`).")
@_with_manager
async def set_(manager: SessionManager, name: str, model: str, provider: str | None) -> None:
    """Make NAME stand for MODEL (of --provider when given)."""
    from threadline.config import Alias
    from threadline.user_files import check_name, set_alias, user_aliases

    check_name(name, "alias")
    if name in manager.config.aliases and name not in user_aliases():
        raise click.UsageError(f"alias {name!r} is in [aliases] of {manager.config.path}: change it there")
    if model in manager.config.aliases:
        raise click.UsageError(f"{model!r} is an alias itself: give the model it stands for")
    if not model.strip():
        raise click.UsageError("MODEL cannot be empty")
    manager._check_provider(provider, None)
    path = set_alias(name, Alias(model, provider))
    click.echo(f"{name} = {provider + '/' if provider else ''}{model} ({path})")
    _say_what_it_hides(manager, name)


def _say_what_it_hides(manager: SessionManager, name: str) -> None:
    """A note when the alias has the name of a model a provider knows: that model is now
    asked for by ``provider/model`` only."""
    from threadline.models_cli import known_models

    hidden = [provider for provider in sorted(manager.registry.providers) if name in known_models(manager, provider)]
    if hidden:
        click.echo(
            f"note: {name!r} is also a model of {', '.join(hidden)}; the alias comes first wherever a model is named",
            err=True,
        )


@aliases.command("list")
def list_aliases() -> None:
    """List aliases: name, [provider/]model, and where each is kept."""
    from threadline.user_files import aliases_file, describe_alias, user_aliases

    config = _state().config()
    saved = user_aliases()
    for name, alias in sorted(config.aliases.items()):
        where = aliases_file() if name in saved else f"[aliases] in {config.path}"
        click.echo(f"{name}  {describe_alias(alias)}  ({where})")
    if not config.aliases:
        click.echo("no aliases: `threadline aliases set NAME MODEL` sets one", err=True)


@aliases.command("remove")
@click.argument("name", type=TEXT)
def remove_alias_command(name: str) -> None:
    """Remove alias NAME."""
    from threadline.user_files import remove_alias

    config = _state().config()
    if not remove_alias(name):
        if name in config.aliases:
            raise click.UsageError(f"alias {name!r} is in [aliases] of {config.path}: remove it there")
        known = ", ".join(sorted(config.aliases)) or "none"
        raise click.UsageError(f"no alias named {name!r}; aliases: {known}")
    click.echo(f"removed alias {name}")
