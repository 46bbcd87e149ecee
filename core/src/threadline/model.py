"""The data model: attrs classes, and the one cattrs converter that turns them into JSON and back.

Every record is immutable; change one with :func:`attrs.evolve`. The JSON form of a
top-level value carries ``"v": FORMAT_VERSION`` so that stored data written by a newer
threadline is refused instead of misread.
"""

from __future__ import annotations

import base64
import enum
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NoReturn, TypeVar, cast, get_args, get_origin

import attrs
import cattrs
import cattrs.cols
from attrs import field, frozen
from cattrs.errors import AttributeValidationNote, ForbiddenExtraKeysError, IterableValidationNote
from cattrs.strategies import configure_tagged_union

from threadline.errors import DataFormatError, ProviderUnavailable

FORMAT_VERSION: Final = 1
#: the longest value (as Python writes it) an error repeats; a longer one may be a secret
_SHOWN_LENGTH: Final = 20

T = TypeVar("T")


def new_id() -> str:
    """A 32-character hex id whose first 12 characters are the time in ms, so ids sort by age."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def utcnow() -> datetime:
    return datetime.now(UTC)


# attrs converters; one per element type, as mypy's attrs plugin cannot follow a generic one


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _parts(value: Iterable[Part]) -> tuple[Part, ...]:
    return tuple(value)


def _messages(value: Iterable[Message]) -> tuple[Message, ...]:
    return tuple(value)


def _tool_specs(value: Iterable[ToolSpec]) -> tuple[ToolSpec, ...]:
    return tuple(value)


class FrozenDict(dict[str, Any]):
    """What a record's mappings (``metadata``, ``provider_state``, ``arguments``, ...) are: a
    dict that refuses every change with ``TypeError``. Still a dict, so ``json.dumps`` and
    ``isinstance(value, dict)`` take it; ``dict(value)`` is a copy to change. Only the top
    level is frozen: the values inside are as given."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a record's mappings cannot be changed: change a copy, dict(...), and attrs.evolve the record")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return type(self), (dict(self),)  # a copy, a deep copy or a pickle builds it whole


MAX_DEPTH: Final = 64  # lists and tables inside a record's mappings, at most


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A frozen copy: a record's mapping cannot be changed through the record, nor by whoever passed it in."""
    if not value:
        return FrozenDict()
    _check_depth(value)
    return FrozenDict(value)


def _check_depth(value: Any) -> None:
    """Refuse a value nested deeper than ``MAX_DEPTH``: JSON, SQLite's JSON functions and the
    converter would fail on it later, when storing or exporting, instead of here."""
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH):
        level = [inner for item in level for inner in _children(item) if isinstance(inner, Mapping | list | tuple)]
        if not level:
            return
    raise ValueError(f"nested more than {MAX_DEPTH} levels deep")


def _children(value: Any) -> Iterable[Any]:
    return value.values() if isinstance(value, Mapping) else value


def _frozen_optional_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else _frozen_mapping(value)


# ---------------------------------------------------------------------------
# Parts: what a message is made of
# ---------------------------------------------------------------------------


@frozen(weakref_slot=False)  # built by unchecked_constructor
class Text:
    """Plain text. ``provider_data`` holds what only the provider that wrote it may see again."""

    text: str = field(validator=attrs.validators.instance_of(str))
    provider_data: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)


def _one_source(instance: Image | File, _attribute: Any, _value: Any) -> None:
    if (instance.data is None) == (instance.url is None):
        raise ValueError(f"{type(instance).__name__} needs exactly one of data= (bytes) or url= (str)")


@frozen
class Image:
    """An image given as raw bytes or as a URL, with its media type (``image/png``)."""

    media_type: str = field(validator=attrs.validators.matches_re(r"image/[\w.+-]+"))
    data: bytes | None = field(default=None, validator=_one_source)
    url: str | None = None


