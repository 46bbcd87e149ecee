"""The ``pii`` middleware: values the config names are masked, or replaced by pseudonyms, in
every message and session record before it is stored (scope ``storage``) and in every request
before it is sent (scope ``provider``): text, tool-call arguments, tool results, the system
prompt, the title and the metadata values the config lists. Streams are rewritten as they go,
holding back only what could still be part of a value."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import attrs

from threadline.plugin import (
    BadRequest,
    Call,
    CompleteNext,
    Done,
    Event,
    Message,
    Middleware,
    Part,
    PluginError,
    Response,
    Revision,
    Role,
    SessionRecord,
    Storage,
    StreamNext,
    Text,
    TextDelta,
    ToolCallDelta,
)
from threadline_pii import PIIConfig
from threadline_pii.entities import BUILTIN, Entity, Found, custom, find, open_from
from threadline_pii.holdback import Holdback
from threadline_pii.pseudonyms import METADATA_KEY, Pseudonyms, token_open_from
from threadline_pii.rewrite import rewrite_message, rewrite_metadata, rewrite_part

if TYPE_CHECKING:
    from threadline_pii.presidio import PresidioDetector

#: what a value found becomes: ``(entity, value) -> replacement``
Replacement = Callable[[str, str], str]

#: sessions whose pseudonyms a middleware keeps at hand, the most recently used
SESSIONS_KEPT = 1024
#: messages whose form as sent a middleware keeps at hand, the most recently sent
MESSAGES_KEPT = 10_000


def mask(entity: str, _value: str) -> str:
    return f"[{entity.upper()}]"


class PIIMiddleware(Middleware):
    def __init__(self, config: PIIConfig) -> None:
        self.config = config
        self.entities: list[Entity] = [BUILTIN[name] for name in BUILTIN if name in config.entities]
        self.entities += [custom(entry.name, entry.pattern) for entry in config.custom]
        self.storing = "storage" in config.scope
        self.presidio: PresidioDetector | None = None
        if config.detector == "presidio":
            from threadline_pii.presidio import PresidioDetector

            self.presidio = PresidioDetector(config.presidio)
        #: given by ``threadline_startup``: pseudonymize reads the tokens a session has
        self.storage: Storage | None = None
        self.sessions: OrderedDict[tuple[str, str], Pseudonyms] = OrderedDict()
        #: by message id: its session, its parts as stored, and as sent
        self.sent: OrderedDict[str, tuple[str, tuple[Part, ...], tuple[Part, ...]]] = OrderedDict()

    # -- finding and replacing --------------------------------------------------------

    def find(self, text: str, pos: int = 0, end: int | None = None) -> list[Found]:
        """The values in ``text`` from ``pos``, in order, none overlapping another; Presidio
        reads only up to ``end`` (in a stream, the clauses that have ended)."""
        more = self.presidio.find(text[:end], pos) if self.presidio else ()
        return find(text, self.entities, pos, more)

    def open_from(self, text: str, pos: int) -> int:
        """Where a value that more text could still make or change may start."""
        start = open_from(text, self.entities, pos)
        return min(start, self.presidio.open_from(text, pos)) if self.presidio else start

    def replace(self, text: str, replacement: Replacement) -> str:
        """``text`` with each value found replaced."""
        return _spliced(text, 0, len(text), self.find(text), replacement)

    def redact(self, text: str) -> str:
        """``text`` with each value found replaced by its kind, ``[EMAIL]``."""
        return self.replace(text, mask)

    def redact_message(self, message: Message) -> Message:
        return rewrite_message(message, self.config.metadata, self.redact)

    def redact_session(self, session: SessionRecord) -> SessionRecord:
        return attrs.evolve(
            session,
            system_prompt=None if session.system_prompt is None else self.redact(session.system_prompt),
            title=None if session.title is None else self.redact(session.title),
            metadata=rewrite_metadata(session.metadata, self.config.metadata, self.redact),
        )

    def kinds_in(self, message: Message) -> set[str]:
        """The kinds of value ``message`` holds, anywhere a model or the disk sees."""
        kinds: set[str] = set()

        def collect(text: str) -> str:
            kinds.update(value.entity for value in self.find(text))
            return text

        rewrite_message(message, self.config.metadata, collect)
        return kinds

    def refuse_if_found(self, message: Message) -> None:
        """With ``action = "block"``: refuse a user's ``message`` that holds a value."""
        if kinds := self.kinds_in(message):
            raise BadRequest(
                f"message refused: it contains personal data ({', '.join(sorted(kinds))}); "
                'remove it and try again (threadline-pii, action = "block")',
                provider="pii",
            )

    # -- the stages ---------------------------------------------------------------------

    async def message(self, message: Message, session: SessionRecord) -> Message:
        if self.config.action == "block" and message.role is Role.USER:
            self.refuse_if_found(message)
        if self.config.action == "pseudonymize":
            staged = await self.pseudonymize(message, session)
        else:
            staged = self.redact_message(message) if self.storing else message
        if self.storing:  # as stored is as sent: the next request need not read it again
            self.keep_sent(staged, staged.parts, staged.parts)
        return staged

    async def pseudonymize(self, message: Message, session: SessionRecord) -> Message:
        """``message`` with each value replaced by its token (scope ``storage``), and the
        tokens it brings in kept in its metadata, whatever the scope."""
        draft = (await self.pseudonyms(session)).draft()
        brought: dict[str, str] = {}

        def token(entity: str, value: str) -> str:
            return draft.token(entity, value, brought)

        tokened = rewrite_message(
            message, self.config.metadata, lambda text: self.replace(draft.retokenize(text), token)
        )
        kept = tokened if self.storing else message
        if not brought:
            return kept
        metadata = {**kept.metadata, METADATA_KEY: {**kept.metadata.get(METADATA_KEY, {}), **brought}}
        return attrs.evolve(kept, metadata=metadata)

    async def pseudonyms(self, session: SessionRecord) -> Pseudonyms:
        """The tokens of the session's stored messages, read from the storage as far as this
        middleware has not read them yet (a turn holds the session's lease: no other turn
        stores messages meanwhile), or all again when the session's version moved: an edit
        of the history, here or in another process, may have replaced what was read."""
        if self.storage is None:
            raise PluginError(
                'threadline-pii: action = "pseudonymize" reads a session\'s tokens from its storage, '
                "which a SessionManager gives the middleware when it opens; use it through one"
            )
        key = (session.tenant, session.id)
        now = await self.storage.get_session(session.tenant, session.id)  # as another process left it too
        known = self.sessions.pop(key, None)
        if known is None or known.version != now.version or now.message_count < known.seen:
            known = Pseudonyms(version=now.version)  # edited, or deleted and made again
        for stored in await self.storage.get_messages(session.tenant, session.id, after_seq=known.seen):
            known.learn(stored)
        self.sessions[key] = known
        if len(self.sessions) > SESSIONS_KEPT:
            self.sessions.popitem(last=False)
        return known

    def forget(self, session_id: str) -> None:
        """Drop what is kept at hand of a deleted session: its tokens, its messages as sent."""
        for key in [key for key in self.sessions if key[1] == session_id]:
            del self.sessions[key]
        for message_id in [key for key, (session, _, _) in self.sent.items() if session == session_id]:
            del self.sent[message_id]

    async def session(self, session: SessionRecord) -> SessionRecord:
        """Masked, whatever the action: a session is written again at every turn (its title,
        its provider state), and refusing those writes would lock a session that holds a
        value from before; a record has no messages to keep pseudonyms in."""
        return self.redact_session(session) if self.storing else session

    async def export(self, record: SessionRecord | Message | Revision) -> SessionRecord | Message | Revision:
        """Without the pseudonym map, a revision's messages' included: the values themselves
        stay on this storage."""
        if isinstance(record, Message):
            return _without_map(record)
        if isinstance(record, Revision):
            return attrs.evolve(record, replaced=tuple(map(_without_map, record.replaced)))
        return record

    # -- calls --------------------------------------------------------------------------

    def outgoing(self, call: Call, known: Pseudonyms | None) -> Call:
        """The call as the provider may see it (scope ``provider``): each value masked, or
        replaced by its token when ``known`` (pseudonymize) has one."""
        if "provider" not in self.config.scope:
            return call
        rewrite = self.redact if known is None else self.tokens_of(known)
        request = call.request
        prompt = None if request.system_prompt is None else self.redact(request.system_prompt)
        messages = tuple(self.as_sent(message, rewrite) for message in request.messages)
        return attrs.evolve(call, request=attrs.evolve(request, system_prompt=prompt, messages=messages))

    def as_sent(self, message: Message, rewrite: Callable[[str], str]) -> Message:
        """``message`` as a provider may see it, its parts read once: every turn sends the
        history again, and a stored message does not change (a value it has no token for
        yet is masked, which it stays)."""
        _, source, parts = self.sent.pop(message.id, ("", (), ()))
        if source != message.parts:  # not read yet, or another middleware changed it after ours
            source, parts = message.parts, rewrite_message(message, (), rewrite).parts
        self.keep_sent(message, source, parts)
        return attrs.evolve(_without_map(message), parts=parts)

    def keep_sent(self, message: Message, source: tuple[Part, ...], sent: tuple[Part, ...]) -> None:
        self.sent[message.id] = (message.session_id, source, sent)
        if len(self.sent) > MESSAGES_KEPT:
            self.sent.popitem(last=False)

    def tokens_of(self, known: Pseudonyms) -> Callable[[str], str]:
        """A text's values replaced by their tokens, and masked where they have none (a value
        stored before pseudonymize was chosen)."""

        def token(entity: str, value: str) -> str:
            return known.known(value) or mask(entity, value)

        return lambda text: self.replace(known.retokenize(text), token)

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        if self.config.action != "pseudonymize":
            return await next(self.outgoing(call, None))
        known = await self.pseudonyms(call.session)
        response = await next(self.outgoing(call, known))
        return attrs.evolve(response, parts=tuple(rewrite_part(part, known.restore) for part in response.parts))

    def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        if self.config.action == "pseudonymize":
            return self.restored(call, next)
        events = next(self.outgoing(call, None))
        return self.masked(events) if self.storing else events

    def mask_split(self, text: str, start: int, final: bool) -> tuple[str, int]:
        """The masked text from ``start`` as far as no value could still be under way."""
        cut = len(text) if final else self.open_from(text, start)
        found = self.find(text, start, cut)
        for value in reversed(found):
            if value.start < cut < value.end:
                cut = value.start
        return _spliced(text, start, cut, [value for value in found if value.end <= cut], mask), cut

    def masked(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        """The stream with its text masked as it goes (what the stored reply will say)."""
        return _rewritten(events, Holdback(self.mask_split), None, self.masked_text)

    def masked_text(self, part: Part) -> Part:
        """A part of a streamed reply as the stream shows it: text masked, a tool call as the
        model wrote it (the tool is given it; the stored call is masked)."""
        return rewrite_part(part, self.redact) if isinstance(part, Text) else part

    async def restored(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        """The stream with each token the model wrote replaced by its value as it goes, in
        text and in tool calls' arguments, a token split across pieces too."""
        known = await self.pseudonyms(call.session)
        events = _rewritten(
            next(self.outgoing(call, known)),
            Holdback(_restore_split(known, quote=False)),
            lambda: Holdback(_restore_split(known, quote=True)),
            lambda part: rewrite_part(part, known.restore),
        )
        async with _closing(events):
            async for event in events:
                yield event


async def _rewritten(
    events: AsyncIterator[Event],
    text: Holdback,
    arguments: Callable[[], Holdback] | None,
    part: Callable[[Part], Part],
) -> AsyncIterator[Event]:
    """``events`` with their text passed through ``text``, each tool call's arguments
    through a holdback of its own that ``arguments`` makes (``None``: as they come), and the
    parts a ``Done`` brings through ``part``."""
    held_arguments: dict[int, Holdback] = {}
    async with _closing(events):
        async for event in events:
            if isinstance(event, TextDelta):
                if ready := text.feed(event.text):
                    yield TextDelta(ready)
            elif isinstance(event, ToolCallDelta) and arguments is not None:
                held = held_arguments.setdefault(event.index, arguments())
                yield attrs.evolve(event, arguments=held.feed(event.arguments))
            elif isinstance(event, Done):
                if rest := text.end():
                    yield TextDelta(rest)
                for index, held in held_arguments.items():
                    if rest := held.end():
                        yield ToolCallDelta(index, arguments=rest)
                yield attrs.evolve(event, parts=tuple(part(each) for each in event.parts))
            else:
                yield event


def _spliced(text: str, start: int, end: int, found: list[Found], replacement: Replacement) -> str:
    """``text[start:end]`` with each of ``found`` (which lie in it, in order) replaced."""
    if not found:
        return text[start:end]
    pieces, at = [], start
    for value in found:
        pieces += [text[at : value.start], replacement(value.entity, text[value.start : value.end])]
        at = value.end
    pieces.append(text[at:end])
    return "".join(pieces)


def _restore_split(known: Pseudonyms, quote: bool) -> Callable[[str, int, bool], tuple[str, int]]:
    def split(text: str, start: int, final: bool) -> tuple[str, int]:
        cut = len(text) if final else token_open_from(text, start)
        return known.restore(text[start:cut], quote), cut

    return split


def _without_map(message: Message) -> Message:
    if METADATA_KEY not in message.metadata:
        return message
    return attrs.evolve(message, metadata={k: v for k, v in message.metadata.items() if k != METADATA_KEY})


class _closing:
    """Closes a stream that is left before its end (the caller broke off, an error)."""

    def __init__(self, events: AsyncIterator[Any]) -> None:
        self.events = events

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        aclose = getattr(self.events, "aclose", None)
        if aclose is not None:
            await aclose()
