"""The ``memory`` entry point: registers the in-memory storage. Discovery imports this module
at start-up, so it stays light; the storage's module loads when the storage is registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.hookspecs import hookimpl

if TYPE_CHECKING:
    from threadline.registry import Register


@hookimpl
def threadline_register_storage(register: Register) -> None:
    from threadline.builtins.memory import MemoryStorage

    register("memory", MemoryStorage)
