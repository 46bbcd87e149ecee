"""What other processes change, as it happens: every write's script publishes an event on
its tenant's channel, ``PREFIX{TENANT}events``, and :meth:`RedisStorage.events` reads them.

Redis pub/sub delivers to whoever listens at that moment, at most once: a listener that was
not connected misses what happened meanwhile, so read the session (``get_session``) after a
(re)connect, and use events to learn *that* something changed, not as a log of it.
"""

from __future__ import annotations

import json
from typing import Literal

from attrs import frozen

EventKind = Literal["created", "updated", "appended", "message_status", "deleted"]


@frozen
class StorageEvent:
    """One change to a session, by any process.

    :param kind: ``created`` (also by an import), ``updated`` (``update_session``: a title,
        metadata, archiving...), ``appended`` (messages), ``message_status`` (a message's
        status set, e.g. a user message marked failed) or ``deleted`` (also by ``delete_user``).
    :param message_count: the session's count after the change (``created``, ``appended``).
    :param status: the session's status after the change (``created``, ``updated``).
    :param seq: the message whose status was set (``message_status``).
    """

    kind: EventKind
    tenant: str
    session_id: str
    message_count: int | None = None
    status: str | None = None
    seq: int | None = None


def read_event(tenant: str, data: bytes) -> StorageEvent:
    fields = json.loads(data)
    return StorageEvent(
        fields["kind"],
        tenant,
        fields["session_id"],
        fields.get("message_count"),
        fields.get("status"),
        fields.get("seq"),
    )