@frozen
class File:
    """A document (a PDF, a text file) given as bytes or as a URL."""

    media_type: str
    data: bytes | None = field(default=None, validator=_one_source)
    url: str | None = None
    name: str | None = None


@frozen
class ToolCall:
    """The model asks to run tool ``name`` with ``arguments``; ``id`` pairs it with its result."""

    id: str
    name: str
    arguments: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    provider_data: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)


@frozen
class ToolResult:
    """What running the tool call ``call_id`` gave; ``is_error`` when the tool failed."""

    call_id: str
    content: str
    is_error: bool = False


Part = Text | Image | File | ToolCall | ToolResult
"""What a message is made of."""
PART_TAGS: Final[Mapping[type, str]] = {
    Text: "text",
    Image: "image",
    File: "file",
    ToolCall: "tool_call",
    ToolResult: "tool_result",
}


def as_parts(content: str | Part | Sequence[Part]) -> tuple[Part, ...]:
    """Accept a string, one part or a sequence of parts; always return a tuple of parts."""
    if isinstance(content, str):
        return (Text(content),)
    if isinstance(content, tuple(PART_TAGS)):
        return (content,)  # type: ignore[return-value]
    parts = tuple(content)  # type: ignore[arg-type]
    for part in parts:
        if not isinstance(part, tuple(PART_TAGS)):
            raise TypeError(f"expected a str or message parts (Text, Image, File, ...), got {type(part).__name__}")
    return parts


# ---------------------------------------------------------------------------
# Messages and sessions
# ---------------------------------------------------------------------------


class Role(enum.StrEnum):
    """Who a message is from; ``tool`` messages hold the results of the tools the model called."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class MessageStatus(enum.StrEnum):
    """``failed``: a user message whose reply failed; ``incomplete``: a reply cut off mid-stream."""

    OK = "ok"
    FAILED = "failed"
    INCOMPLETE = "incomplete"


class SessionStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


@frozen(weakref_slot=False)  # built by unchecked_constructor
class Usage:
    """Tokens a call consumed; ``cached_tokens`` is the part of the input served from a cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = None

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost is None and other.cost is None else (self.cost or 0.0) + (other.cost or 0.0)
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            cost,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _role(value: Role | str) -> Role:
    return value if type(value) is Role else Role(value)


