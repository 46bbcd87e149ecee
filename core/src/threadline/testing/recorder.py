"""A plugin that records every lifecycle hook call, for tests."""

from __future__ import annotations

from typing import Any

from threadline.hookspecs import hookimpl


class EventRecorder:
    """Register with ``SessionManager(plugins=[recorder])``; read ``recorder.events``,
    a list of ``(hook_name, arguments)`` in the order they fired."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def _record(self, name: str, **arguments: Any) -> None:
        self.events.append((name, arguments))

    @hookimpl
    def threadline_startup(self, manager: Any) -> None:
        self._record("startup", manager=manager)

    @hookimpl
    def threadline_shutdown(self, manager: Any) -> None:
        self._record("shutdown", manager=manager)

    @hookimpl
    def threadline_session_created(self, session: Any) -> None:
        self._record("session_created", session=session)

    @hookimpl
    def threadline_session_archived(self, session: Any) -> None:
        self._record("session_archived", session=session)

    @hookimpl
    def threadline_session_deleted(self, session_id: str, user_id: str | None) -> None:
        self._record("session_deleted", session_id=session_id, user_id=user_id)

    @hookimpl
    def threadline_message_appended(self, session: Any, message: Any) -> None:
        self._record("message_appended", session=session, message=message)

    @hookimpl
    def threadline_provider_error(self, session: Any, error: Any) -> None:
        self._record("provider_error", session=session, error=error)

    @hookimpl
    def threadline_history_edited(self, session: Any, revision: Any, added: Any) -> None:
        self._record("history_edited", session=session, revision=revision, added=added)
