"""threadline-context: keeps what a turn sends inside the model's context window.

This module only registers the middleware ``context`` and its config; the estimate is in
:mod:`threadline_context.tokens`, the turns and their trimming in
:mod:`threadline_context.turns`, summaries in :mod:`threadline_context.summary`, and the
middleware, which counts each call and keeps it inside its budget, in
:mod:`threadline_context.middleware`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

from attrs import field, frozen, validators

from threadline.plugin import ConfigError, critical, finite, hookimpl

if TYPE_CHECKING:
    from threadline import SessionManager
    from threadline.plugin import Register
    from threadline_context.middleware import ContextMiddleware

__all__ = ["ContextConfig", "make_middleware"]


SUMMARY_PROMPT: Final = (
    "Summarise the conversation below so that the assistant can carry on from your summary "
    "alone. Keep every fact, name, number, decision, preference and open question, and what "
    "the user is trying to do; leave out greetings and repetition. Write short notes in the "
    "conversation's language, and nothing else."
)


@frozen
class ContextConfig:
    """``[middleware.context]``.

    :param strategy: ``"trim"``: the oldest whole turns are left out of what is sent (the
        stored history keeps them). ``"summarize"``: the turns between the first
        ``keep_first`` and the last ``keep_last`` are summarised by a model, and the summary
        is stored in their place (they are kept as a revision); trimmed when the summary
        fails or is not enough.
    :param max_tokens: what a call may send, in tokens (history, system prompt and tools).
        Unset: ``window_fraction`` of the model's context window (the provider's
        ``Capabilities.max_context``), less the reply's ``max_tokens``.
    :param window_fraction: the share of a model's window a call may fill when
        ``max_tokens`` is unset (0 to 1). A model whose window is not known, with
        ``max_tokens`` unset, is sent its history whole.
    :param keep_first: how many of the first turns are always sent (the system prompt
        always is).
    :param keep_last: how many of the last turns are always sent; the turn being answered
        is one of them.
    :param count: ``"provider"``: a call the estimate puts over the budget is counted by the
        provider's own API where it has one (Anthropic, Gemini, OpenAI's Responses API, echo); ``"estimate"``:
        never.
    :param summary_provider: the provider that summarises; unset: the call's own.
    :param summary_model: its model; unset: the call's model (the provider's default when
        ``summary_provider`` is another).
    :param summary_max_tokens: the most a summary may take.
    :param summary_prompt: the instructions the summarizer is given.
    """

    strategy: Literal["trim", "summarize"] = "trim"
    max_tokens: int | None = field(default=None, validator=validators.optional(validators.ge(1)))
    window_fraction: float = field(default=0.75, validator=[finite, validators.gt(0), validators.le(1)])
    keep_first: int = field(default=0, validator=validators.ge(0))
    keep_last: int = field(default=1, validator=validators.ge(1))
    count: Literal["provider", "estimate"] = "provider"
    summary_provider: str | None = None
    summary_model: str | None = None
    summary_max_tokens: int = field(default=1_000, validator=validators.ge(1))
    summary_prompt: str = field(default=SUMMARY_PROMPT, validator=validators.min_len(1))


def make_middleware(config: ContextConfig) -> ContextMiddleware:
    from threadline_context.middleware import ContextMiddleware

    return ContextMiddleware(config)


@hookimpl
def threadline_register_middleware(register: Register) -> None:
    register("context", make_middleware, config=ContextConfig)


@hookimpl
@critical
def threadline_startup(manager: SessionManager) -> None:
    """A ``summary_provider`` that is not installed is an error as the manager opens, not at
    the first summary. (One that has no API key is found by its first call, as any provider
    is outside ``threadline chat``.)"""
    settings = manager.config.middleware.settings.get("context", {})
    provider = settings.get("summary_provider")
    if "context" not in manager.config.middleware.chain or settings.get("strategy") != "summarize" or provider is None:
        return
    if provider not in manager.registry.providers:
        raise ConfigError(
            f"no provider plugin named {provider!r}; installed: {', '.join(sorted(manager.registry.providers))}",
            file=manager.config.path,
            key="middleware.context.summary_provider",
        )
