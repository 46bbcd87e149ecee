"""The ``echo`` entry point: registers the offline echo provider. Discovery imports this module
at start-up, so it stays light; the provider's module loads when the provider is registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.hookspecs import hookimpl

if TYPE_CHECKING:
    from threadline.registry import Register


@hookimpl
def threadline_register_providers(register: Register) -> None:
    from threadline.builtins.echo import EchoConfig, EchoProvider

    register("echo", EchoProvider, config=EchoConfig)