@frozen(weakref_slot=False)  # built by unchecked_constructor
class Message:
    """One turn. ``seq`` numbers a session's messages 1, 2, 3, ... with no gaps."""

    session_id: str
    seq: int
    role: Role = field(converter=_role)
    parts: tuple[Part, ...] = field(converter=_parts)
    id: str = field(factory=new_id)
    created_at: datetime = field(factory=utcnow)
    usage: Usage | None = None
    status: MessageStatus = field(default=MessageStatus.OK, converter=MessageStatus)
    error: str | None = None
    provider: str | None = None
    model: str | None = None
    metadata: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)

    @property
    def text(self) -> str:
        """The text parts joined: what a person would read."""
        return "".join(p.text for p in self.parts if isinstance(p, Text))

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls among the parts."""
        return [p for p in self.parts if isinstance(p, ToolCall)]


@frozen
class SessionRecord:
    """A session as stored. ``version`` rises by one with every update (optimistic locking);
    ``message_count`` and ``usage`` are kept by the storage as messages are appended."""

    id: str = field(factory=new_id)
    tenant: str = "default"
    user_id: str | None = None
    provider: str = "echo"
    model: str | None = None
    system_prompt: str | None = None
    template: str | None = None
    title: str | None = None
    tools: tuple[str, ...] = field(default=(), converter=_strings)
    status: SessionStatus = field(default=SessionStatus.ACTIVE, converter=SessionStatus)
    created_at: datetime = field(factory=utcnow, validator=lambda _s, a, v: _require_offset(a.name, v))
    updated_at: datetime = field(factory=utcnow, validator=lambda _s, a, v: _require_offset(a.name, v))
    version: int = 1
    message_count: int = 0
    usage: Usage = field(factory=Usage)
    metadata: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    provider_state: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)


@frozen
class Revision:
    """An edit of a session's history, and what it replaced, kept: revision ``number`` (1 for
    a session's first) replaced the messages after ``after_seq`` (``replaced``, as they were
    stored) with ``added`` new ones."""

    session_id: str
    number: int = field(validator=attrs.validators.ge(1))
    after_seq: int = field(validator=attrs.validators.ge(0))
    replaced: tuple[Message, ...]
    added: int = field(validator=attrs.validators.ge(0))
    created_at: datetime = field(factory=utcnow, validator=lambda _s, a, v: _require_offset(a.name, v))


@frozen
class SessionPage:
    """One page of a listing; pass ``next_cursor`` back to get the next (``None``: no more)."""

    items: tuple[SessionRecord, ...]
    next_cursor: str | None = None


@frozen
class SessionQuery:
    """What :meth:`Storage.list_sessions` filters by. Newest activity first."""

    tenant: str = "default"
    user_id: str | None = None
    status: SessionStatus | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    limit: int = field(default=50, validator=[attrs.validators.ge(1), attrs.validators.le(1000)])
    cursor: str | None = None


@frozen
class DeletedCounts:
    """How many sessions, and messages in them, a deletion removed."""

    sessions: int
    messages: int


# ---------------------------------------------------------------------------
# Provider calls
# ---------------------------------------------------------------------------


@frozen
class Capabilities:
    """What a provider's model can do; the kernel checks requests against it before any call."""

    streaming: bool = True
    tools: bool = True
    vision: bool = False
    pdf: bool = False
    native_state: bool = False
    max_context: int | None = None
    #: the provider can hold a reply to a JSON schema (:attr:`Request.output`); without it,
    #: ``send(output=...)`` asks for the JSON in the system prompt
    structured_output: bool = False


@frozen
class ToolSpec:
    """A tool as the model sees it: a name, a description and a JSON schema for its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(converter=_frozen_mapping)


@frozen
class OutputSchema:
    """The shape a reply must have (``send(output=...)``): a JSON schema, under a ``name``
    providers accept (letters, digits, ``_`` and ``-``). ``strict`` when the schema meets
    OpenAI's strict rules (every object closed, every property required), so a provider
    can promise a match rather than try for one."""

    name: str = field(validator=attrs.validators.matches_re(r"[A-Za-z0-9_-]{1,64}"))
    schema: Mapping[str, Any] = field(converter=_frozen_mapping)
    strict: bool = False


@frozen
class CallOptions:
    """A call's options: ``send``'s ``max_tokens``, ``temperature``, ``stop``, and its
    ``options`` as ``extra``, merged into the provider's request body."""

    temperature: float | None = None
    max_tokens: int | None = field(default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    stop: tuple[str, ...] = field(default=(), converter=_strings)
    extra: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)


@frozen
class Request:
    """Everything a provider needs for one call: the history is oldest first."""

    model: str | None
    messages: tuple[Message, ...] = field(converter=_messages)
    system_prompt: str | None = None
    tools: tuple[ToolSpec, ...] = field(default=(), converter=_tool_specs)
    options: CallOptions = field(factory=CallOptions)
    provider_state: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    #: the JSON schema the reply must match, for a provider whose capabilities say
    #: ``structured_output``: it asks for it the provider's own way
    output: OutputSchema | None = None


@frozen
class Response:
    """A complete reply. ``provider_state`` replaces the session's when not ``None``."""

    parts: tuple[Part, ...] = field(converter=_parts)
    usage: Usage = field(factory=Usage)
    finish_reason: str = "stop"
    model: str | None = None
    provider_state: Mapping[str, Any] | None = field(default=None, converter=_frozen_optional_mapping)


@frozen(weakref_slot=False)  # built by unchecked_constructor
class TextDelta:
    """A piece of the reply's text, as it streams."""

    text: str


