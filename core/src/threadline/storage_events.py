"""What other processes change in a storage they share, as it happens: the events a storage
that offers them gives from its ``events(tenant)`` method (threadline-redis, and
threadline-postgres), and :meth:`SessionManager.events` passes on.

Delivery is at most once, to whoever listens at that moment: a listener that was not
connected misses what happened meanwhile. So read the session (``get_session``) after a
(re)connect, and use events to learn *that* something changed, not as a log of it.
"""

from __future__ import annotations

import json
from typing import Literal, get_args

from attrs import frozen

from threadline.errors import DataFormatError

EventKind = Literal["created", "updated", "appended", "message_status", "replaced", "deleted"]
_KINDS = frozenset(get_args(EventKind))


@frozen
class StorageEvent:
    """One change to a session, by any process.

    :ivar kind: ``created`` (also by an import), ``updated`` (``update_session``: a title,
        metadata, archiving...), ``appended`` (messages), ``message_status`` (a message's
        status set, e.g. a user message marked failed), ``replaced`` (the history edited:
        ``replace_messages``) or ``deleted`` (also by ``delete_user``).
    :ivar tenant: the session's tenant.
    :ivar session_id: the session's id.
    :ivar message_count: the session's count after the change (``created``, ``appended``,
        ``replaced``).
    :ivar status: the session's status after the change (``created``, ``updated``).
    :ivar seq: the message whose status was set (``message_status``).
    """

    kind: EventKind
    tenant: str
    session_id: str
    message_count: int | None = None
    status: str | None = None
    seq: int | None = None


def read_event(data: str | bytes, tenant: str | None = None) -> StorageEvent:
    """The event a storage sent as a JSON object: ``kind``, ``session_id``, ``tenant``
    (unless the channel said it: ``tenant``), and those of ``message_count``, ``status`` and
    ``seq`` it has. What is not such an object is a ``DataFormatError``."""
    try:
        fields = json.loads(data)
        event = StorageEvent(
            fields["kind"],
            tenant if tenant is not None else fields["tenant"],
            fields["session_id"],
            fields.get("message_count"),
            fields.get("status"),
            fields.get("seq"),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise DataFormatError(f"not a storage event: {exc!r}") from None
    if event.kind not in _KINDS or not isinstance(event.session_id, str) or not isinstance(event.tenant, str):
        raise DataFormatError(f"not a storage event: {fields!r}")
    return event
