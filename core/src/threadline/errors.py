"""One exception hierarchy. Plugins map their SDK's and driver's errors onto it, so callers
catch ``threadline.RateLimited`` whichever provider they talk to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadline.migrate import MigrationReport
    from threadline.model import Message


class ThreadlineError(Exception):
    """Base of every error threadline raises on purpose."""


class ConfigError(ThreadlineError):
    """A config file or value is wrong. The message names the file and the key (``file``,
    ``key``; the key alone for a value passed in) and what would be right (``reason``)."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.reason = message
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class PluginError(ThreadlineError):
    """A plugin could not be loaded, registered a name another plugin has, or is not installed."""


class DataFormatError(ThreadlineError):
    """Stored or imported data is not in a format this version of threadline reads."""


class SessionNotFound(ThreadlineError):
    """The tenant has no session with that id (it never had, or it was deleted)."""

    def __init__(self, session_id: str, tenant: str) -> None:
        self.session_id = session_id
        self.tenant = tenant
        super().__init__(f"no session {session_id!r} in tenant {tenant!r}")


class SessionArchived(ThreadlineError):
    """A message was sent to an archived session. An archived session stays readable
    (``history``, listings, export) but takes no new turn; there is no way back to active:
    :meth:`Session.fork` makes an active copy with its history to go on in."""

    def __init__(self, session_id: str, tenant: str) -> None:
        self.session_id = session_id
        self.tenant = tenant
        super().__init__(
            f"session {session_id!r} is archived and takes no new messages; "
            "to go on with it, fork it (Session.fork() makes an active copy with its history)"
        )


class HistoryError(ThreadlineError, ValueError):
    """An edit of a session's history that cannot be made as asked: no message with that
    ``seq``, nothing to undo or answer again, or a tool call parted from its result. Nothing
    was changed. Also a ``ValueError``."""


class ToolError(ThreadlineError):
    """A tool is unknown, or the model kept calling tools past the step limit."""


class OutputError(ThreadlineError):
    """A reply asked for as structured output (``send(output=T)``) did not match ``T``, after
    the model was told what was wrong as many times as ``[defaults] output_retries`` allows.
    Every reply is stored, as any is; ``reply`` is the last, and ``problems`` say how it
    failed to match."""

    def __init__(self, message: str, *, reply: Message, problems: Sequence[str]) -> None:
        super().__init__(message)
        self.reply = reply
        self.problems = list(problems)


class BadCursor(ThreadlineError, ValueError):
    """A listing was given a cursor threadline did not give out. A cursor continues a listing:
    it is the ``next_cursor`` of the page before, passed back as it came. Also a ``ValueError``."""

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor
        super().__init__(
            f"not a cursor threadline gave out: {cursor!r}. A cursor continues a listing where a page "
            "ended: pass that page's next_cursor as it came, or none for the first page"
        )


# --- providers -------------------------------------------------------------


class ProviderError(ThreadlineError):
    """A provider call failed. ``provider`` names the provider plugin."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        self.provider = provider
        super().__init__(f"{provider}: {message}" if provider else message)


class AuthenticationError(ProviderError):
    """The credentials were missing or refused (HTTP 401/403)."""


class RateLimited(ProviderError):
    """The provider asked us to slow down (HTTP 429). ``retry_after`` is in seconds, when known."""

    def __init__(self, message: str, *, provider: str | None = None, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider=provider)


class ContextTooLong(ProviderError):
    """The conversation no longer fits the model's context window."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached, timed out or failed on its side (HTTP 5xx)."""


class BadRequest(ProviderError):
    """The provider refused the request as malformed (other HTTP 4xx)."""


# --- storage ---------------------------------------------------------------


class StorageError(ThreadlineError):
    """A storage backend failed."""


class StorageConflict(StorageError):
    """A write lost a race: the session's ``version`` or the expected ``seq`` has moved on."""


class StorageUnavailable(StorageError):
    """The storage backend could not be reached or opened."""


class MigrationIncomplete(StorageError):
    """A migration copied what it could, but some sessions differ in the target or what was
    read back does not match what was read: ``report`` says which."""

    def __init__(self, report: MigrationReport) -> None:
        self.report = report
        problems = []
        if report.differing:
            problems.append(
                f"the target has {len(report.differing)} of the sessions with other contents, not overwritten: "
                f"{_named(report.differing)}; delete them from the target and run again to copy them"
            )
        if report.refused:
            tenant, session_id, why = report.refused[0]
            more = f" (and {len(report.refused) - 1} more)" if len(report.refused) > 1 else ""
            problems.append(
                f"the target could not store {len(report.refused)} of the sessions, left out: {session_id!r} "
                f"(tenant {tenant!r}): {why}{more}"
            )
        if report.unverified:
            problems.append(
                f"{len(report.unverified)} of the sessions are missing from the target at the end, or read back "
                f"otherwise than they were read: {_named(report.unverified)} (another writer on the target?)"
            )
        super().__init__("; ".join(problems))


def _named(sessions: list[tuple[str, str]], shown: int = 5) -> str:
    """The first ``shown`` of ``(tenant, id)`` pairs, and how many more there are."""
    named = ", ".join(f"{session_id!r} (tenant {tenant!r})" for tenant, session_id in sessions[:shown])
    return named + (f" and {len(sessions) - shown} more" if len(sessions) > shown else "")
