"""The ``pii`` middleware: values the config names are masked in every message and session
record before it is stored (scope ``storage``) and in every request before it is sent (scope
``provider``): text, tool-call arguments, tool results, the system prompt, the title and the
metadata values the config lists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

from threadline.plugin import (
    BadRequest,
    Call,
    CompleteNext,
    Event,
    Message,
    Middleware,
    Part,
    Response,
    Role,
    SessionRecord,
    StreamNext,
    Text,
    ToolCall,
    ToolResult,
)
from threadline_pii import PIIConfig
from threadline_pii.entities import BUILTIN, Entity, custom, find


class PIIMiddleware(Middleware):
    def __init__(self, config: PIIConfig) -> None:
        self.config = config
        self.entities: list[Entity] = [BUILTIN[name] for name in BUILTIN if name in config.entities]
        self.entities += [custom(entry.name, entry.pattern) for entry in config.custom]

    def redact(self, text: str) -> str:
        """``text`` with each value found replaced by its kind, ``[EMAIL]``."""
        found = find(text, self.entities)
        if not found:
            return text
        pieces, at = [], 0
        for value in found:
            pieces += [text[at : value.start], f"[{value.entity.upper()}]"]
            at = value.end
        pieces.append(text[at:])
        return "".join(pieces)

    def redact_value(self, value: Any) -> Any:
        """A JSON value with each of its strings redacted (tool arguments and results)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(key)): self.redact_value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(item) for item in value]
        return value

    def redact_part(self, part: Part) -> Part:
        if isinstance(part, Text):
            return attrs.evolve(part, text=self.redact(part.text))
        if isinstance(part, ToolCall):
            return attrs.evolve(part, arguments=self.redact_value(dict(part.arguments)))
        if isinstance(part, ToolResult):
            return attrs.evolve(part, content=self.redact_value(part.content))
        return part

    def redact_metadata(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: self.redact_value(value) if key in self.config.metadata else value for key, value in metadata.items()
        }

    def redact_message(self, message: Message) -> Message:
        parts = tuple(self.redact_part(part) for part in message.parts)
        metadata = self.redact_metadata(message.metadata)
        if parts == message.parts and metadata == message.metadata:
            return message
        return attrs.evolve(message, parts=parts, metadata=metadata)

    def redact_session(self, session: SessionRecord) -> SessionRecord:
        return attrs.evolve(
            session,
            system_prompt=None if session.system_prompt is None else self.redact(session.system_prompt),
            title=None if session.title is None else self.redact(session.title),
            metadata=self.redact_metadata(session.metadata),
        )

    def redact_call(self, call: Call) -> Call:
        if "provider" not in self.config.scope:
            return call
        request = call.request
        system_prompt = None if request.system_prompt is None else self.redact(request.system_prompt)
        messages = tuple(self.redact_message(message) for message in request.messages)
        return attrs.evolve(call, request=attrs.evolve(request, system_prompt=system_prompt, messages=messages))

    def refuse_if_found(self, what: str, texts: list[str]) -> None:
        """With ``action = "block"``: refuse ``what`` if any of ``texts`` holds a value."""
        if self.config.action != "block":
            return
        kinds = sorted({value.entity for text in texts for value in find(text, self.entities)})
        if kinds:
            raise BadRequest(
                f"{what} refused: it contains personal data ({', '.join(kinds)}); "
                'remove it and try again (threadline-pii, action = "block")',
                provider="pii",
            )

    async def message(self, message: Message, session: SessionRecord) -> Message:
        if message.role is Role.USER:
            self.refuse_if_found("message", [message.text, *_strings(self.listed_metadata(message.metadata))])
        return self.redact_message(message) if "storage" in self.config.scope else message

    async def session(self, session: SessionRecord) -> SessionRecord:
        """Masked, whatever the action: a session is written again at every turn (its title,
        its provider state), and refusing those writes would lock a session that holds a
        value from before."""
        return self.redact_session(session) if "storage" in self.config.scope else session

    def listed_metadata(self, metadata: Mapping[str, Any]) -> list[Any]:
        """The values of the metadata keys the config lists, which are checked and masked."""
        return [value for key, value in metadata.items() if key in self.config.metadata]

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        return await next(self.redact_call(call))

    def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        return next(self.redact_call(call))


def _strings(values: list[Any]) -> list[str]:
    """The strings in JSON ``values``, nested ones too."""
    found: list[str] = []
    for value in values:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            found += _strings(list(value.values()))
        elif isinstance(value, list | tuple):
            found += _strings(list(value))
    return found
