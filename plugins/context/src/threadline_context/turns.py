"""A history cut into turns, and whole turns left out until the rest fits.

A turn is a user message and what follows it up to the next one: the reply, tool calls and
their results. A stored summary of older turns is a turn of its own. Whole turns go, so a
tool call is never sent without its result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from threadline.plugin import Message, Role
from threadline_context.summary import is_summary


def turns(messages: Sequence[Message]) -> list[list[Message]]:
    """``messages`` cut before each user message and each summary (what comes before the
    first is a turn too)."""
    cut: list[list[Message]] = []
    for message in messages:
        if message.role is Role.USER or is_summary(message) or not cut:
            cut.append([])
        cut[-1].append(message)
    return cut


def middle(cut: Sequence[Sequence[Message]], keep_first: int, keep_last: int) -> range:
    """Of the turns ``cut``, the ones neither among the first ``keep_first`` nor the last
    ``keep_last``; the last turn, the one being answered, is never among them, and neither
    is what comes before the first user message (system notes, kept as the system prompt
    is), unless it is a summary."""
    count = len(cut)
    first = min(keep_first + preamble(cut), count - 1)
    return range(first, max(count - keep_last, first))


def preamble(cut: Sequence[Sequence[Message]]) -> int:
    """1 when the first of the turns ``cut`` is what comes before the first user message
    (and not a summary), else 0."""
    return 1 if cut and not any(m.role is Role.USER or is_summary(m) for m in cut[0]) else 0


def trimmed(
    messages: Sequence[Message], room: int, keep_first: int, keep_last: int, size: Callable[[Message], int]
) -> list[Message] | None:
    """``messages`` less whole turns until their tokens fit ``room``: first the turns between
    the first ``keep_first`` and the last ``keep_last``, oldest first; then, if still too
    many, the first ones and the earlier of the last ones. What comes before the first user
    message stays. ``None`` when that and the last turn alone do not fit."""
    cut = turns(messages)
    sizes = [sum(map(size, turn)) for turn in cut]
    total, final = sum(sizes), len(cut) - 1
    between = middle(cut, keep_first, keep_last)
    order = [*between, *range(preamble(cut), between.start), *range(between.stop, final)]
    dropped: set[int] = set()
    for index in order:
        if total <= room:
            break
        dropped.add(index)
        total -= sizes[index]
    if total > room:
        return None
    return [message for index, turn in enumerate(cut) if index not in dropped for message in turn]