@frozen
class ToolCallDelta:
    """A piece of a streamed tool call. ``index`` is the call's position among this reply's
    tool calls (0, 1, ...); ``id`` and ``name`` come with the first piece, ``arguments`` is a
    fragment of the JSON arguments to append."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@frozen(weakref_slot=False)  # built by unchecked_constructor
class Done:
    """The end of a stream. From a provider it carries usage; from a session also the stored ``message``.

    ``parts``, when a provider gives them, are the whole reply as the provider assembled it,
    with what the deltas cannot carry (``provider_data`` such as thinking signatures); they
    are stored instead of the parts assembled from the deltas. A middleware that rewrites
    deltas must rewrite these too.
    """

    usage: Usage = field(factory=Usage)
    finish_reason: str = "stop"
    model: str | None = None
    provider_state: Mapping[str, Any] | None = field(default=None, converter=_frozen_optional_mapping)
    message: Message | None = None
    parts: tuple[Part, ...] = field(default=(), converter=_parts)


Event = TextDelta | ToolCallDelta | Done
"""What a stream yields."""


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


# The hooks below are made when the converter is first built or first meets a type, then kept:
# a mutation tool's switched mutants never reach them (test_model tests what they do).
def _strict(cls: type, accepts: tuple[type, ...]) -> Any:  # pragma: no mutate block
    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, accepts) or (isinstance(value, bool) and bool not in accepts):
            raise TypeError(f"expected {cls.__name__}, got {type(value).__name__}")  # never the value: a secret
        return cls(value)

    return structure


def _no_strings(cls: Any, conv: cattrs.Converter) -> Any:  # pragma: no mutate block
    """A sequence hook that refuses a string (which would otherwise become a list of letters)."""
    factory = (
        cattrs.cols.homogenous_tuple_structure_factory
        if get_origin(cls) is tuple
        else cattrs.cols.list_structure_factory
    )
    structure_items = factory(cls, conv)

    def structure(value: Any, type_: Any) -> Any:
        if isinstance(value, str | bytes | Mapping):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return structure_items(value, type_)

    return structure


def _not_one_of(value: Any, allowed: Iterable[Any]) -> str:
    """What is wrong with ``value`` where only ``allowed`` values are: what it is, and them."""
    shown = repr(value)
    if len(shown) > _SHOWN_LENGTH:
        shown = f"a long {type(value).__name__}"
    return f"{shown} is not one of {', '.join(map(repr, allowed))}"


def _is_literal(type_: Any) -> bool:  # pragma: no mutate block (asked once per type, then kept)
    return get_origin(type_) is Literal


def _literal(type_: Any) -> Any:  # pragma: no mutate block (a hook the converter keeps: see _strict)
    """A ``Literal`` hook: the value is one of the literal's, of its type (``1`` is not ``True``)."""
    allowed = get_args(type_)

    def structure(value: Any, _: Any) -> Any:
        for option in allowed:
            if value == option and type(value) is type(option):
                return option
        raise ValueError(_not_one_of(value, allowed))

    return structure


def _require_offset(name: str, when: datetime) -> None:
    """A session's times carry their UTC offset: one without cannot be ordered against the others."""
    if when.tzinfo is None:
        raise ValueError(f"{name} {when.isoformat()} has no UTC offset; use datetime.now(UTC) or .replace(tzinfo=UTC)")


def _aware_datetime(value: Any, _: Any) -> datetime:
    """An ISO 8601 time with its offset: a time without one cannot be ordered against the
    others (every stored time is UTC)."""
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 time, got {type(value).__name__}")
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset; write it as {value}+00:00")
    return when


