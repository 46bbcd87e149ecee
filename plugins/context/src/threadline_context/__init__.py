"""threadline-context: keeps what a turn sends inside the model's context window.

This module only registers the middleware ``context`` and its config; the counting is in
:mod:`threadline_context.tokens`, the known windows in :mod:`threadline_context.windows`, the
trimming in :mod:`threadline_context.middleware`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from attrs import field, frozen, validators

from threadline.plugin import finite, hookimpl

if TYPE_CHECKING:
    from threadline.plugin import Register
    from threadline_context.middleware import ContextMiddleware

__all__ = ["ContextConfig", "make_middleware"]


def _windows(_instance: object, _attribute: object, windows: dict[str, int]) -> None:
    for pattern, tokens in windows.items():
        if not pattern or tokens < 1:
            raise ValueError(
                f"windows.{pattern!r} = {tokens}: name a model (a * matches any text) and give it 1 or more"
            )


@frozen
class ContextConfig:
    """``[middleware.context]``.

    :param strategy: ``"trim"``: the oldest whole turns are left out of what is sent (the
        stored history keeps them).
    :param max_tokens: what a call may send, in tokens (history and system prompt). Unset:
        ``window_fraction`` of the model's context window, less the reply's ``max_tokens``.
    :param window_fraction: the share of a model's window a call may fill when
        ``max_tokens`` is unset (0 to 1).
    :param windows: context windows by model name, ``*`` matching any text, over the ones
        the plugin knows (``{"llama3.1*" = 131072}``). A model with no window known and no
        ``max_tokens`` is sent its history whole.
    :param keep_first: how many of the first turns are always sent (the system prompt
        always is).
    :param keep_last: how many of the last turns are always sent; the turn being answered
        is one of them.
    """

    strategy: Literal["trim"] = "trim"
    max_tokens: int | None = field(default=None, validator=validators.optional(validators.ge(1)))
    window_fraction: float = field(default=0.75, validator=[finite, validators.gt(0), validators.le(1)])
    windows: dict[str, int] = field(factory=dict, validator=_windows)
    keep_first: int = field(default=0, validator=validators.ge(0))
    keep_last: int = field(default=1, validator=validators.ge(1))


def make_middleware(config: ContextConfig) -> ContextMiddleware:
    from threadline_context.middleware import ContextMiddleware

    return ContextMiddleware(config)


@hookimpl
def threadline_register_middleware(register: Register) -> None:
    register("context", make_middleware, config=ContextConfig)
