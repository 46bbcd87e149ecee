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

from threadline.printable import printable

if TYPE_CHECKING:
    from threadline.manager import SessionManager
    from threadline.search import SearchHit

#: the units ``--since`` takes, how long ago: each one's letter, and its short form and word, singular or plural
_UNITS: Final = {
    name: timedelta(**{unit: 1})
    for unit, letter, forms in (("minutes", "m", "min minute"), ("hours", "h", "hr hour"), ("days", "d", "day"),
                                ("weeks", "w", "wk week"))
    for name in (letter, *forms.split(), *(f"{form}s" for form in forms.split()))
}  # fmt: skip
_DURATION: Final = re.compile(rf"(\d+(?:\.\d+)?)\s*({'|'.join(sorted(_UNITS, key=len, reverse=True))})")
SINCE_FORMS: Final = (
    "a date (2026-01-31), a date and time (2026-01-31T09:00, your time zone unless it says), "
    "or how long ago in minutes, hours, days or weeks (30m, 12h, 7d, 2w; also 30min, 12hr, 2wk "
    "and the words: 12 hours, 1 week)"
)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``text`` as a moment: an ISO date or date and time (local time unless it names its
    zone), or a duration back from ``now`` in minutes, hours, days or weeks (:data:`SINCE_FORMS`);
    ``ValueError`` saying what would be right."""
    text = text.strip()
    now = now or datetime.now().astimezone()
    if match := _DURATION.fullmatch(text.lower()):
        return now - float(match.group(1)) * _UNITS[match.group(2)]
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
    """Search and print each hit: a line of text, or with ``--json`` a JSON object of its fields
    (as the kernel's converter writes them: the role's value, the time in ISO 8601)."""
    from threadline.model import converter

    hits = await manager.search(text, user_id=user_id, provider=provider, since=since, limit=limit)
    for hit in hits:
        click.echo(json.dumps(converter.unstructure(hit), ensure_ascii=False) if as_json else format_hit(hit))
    if not hits and not as_json:
        click.echo(f"no messages match {text!r}", err=True)


def format_hit(hit: SearchHit) -> str:
    """``<session id>  <seq> <role>  <when>  <snippet>``."""
    when = hit.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return f"{hit.session_id}  {hit.seq:>4} {hit.role.value:<9}  {when}  {printable(hit.snippet)}"