def _make_converter() -> cattrs.Converter:  # pragma: no mutate block
    conv = cattrs.Converter(forbid_extra_keys=True)
    for cls, accepts in ((str, (str,)), (int, (int,)), (float, (int, float)), (bool, (bool,))):
        conv.register_structure_hook(cls, _strict(cls, accepts))
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(datetime, _aware_datetime)
    conv.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
    conv.register_structure_hook(bytes, lambda v, _: base64.b64decode(v))
    conv.register_structure_hook_factory(
        lambda t: cattrs.cols.is_sequence(t) and bool(get_args(t)), lambda t: _no_strings(t, conv)
    )
    conv.register_structure_hook_factory(_is_literal, _literal)
    configure_tagged_union(Part, conv, tag_generator=lambda cls: PART_TAGS[cls], tag_name="type")
    part_classes = {tag: cls for cls, tag in PART_TAGS.items()}

    def structure_part(value: Any, _: Any) -> Any:
        tag = value.get("type") if isinstance(value, Mapping) else None
        if tag not in part_classes:
            raise ValueError(f"unknown part type {tag!r}; the types are: {', '.join(part_classes)}")
        return conv.structure({k: v for k, v in value.items() if k != "type"}, part_classes[tag])

    conv.register_structure_hook(Part, structure_part)
    return conv


converter: Final = _make_converter()


@frozen
class Problem:
    """One thing wrong in data being structured: where, as a path from the top (``.replies[0].error``;
    empty for the top itself), and what, saying what the value should be."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.what} @ ${self.path}"


def describe_error(exc: BaseException, path: str = "") -> list[Problem]:
    """Each problem in ``exc``, an error of the converter (which validates in detail)."""
    if not isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        return [_problem(exc, path)]
    with_notes, without = exc.group_exceptions()
    found = [(inner, path + _step(note)) for inner, note in with_notes] + [(inner, path) for inner in without]
    return [problem for inner, where in found for problem in describe_error(inner, where)]


def _step(note: AttributeValidationNote | IterableValidationNote) -> str:
    return f".{note.name}" if isinstance(note, AttributeValidationNote) else f"[{note.index!r}]"


def _problem(exc: BaseException, path: str) -> Problem:
    if isinstance(exc, ValueError) and len(exc.args) == 4 and isinstance(exc.args[1], attrs.Attribute):
        message, attribute, allowed, value = exc.args  # an attrs validator's: in_ gives the allowed values
        what = _not_one_of(value, allowed) if isinstance(allowed, Iterable) else message
        return Problem(f"{path}.{attribute.name}", what)
    if isinstance(exc, ForbiddenExtraKeysError) and attrs.has(exc.cl):
        keys = ", ".join(a.name for a in attrs.fields(exc.cl))
        return Problem(path, f"extra fields found ({', '.join(sorted(exc.extra_fields))}); the keys are: {keys}")
    if isinstance(exc, AttributeError) and exc.name in ("keys", "items"):  # a record or mapping was expected
        return Problem(path, f"expected a mapping, got {type(exc.obj).__name__}")
    if type(exc) in (ValueError, TypeError) and str(exc):
        return Problem(path, str(exc))
    return Problem(path, cattrs.v.format_exception(exc, None))


def dump(value: Any) -> dict[str, Any]:
    """The versioned JSON-ready form of a record (``{"v": 1, ...}``)."""
    data: dict[str, Any] = converter.unstructure(value)
    return {"v": FORMAT_VERSION, **data}


def load(data: Mapping[str, Any], cls: type[T]) -> T:
    """Read what :func:`dump` wrote. Data from a newer format is refused, never guessed at."""
    fields = dict(data)
    version = fields.pop("v", None)
    if version != FORMAT_VERSION:
        raise DataFormatError(
            f"{cls.__name__} data has format version {version!r}; this threadline reads version {FORMAT_VERSION}"
            + (" (upgrade threadline to read it)" if isinstance(version, int) and version > FORMAT_VERSION else "")
        )
    try:
        return converter.structure(fields, cls)
    except cattrs.BaseValidationError as exc:
        raise DataFormatError(f"not a valid {cls.__name__}: {'; '.join(map(str, describe_error(exc)))}") from exc
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"not a valid {cls.__name__}: {exc}") from exc


Record = SessionRecord | Message | Revision
_RECORD_TYPES: Final[Mapping[str, type]] = {"session": SessionRecord, "message": Message, "revision": Revision}
_RECORD_KINDS: Final[Mapping[type, str]] = {cls: kind for kind, cls in _RECORD_TYPES.items()}


def dump_record(record: Record) -> str:
    """One line of an export: ``{"v": 1, "type": "session" | "message" | "revision", ...}``."""
    return json.dumps({"type": _RECORD_KINDS[type(record)], **dump(record)}, ensure_ascii=False, separators=(",", ":"))


def load_record(line: str | bytes) -> Record:
    """Read one line that :func:`dump_record` wrote: text that could be stored and written
    out again (no lone surrogate), of a known record type."""
    data = _json_object(line, "record")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise DataFormatError("a string holds a lone surrogate (\\ud800-\\udfff), which is not text") from None
    kind = data.pop("type", None)
    if not isinstance(kind, str) or kind not in _RECORD_TYPES:
        raise DataFormatError(f"record type {kind!r} is not one of {', '.join(_RECORD_TYPES)}")
    record: Record = load(data, _RECORD_TYPES[kind])  # nesting is capped: see _check_depth
    _check_plausible(record)
    return record


def _check_plausible(record: Record) -> None:
    """What a record read from outside may not hold although its types allow it."""
    if isinstance(record, Revision):
        for message in record.replaced:
            _check_plausible(message)
        if record.created_at > utcnow() + timedelta(days=1):
            raise DataFormatError(f"time {record.created_at.isoformat()} is in the future")
        return
    usage = record.usage
    if usage is not None and min(usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cost or 0) < 0:
        raise DataFormatError("usage counts must not be negative")
    latest = utcnow() + timedelta(days=1)  # a day of clock skew between machines
    for when in (record.created_at, *((record.updated_at,) if isinstance(record, SessionRecord) else ())):
        if when > latest:
            raise DataFormatError(f"time {when.isoformat()} is in the future")


def _json_object(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"not JSON: {exc}") from exc
    except UnicodeDecodeError:
        raise DataFormatError("not UTF-8 text") from None
    except RecursionError:
        raise DataFormatError("nested too deeply") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


def dump_parts(parts: tuple[Part, ...]) -> str:
    """A message's parts as storage keeps them: ``{"v": 1, "parts": [...]}``."""
    if all(type(part) is Text and not part.provider_data for part in parts):  # the common case, fast
        items: list[Any] = [{"type": "text", "text": part.text} for part in parts]  # type: ignore[union-attr]
    else:
        items = converter.unstructure(parts, unstructure_as=tuple[Part, ...])
    return json.dumps({"v": FORMAT_VERSION, "parts": items}, ensure_ascii=False, separators=(",", ":"))


