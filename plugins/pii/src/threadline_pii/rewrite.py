"""Every string of a message that a model or the disk sees, passed through one function:
text parts, tool-call arguments (their keys too), tool results and the metadata values the
config lists. Attachments and ``provider_data`` stay as they are."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs

from threadline.plugin import Message, Part, Text, ToolCall, ToolResult

Rewrite = Callable[[str], str]


def rewrite_value(value: Any, rewrite: Rewrite) -> Any:
    """A JSON value with each of its strings rewritten, and each whole number that its
    rewrite would change (a card number sent as a number) replaced by the rewritten string."""
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        written = rewrite(str(value))
        return value if written == str(value) else written
    if isinstance(value, Mapping):
        return _rewrite_keys({str(key): rewrite_value(item, rewrite) for key, item in value.items()}, rewrite)
    if isinstance(value, list | tuple):
        return [rewrite_value(item, rewrite) for item in value]
    return value


def _rewrite_keys(table: dict[str, Any], rewrite: Rewrite) -> dict[str, Any]:
    """``table`` with its keys rewritten; two that come out the same (two addresses, both
    ``[EMAIL]``) are told apart by a number, so that neither value is lost."""
    rewritten: dict[str, Any] = {}
    for key, item in table.items():
        new, number = rewrite(key), 1
        while new in rewritten:
            number += 1
            new = f"{rewrite(key)} {number}"
        rewritten[new] = item
    return rewritten


def rewrite_part(part: Part, rewrite: Rewrite) -> Part:
    if isinstance(part, Text):
        return attrs.evolve(part, text=rewrite(part.text))
    if isinstance(part, ToolCall):
        return attrs.evolve(part, arguments=rewrite_value(part.arguments, rewrite))
    if isinstance(part, ToolResult):
        return attrs.evolve(part, content=rewrite_value(part.content, rewrite))
    return part


def rewrite_metadata(metadata: Mapping[str, Any], keys: Collection[str], rewrite: Rewrite) -> dict[str, Any]:
    """``metadata`` with the values of ``keys`` rewritten."""
    return {key: rewrite_value(value, rewrite) if key in keys else value for key, value in metadata.items()}


def rewrite_message(message: Message, keys: Collection[str], rewrite: Rewrite) -> Message:
    """``message`` with its parts, its error and the metadata values of ``keys`` rewritten;
    itself when nothing changed. Where text parts next to each other read otherwise as one
    text (a value runs from one into the next), they are made one."""
    parts = _rewrite_parts(message.parts, rewrite)
    metadata = rewrite_metadata(message.metadata, keys, rewrite)
    error = None if message.error is None else rewrite(message.error)
    if parts == message.parts and metadata == message.metadata and error == message.error:
        return message
    return attrs.evolve(message, parts=parts, metadata=metadata, error=error)


def _rewrite_parts(parts: tuple[Part, ...], rewrite: Rewrite) -> tuple[Part, ...]:
    each = tuple(rewrite_part(part, rewrite) for part in parts)
    joined = _joined(parts)
    if joined == parts:
        return each
    whole = tuple(rewrite_part(part, rewrite) for part in joined)
    return whole if _text(whole) != _text(each) else each


def _text(parts: tuple[Part, ...]) -> str:
    return "".join(part.text for part in parts if isinstance(part, Text))


def _joined(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """``parts`` with each run of plain text parts (no ``provider_data``) made one."""
    if sum(isinstance(part, Text) for part in parts) < 2:
        return parts
    joined: list[Part] = []
    for part in parts:
        previous = joined[-1] if joined else None
        if _plain(part) and _plain(previous):
            joined[-1] = Text(previous.text + part.text)  # type: ignore[union-attr]
        else:
            joined.append(part)
    return tuple(joined)


def _plain(part: Part | None) -> bool:
    return isinstance(part, Text) and not part.provider_data
