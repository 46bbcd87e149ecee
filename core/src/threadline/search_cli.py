"""``threadline sessions search``: its ``--since`` option and what it prints.

Imported with the command line, so it imports click and the standard library only; the
search itself (:meth:`SessionManager.search`) when the command runs.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import click

if TYPE_CHECKING:
    from threadline.manager import SessionManager
    from threadline.search import SearchHit

_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|wk|wks|weeks?)")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SINCE_FORMS: Final = (
    "a date (2026-01-31), a date and time (2026-01-31T09:00, your time zone unless it says), "
    "or how long ago (30m, 12h, 7d, 2w)"
)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``text`` as a moment: an ISO date or date and time (local time unless it names its
    zone), or a duration back from ``now`` (``30m``, ``12h``, ``7d``, ``2w``); ``ValueError``
    saying what would be right."""
    text = text.strip()
    now = now or datetime.now().astimezone()
    if match := _DURATION.fullmatch(text.lower()):
        amount, unit = float(match.group(1)), match.group(2)
        seconds = _UNITS[unit[0]]
        return now - timedelta(seconds=amount * seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date or a duration: give {SINCE_FORMS}") from None
    return moment if moment.utcoffset() is not None else moment.astimezone()


class Since(click.ParamType[datetime]):
    """``--since``: :func:`parse_since`, its mistakes as click's usage errors."""

    name = "since"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_since(str(value))
        except (ValueError, OverflowError) as exc:
            self.fail(str(exc) if isinstance(exc, ValueError) else f"{value!r} is too far back", param, ctx)


async def run_search(
    manager: SessionManager,
    text: str,
    *,
    user_id: str | None,
    provider: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Search and print each hit: a line of text, or a JSON object with ``--json``."""
    hits = await manager.search(text, user_id=user_id, provider=provider, since=since, limit=limit)
    for hit in hits:
        click.echo(json.dumps(hit.to_json(), ensure_ascii=False) if as_json else format_hit(hit))
    if not hits and not as_json:
        click.echo(f"no messages match {text!r}", err=True)


def format_hit(hit: SearchHit) -> str:
    """``<session id>  <seq> <role>  <when>  <snippet>``."""
    when = hit.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return f"{hit.session_id}  {hit.seq:>4} {hit.role.value:<9}  {when}  {hit.snippet}"
