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
    """A JSON value with each of its strings rewritten."""
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, Mapping):
        return {rewrite(str(key)): rewrite_value(item, rewrite) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rewrite_value(item, rewrite) for item in value]
    return value


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
    """``message`` with its parts and the metadata values of ``keys`` rewritten; itself when
    nothing changed."""
    parts = tuple(rewrite_part(part, rewrite) for part in message.parts)
    metadata = rewrite_metadata(message.metadata, keys, rewrite)
    if parts == message.parts and metadata == message.metadata:
        return message
    return attrs.evolve(message, parts=parts, metadata=metadata)