def message_extra(message: Message) -> dict[str, Any] | None:
    """What a message rarely has, for a storage plugin to keep beside the fields every
    message has: ``error``, ``provider``, ``model``, ``usage`` (``[input, output, cached,
    cost]``) and ``metadata``, those it has; ``None`` when it has none of them."""
    extra: dict[str, Any] = {}
    if message.error is not None:
        extra["error"] = message.error
    if message.provider is not None:
        extra["provider"] = message.provider
    if message.model is not None:
        extra["model"] = message.model
    if (usage := message.usage) is not None:
        extra["usage"] = [usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cost]
    if message.metadata:
        extra["metadata"] = dict(message.metadata)
    return extra or None


def load_parts(text: str | bytes) -> tuple[Part, ...]:
    """Read what :func:`dump_parts` wrote."""
    data = _json_object(text, "parts")
    if data.get("v") != FORMAT_VERSION or not isinstance(data.get("parts"), list):
        return load(data, StoredParts).parts
    items = data["parts"]
    if all(type(item) is dict and item.keys() == {"type", "text"} and item["type"] == "text" for item in items):
        return tuple(Text(item["text"]) for item in items)
    return load(data, StoredParts).parts


@frozen
class StoredParts:
    parts: tuple[Part, ...] = field(converter=_parts)


