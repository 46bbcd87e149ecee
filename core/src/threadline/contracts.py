"""What a provider and a storage must provide. ``threadline.testing`` checks each promise."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from threadline.model import (
    Capabilities,
    DeletedCounts,
    Event,
    Message,
    Request,
    Response,
    SessionPage,
    SessionQuery,
    SessionRecord,
)


@runtime_checkable
class Provider(Protocol):
    """A model API. Map SDK exceptions onto ``threadline.errors.ProviderError`` subclasses."""

    def capabilities(self, model: str | None) -> Capabilities:
        """What ``model`` (``None``: the default model) supports."""

    async def complete(self, request: Request) -> Response:
        """One whole reply."""

    def stream(self, request: Request) -> AsyncIterator[Event]:
        """The reply as it arrives: ``TextDelta`` and ``ToolCallDelta`` events, then one ``Done``."""

    async def close(self) -> None:
        """Release connections. Called once when the manager closes."""


@runtime_checkable
class Storage(Protocol):
    """Where sessions and their messages live. Every method is scoped by ``tenant``: a session
    of another tenant is invisible (``SessionNotFound``)."""

    async def open(self) -> None:
        """Connect, create or migrate the schema. Called once before any other method."""

    async def close(self) -> None:
        """Flush and release connections."""

    async def create_session(self, session: SessionRecord) -> SessionRecord:
        """Store a new session. A duplicate id is a ``StorageConflict``."""

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord:
        """The session, or ``SessionNotFound``."""

    async def update_session(self, session: SessionRecord) -> SessionRecord:
        """Replace the stored session if its ``version`` still equals ``session.version``;
        return it with ``version + 1`` and a new ``updated_at``. Else ``StorageConflict``.
        ``message_count`` and ``usage`` are the storage's: the values passed are ignored."""

    async def delete_session(self, tenant: str, session_id: str) -> None:
        """Remove the session and all its messages, or ``SessionNotFound``."""

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        """Sessions matching ``query``, most recently updated first (ties by id, descending);
        ``query.cursor`` continues where the page that returned it ended."""

    async def append_messages(self, tenant: str, session_id: str, messages: Sequence[Message]) -> None:
        """Store ``messages`` atomically: all or none. Their ``seq`` must run on from the
        session's ``message_count`` without a gap, else ``StorageConflict`` and nothing is
        written. Adds them to the session's ``message_count`` and ``usage`` and sets its
        ``updated_at``."""

    async def set_message_status(
        self, tenant: str, session_id: str, seq: int, status: str, error: str | None = None
    ) -> None:
        """Mark a stored message ``failed`` or ``incomplete`` (with the error, if any)."""

    async def get_messages(
        self, tenant: str, session_id: str, *, after_seq: int = 0, last: int | None = None
    ) -> list[Message]:
        """Messages with ``seq > after_seq``, oldest first; only the newest ``last`` of them if given."""

    async def delete_user(self, tenant: str, user_id: str) -> DeletedCounts:
        """Remove every session of ``user_id`` and their messages in one go; say how many."""

    def export_records(self, tenant: str | None = None) -> AsyncIterator[SessionRecord | Message]:
        """Every session followed by its messages, streamed (``None``: all tenants)."""

    async def import_records(self, records: AsyncIterable[SessionRecord | Message]) -> int:
        """Store what ``export_records`` gave, all or nothing; return how many records.
        A session id that exists already is a ``StorageConflict``."""


def make_cursor(session: SessionRecord) -> str:
    """The cursor that continues a listing after ``session`` (every storage uses this form)."""
    raw = json.dumps([session.updated_at.isoformat(), session.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def read_cursor(cursor: str) -> tuple[datetime, str]:
    """``(updated_at, id)`` of the last session of the previous page."""
    try:
        updated_at, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(updated_at), str(session_id)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a cursor threadline gave out: {cursor!r}") from exc
