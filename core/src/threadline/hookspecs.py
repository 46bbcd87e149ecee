"""The hooks a threadline plugin can implement.

A plugin is a module (or any object) with functions named after these hooks and marked
with ``@threadline.hookimpl``, made known through the ``threadline`` entry-point group::

    [project.entry-points.threadline]
    myplugin = "threadline_myplugin"

Every hook is called through pluggy, so ``tryfirst=True``/``trylast=True`` and
``wrapper=True`` on an implementation mean what they mean in pytest, and an implementation may
take fewer arguments than the hook offers (only those it names are passed). The docstrings
below are the hook reference (``docs/hooks.md`` is generated from them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from threadline.errors import ProviderError
    from threadline.manager import SessionManager
    from threadline.model import Message, Revision, SessionRecord
    from threadline.registry import Register, RegisterSettings, RegisterTool

hookspec = pluggy.HookspecMarker("threadline")
hookimpl = pluggy.HookimplMarker("threadline")
"""Marks a function as a hook implementation: ``@threadline.hookimpl``, or
``@threadline.hookimpl(tryfirst=True)`` and the other options of pluggy's marker."""


# ---------------------------------------------------------------------------
# Registration: called once per manager, at start-up. An implementation that raises
# fails its plugin alone: the plugin is unloaded, what it registered is dropped, and
# `threadline plugins` shows the error with the plugin's name.
# ---------------------------------------------------------------------------


@hookspec
def threadline_register_providers(register: Register) -> None:
    """Register model providers.

    Called once when a :class:`~threadline.SessionManager` or the CLI starts.

    :param register: ``register(name, factory, config=ConfigClass)``. ``factory(config)``
        returns an object with the :class:`threadline.Provider` methods; it is called the
        first time the provider is used, so import the SDK inside it, not at module level.
        ``config`` is an attrs class; the ``[providers.<name>]`` table of the config file is
        structured into it. Two plugins registering one name is an error naming both.
    :return: nothing; what counts is what was registered.

    .. code-block:: python

        @threadline.hookimpl
        def threadline_register_providers(register):
            register("reverse", make_reverse_provider, config=ReverseConfig)
    """


@hookspec
def threadline_register_storage(register: Register) -> None:
    """Register storage backends.

    Called once at start-up.

    :param register: ``register(name, factory, config=ConfigClass)``. ``factory(config)``
        returns an object with the :class:`threadline.Storage` methods. The ``[storage]``
        table (less its ``backend`` key) is structured into ``config`` when
        ``backend = "<name>"``. Import the database driver inside the factory.
    :return: nothing; what counts is what was registered.
    """


@hookspec
def threadline_register_middleware(register: Register) -> None:
    """Register middleware.

    Called once at start-up.

    :param register: ``register(name, factory, config=ConfigClass)``. ``factory(config)``
        returns a :class:`threadline.Middleware`. Middleware named in ``[middleware] chain``
        wraps every provider call in that order (the first named sees the call first and
        the reply last); its settings come from ``[middleware.<name>]``.
    :return: nothing; what counts is what was registered.
    """


@hookspec
def threadline_register_tools(register: RegisterTool) -> None:
    """Register tools the model may call.

    Called once at start-up.

    :param register: ``register(tool)`` where ``tool`` is a function decorated with
        :func:`threadline.tool`. A session uses a registered tool when it names it in
        ``tools=[...]`` (by name or by the function).
    :return: nothing; what counts is what was registered.
    """


@hookspec
def threadline_register_settings(register: RegisterSettings) -> None:
    """Register a settings table for a plugin that has no provider, storage or middleware to
    hang its config on (a lifecycle or command plugin).

    Called once at start-up.

    :param register: ``register(name, ConfigClass)``. The ``[plugins.<name>]`` table of the
        config file is structured into the attrs class ``ConfigClass`` and checked when the
        manager is made (errors name the file and key); a plugin reads it back with
        ``manager.settings(name)``, for example in a lifecycle hook that takes ``manager``.
        With no table in the file, ``ConfigClass()`` is used.
    :return: nothing; what counts is what was registered.

    .. code-block:: python

        @attrs.frozen
        class AuditSettings:
            path: str = "audit.jsonl"


        @threadline.hookimpl
        def threadline_register_settings(register):
            register("audit", AuditSettings)


        @threadline.hookimpl
        def threadline_message_appended(message, manager):
            path = manager.settings("audit").path
    """