def dumps(value: Any) -> str:
    return json.dumps(dump(value), ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes, cls: type[T]) -> T:
    return load(_json_object(text, cls.__name__), cls)


@attrs.define
class StreamAssembler:
    """Builds the parts of a reply from its stream events, as they arrive. A streamed tool
    call whose arguments are not a JSON object is a malformed reply: ``ProviderUnavailable``."""

    text: list[str] = attrs.Factory(list)
    calls: dict[int, list[str]] = attrs.Factory(dict)
    call_heads: dict[int, tuple[str, str]] = attrs.Factory(dict)
    done: Done | None = None

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            if event.index not in self.call_heads:
                self.call_heads[event.index] = (event.id or f"call_{event.index}", event.name or "")
                self.calls[event.index] = []
            self.calls[event.index].append(event.arguments)
        else:
            self.done = event

    @property
    def started(self) -> bool:
        return bool(self.text or self.calls)

    def parts(self, *, complete: bool = True) -> tuple[Part, ...]:
        """The parts so far (the ``Done`` event's own, when it brought them); with
        ``complete=False`` tool calls cut off mid-stream are left out."""
        if self.done is not None and self.done.parts:
            return self.done.parts
        parts: list[Part] = [Text("".join(self.text))] if self.text else []
        for index in sorted(self.call_heads):
            call_id, name = self.call_heads[index]
            try:
                arguments = json.loads("".join(self.calls[index]) or "{}")
            except json.JSONDecodeError:
                arguments = None
            if not isinstance(arguments, dict):
                if not complete:
                    continue
                raise ProviderUnavailable(f"tool call {name!r} arrived with arguments that are not a JSON object")
            parts.append(ToolCall(call_id, name, arguments))
        return tuple(parts)


def unchecked_constructor(cls: type[T]) -> Callable[..., T]:
    """A constructor for ``cls`` that takes every field by keyword and runs no converter,
    validator or default: for storage plugins rebuilding records from rows they wrote
    themselves, where the checks already ran, and for providers making one event per
    streamed chunk. A mapping field is copied into a :class:`FrozenDict`, unless it is one
    already.

    It fills a twin of ``cls`` (the same slots, not frozen) with plain attribute stores, then
    makes the object a ``cls``: about three times as fast as ``cls(...)``. The twin's layout
    must match, so ``cls`` is a slotted attrs class declared with ``weakref_slot=False``."""
    slots = getattr(cls, "__slots__", ("__weakref__",))
    if "__weakref__" in slots:
        raise TypeError(f"unchecked_constructor needs a slotted attrs class with weakref_slot=False, not {cls!r}")
    names = [attribute.name for attribute in attrs.fields(cast(Any, cls))]
    source = (
        f"def build(*, {', '.join(names)}):\n    self = new(twin)\n"
        + "".join(f"    self.{name} = {_unchecked_value(cls, name)}\n" for name in names)
        + "    self.__class__ = cls\n    return self\n"
    )
    twin = type(f"_Unchecked{cls.__name__}", (), {"__slots__": slots})
    namespace: dict[str, Any] = {"new": object.__new__, "twin": twin, "cls": cls, "frozen": FrozenDict}
    exec(source, namespace)  # the technique attrs itself uses to generate __init__
    build: Callable[..., T] = namespace["build"]
    return build


def _unchecked_value(cls: type, name: str) -> str:
    """The expression that :func:`unchecked_constructor` stores for field ``name``."""
    converter: object = attrs.fields_dict(cls)[name].converter
    if converter is _frozen_mapping:
        return f"{name} if type({name}) is frozen else frozen({name})"
    if converter is _frozen_optional_mapping:
        return f"{name} if {name} is None or type({name}) is frozen else frozen({name})"
    return name
