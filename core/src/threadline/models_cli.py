"""``threadline models``: the models of each installed provider, from its API when it can be
asked (the provider's optional ``list_models()``), else the ones its plugin knows of (its
config class's ``known_models``); and ``threadline models default``, which shows or sets the
model of new sessions (``[defaults] provider`` and ``model`` of the config file in use)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

import click
from attrs import frozen

if TYPE_CHECKING:
    from threadline.cli import _State
    from threadline.manager import SessionManager

#: seconds a provider's API has to list its models before the known ones are shown instead
LIST_TIMEOUT: Final = 15.0


@frozen
class Listing:
    """One provider's models, where they came from, and why not from its API (``note``)."""

    provider: str
    models: tuple[str, ...]
    provider_default: str | None
    from_api: bool
    note: str | None = None


@click.group(invoke_without_command=True)
@click.option("--provider", metavar="NAME", help="Only this provider's models [default: every installed provider's].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
@click.pass_context
def models(ctx: click.Context, provider: str | None, as_json: bool) -> None:
    """List the models of each installed provider, as provider/model: from the provider's API
    when it can be asked, else the ones its plugin knows of (a note on stderr says why). The
    model new sessions get is marked (default), each provider's own default model
    (PROVIDER's default)."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from threadline.cli import _state

    state = _state()
    listings, default = asyncio.run(_list(state, provider))
    for listing in listings:
        if listing.note:
            click.echo(
                f"note: {listing.provider}: the models its plugin knows of, not its API's: {listing.note}", err=True
            )
        for model in listing.models:
            is_default = (listing.provider, model) == default
            if as_json:
                click.echo(json.dumps({
                    "provider": listing.provider, "model": model, "default": is_default,
                    "provider_default": model == listing.provider_default,
                    "listed_by": "api" if listing.from_api else "plugin",
                }))  # fmt: skip
                continue
            marks = [*(["default"] if is_default else []), *(
                [f"{listing.provider}'s default"] if model == listing.provider_default else []
            )]  # fmt: skip
            click.echo(f"{listing.provider}/{model}" + (f"  ({', '.join(marks)})" if marks else ""))


async def _list(state: _State, only: str | None) -> tuple[list[Listing], tuple[str, str | None]]:
    import asyncio

    manager = state.manager(notice=False)
    if only is not None and only not in manager.registry.providers:
        installed = ", ".join(sorted(manager.registry.providers))
        raise click.BadParameter(
            f"no provider plugin named {only!r}; installed: {installed}", param_hint="'--provider'"
        )
    names = [only] if only is not None else sorted(manager.registry.providers)
    default = default_model(manager)  # before the providers are made, which leaves their settings behind
    async with manager:
        listings = await asyncio.gather(*(_listing(manager, name, default) for name in names))
    return list(listings), default


def default_model(manager: SessionManager) -> tuple[str, str | None]:
    """The provider and model of a new session that names neither: ``[defaults]``, else the
    default provider's ``default_model``."""
    from threadline.errors import ConfigError

    defaults = manager.config.defaults
    provider = manager.default_provider
    if defaults.provider == provider and defaults.model:
        try:
            return provider, manager.resolve_model(provider, defaults.model)[1]  # an alias: its model
        except ConfigError:  # an alias of another provider's model: new sessions will say so
            return provider, defaults.model
    return provider, manager.provider_default_model(provider)


def known_models(manager: SessionManager, name: str) -> tuple[str, ...]:
    """What provider ``name``'s plugin knows of: its ``known_models``, with its default model."""
    known: tuple[str, ...] = getattr(manager.registry.providers[name].config, "known_models", ())
    default = _provider_default(manager, name)
    return known if default is None or default in known else (default, *known)


def _provider_default(manager: SessionManager, name: str) -> str | None:
    from threadline.errors import ThreadlineError

    try:
        return manager.provider_default_model(name)
    except ThreadlineError:  # its table names a variable that is not set: the listing says so
        return None


async def _listing(manager: SessionManager, name: str, default_of_all: tuple[str, str | None]) -> Listing:
    """Provider ``name``'s models: its API's, else its plugin's, with its own default model and
    the default model of new sessions when it is theirs."""
    import asyncio

    from threadline.errors import ThreadlineError

    default = _provider_default(manager, name)
    known = _with(known_models(manager, name), default_of_all[1] if default_of_all[0] == name else None)
    try:
        manager.check_provider(name)
        lister = getattr(manager.provider(name), "list_models", None)
        listed = None if lister is None else await asyncio.wait_for(lister(), LIST_TIMEOUT)
    except ThreadlineError as exc:
        return Listing(name, known, default, from_api=False, note=str(exc).removeprefix(f"{name}: "))
    except TimeoutError:
        return Listing(name, known, default, from_api=False, note=f"its API gave no list within {LIST_TIMEOUT:g}s")
    if listed is None:
        return Listing(name, known, default, from_api=False)  # its plugin cannot ask: nothing to note
    listed = _with(tuple(listed), default)
    return Listing(
        name, _with(listed, default_of_all[1] if default_of_all[0] == name else None), default, from_api=True
    )


def _with(models: tuple[str, ...], model: str | None) -> tuple[str, ...]:
    """``models``, and ``model`` after them when it is not among them."""
    return models if model is None or model in models else (*models, model)


# ---------------------------------------------------------------------------
# models default
# ---------------------------------------------------------------------------


@models.command("default")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Take [defaults] provider and model out of the config file.")
def default(name: str | None, unset: bool) -> None:
    """Show the model new sessions get, or make it NAME: PROVIDER/MODEL, a PROVIDER (its own
    default model), a MODEL that one installed provider's plugin knows of, or a model alias
    (`threadline aliases`; the model it stands for now is written). It is written to
    [defaults] provider and model of the config file in use, the rest of the file kept as it
    was (`threadline config path` says which file)."""
    from threadline.cli import _state

    state = _state()
    if name is not None and unset:
        raise click.UsageError("give NAME to set the default, or --unset to take it out, not both")
    manager = state.manager(notice=False)  # writes the user's config on first run, as every command does
    if name is None and not unset:
        provider, model = default_model(manager)
        click.echo(f"{provider}/{model}" if model else provider)
        click.echo(f"({_why(manager, state)})", err=True)
        return
    from threadline.config_edit import set_defaults

    if unset:
        set_defaults(state.config_path, {"provider": None, "model": None})
        click.echo(f"took [defaults] provider and model out of {state.config_path}", err=True)
        return
    chosen, chosen_model = _parse(manager, name or "")
    set_defaults(state.config_path, {"provider": chosen, "model": chosen_model})
    shown = f"{chosen}/{chosen_model}" if chosen_model else f"{chosen} (its default model)"
    if (name or "").rpartition("/")[2] in manager.config.aliases:
        shown += f" (what alias {name} stands for now)"
    click.echo(f"default: {shown}, in [defaults] of {state.config_path}", err=True)


def _why(manager: SessionManager, state: _State) -> str:
    defaults = manager.config.defaults
    where = f"[defaults] in {state.config_path}"
    if defaults.provider and defaults.model:
        return where
    if defaults.provider:
        return f"{where}, with the provider's default_model"
    return (
        f"no [defaults] provider in {state.config_path}: the first provider with its API key set, "
        "else echo, and its default_model"
    )


def _parse(manager: SessionManager, name: str) -> tuple[str, str | None]:
    """``name`` as a provider and a model (``None``: the provider's own default model); a model
    alias as the provider and model it stands for."""
    from threadline.errors import ConfigError

    providers = manager.registry.providers
    head, slash, rest = name.partition("/")
    if slash and head in providers:
        if not rest:
            raise click.BadParameter(f"{name!r} names no model after the '/'", param_hint="'NAME'")
        try:
            return head, manager.resolve_model(head, rest)[1] or rest
        except ConfigError as exc:
            raise click.BadParameter(exc.reason, param_hint="'NAME'") from None
    if name in providers:
        return name, None
    alias = manager.config.aliases.get(name)
    if alias is not None and alias.provider is not None:
        if alias.provider not in providers:
            raise click.BadParameter(
                f"alias {name!r} is {alias.provider}/{alias.model}, and no provider plugin {alias.provider!r} "
                f"is installed (installed: {', '.join(sorted(providers))})",
                param_hint="'NAME'",
            )
        return alias.provider, alias.model
    if alias is not None:  # a model of no provider in particular: the one that knows of it
        name = alias.model
    knowing = [provider for provider in sorted(providers) if name in known_models(manager, provider)]
    if len(knowing) == 1:
        return knowing[0], name
    if knowing:
        choices = " or ".join(f"{provider}/{name}" for provider in knowing)
        raise click.BadParameter(
            f"{name!r} is a model of {', '.join(knowing)}; name one: {choices}", param_hint="'NAME'"
        )
    installed = ", ".join(sorted(providers))
    raise click.BadParameter(
        f"no installed provider knows of a model {name!r} (`threadline models` lists them); for a model its "
        f"plugin does not know of, name the provider too: PROVIDER/{name} (installed: {installed})",
        param_hint="'NAME'",
    )