@hookspec
def threadline_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``threadline`` command line.

    Called once when the CLI starts, before it parses its arguments.

    :param cli: the top-level :class:`click.Group`; add commands with ``@cli.command()``.
        Decorate an async command body with :func:`threadline.plugin.with_manager` to get the
        ``SessionManager`` that the config the CLI was given assembles. Import it inside this
        hook, which is called only when the CLI starts: it loads the CLI module.
    :return: nothing; what counts is what was registered.
    """


# ---------------------------------------------------------------------------
# Lifecycle: notifications. Sync or async (pluggy calls the implementations in its order,
# then the kernel awaits what they returned, in that order); a failure is logged with the
# plugin's name and does not break the call, unless the implementation is marked with
# @threadline.critical. Each also offers `manager`, the SessionManager, to an
# implementation that names it.
# ---------------------------------------------------------------------------


@hookspec
def threadline_startup(manager: SessionManager) -> Any:
    """The manager has opened its storage and is ready.

    :param manager: the :class:`~threadline.SessionManager` starting up.
    :return: nothing, or an awaitable, which the kernel awaits.
    """


@hookspec
def threadline_shutdown(manager: SessionManager) -> Any:
    """The manager is closing; its storage is still open.

    :param manager: the :class:`~threadline.SessionManager` shutting down.
    :return: nothing, or an awaitable, which the kernel awaits.
    """


@hookspec
def threadline_session_created(session: SessionRecord, manager: SessionManager) -> Any:
    """A session was created and stored.

    :param session: the stored :class:`~threadline.SessionRecord`.
    :param manager: the :class:`~threadline.SessionManager` it happened in.
    :return: nothing, or an awaitable, which the kernel awaits.
    """


@hookspec
def threadline_session_archived(session: SessionRecord, manager: SessionManager) -> Any:
    """A session was archived.

    :param session: the session as stored after archiving.
    :param manager: the :class:`~threadline.SessionManager` it happened in.
    :return: nothing, or an awaitable, which the kernel awaits.
    """


@hookspec
def threadline_session_deleted(session_id: str, user_id: str | None, manager: SessionManager) -> Any:
    """A session and its messages were deleted.

    :param session_id: the id of the deleted session.
    :param user_id: the user it belonged to, if any.
    :param manager: the :class:`~threadline.SessionManager` it happened in.
    :return: nothing, or an awaitable, which the kernel awaits.
    """


@hookspec
def threadline_message_appended(session: SessionRecord, message: Message, manager: SessionManager) -> Any:
    """A message was stored: a user's, an assistant's or a tool result.

    Called after the message is durable, once per message, in ``seq`` order, with the message
    exactly as it was stored (after every middleware's message stage).

    :param session: the session the message belongs to.
    :param message: the stored :class:`~threadline.Message`.
    :param manager: the :class:`~threadline.SessionManager` it happened in.
    :return: nothing, or an awaitable, which the kernel awaits.
    """


@hookspec
def threadline_history_edited(
    session: SessionRecord, revision: Revision, added: tuple[Message, ...], manager: SessionManager
) -> Any:
    """A session's history was edited (``Session.undo``, ``edit``, ``remove``, ``clear``,
    ``regenerate``, or a plugin's own edit): the messages after ``revision.after_seq`` were
    replaced, and are kept.

    Called after the edit is durable. ``threadline_message_appended`` is not called for the
    messages the edit added: an audit log records both hooks to see every change.

    :param session: the session as stored after the edit.
    :param revision: the :class:`~threadline.Revision`: its ``number``, ``after_seq``, and the
        ``replaced`` messages as they were stored.
    :param added: the messages that took their place, as stored (after every middleware's
        message stage), oldest first; ``()`` when the edit only removed.
    :param manager: the :class:`~threadline.SessionManager` it happened in.
    :return: nothing, or an awaitable, which the kernel awaits.
    """


@hookspec
def threadline_provider_error(session: SessionRecord, error: ProviderError, manager: SessionManager) -> Any:
    """A provider call failed (after any retries middleware made).

    The user message that led to it is stored and marked ``failed``.

    :param session: the session whose call failed.
    :param error: the :class:`~threadline.ProviderError` raised to the caller.
    :param manager: the :class:`~threadline.SessionManager` it happened in.
    :return: nothing, or an awaitable, which the kernel awaits.
    """
