"""The data model: every value survives JSON, and bad data is refused with a reason."""

from __future__ import annotations

import copy
import json
import pickle
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline import (
    DataFormatError,
    File,
    Image,
    Message,
    Part,
    ProviderUnavailable,
    SessionRecord,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from threadline.model import (
    FORMAT_VERSION,
    CallOptions,
    Done,
    FrozenDict,
    Request,
    Response,
    Role,
    SessionStatus,
    StreamAssembler,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    as_parts,
    dump,
    dump_parts,
    dump_record,
    dumps,
    load,
    load_parts,
    load_record,
    loads,
    message_extra,
    unchecked_constructor,
)

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
moments = st.datetimes(max_value=datetime(2026, 1, 1), timezones=st.just(UTC))  # an exported time is past
media = st.sampled_from(["image/png", "image/jpeg", "image/webp"])

parts = st.one_of(
    st.builds(Text, st.text(), provider_data=json_objects),
    st.builds(Image, media, data=st.binary(max_size=64)),
    st.builds(Image, media, url=st.text(min_size=1)),
    st.builds(
        File,
        st.sampled_from(["application/pdf", "text/plain"]),
        data=st.binary(max_size=64),
        name=st.none() | st.text(),
    ),
    st.builds(ToolCall, st.text(min_size=1), st.text(min_size=1), json_objects, provider_data=json_objects),
    st.builds(ToolResult, st.text(), st.text(), st.booleans()),
)
usages = st.builds(
    Usage, st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9), st.none() | st.floats(0, 100)
)
messages = st.builds(
    Message,
    session_id=st.text(min_size=1),
    seq=st.integers(1, 10**9),
    role=st.sampled_from(Role),
    parts=st.lists(parts, max_size=4).map(tuple),
    created_at=moments,
    usage=st.none() | usages,
    metadata=json_objects,
)
sessions = st.builds(
    SessionRecord,
    tenant=st.text(min_size=1),
    user_id=st.none() | st.text(),
    system_prompt=st.none() | st.text(),
    title=st.none() | st.text(),
    tools=st.lists(st.text(min_size=1), max_size=3).map(tuple),
    status=st.sampled_from(SessionStatus),
    created_at=moments,
    updated_at=moments,
    version=st.integers(1, 1000),
    usage=usages,
    metadata=json_objects,
    provider_state=json_objects,
)


@given(messages)
def test_every_message_round_trips_through_json(message: Message) -> None:
    assert loads(dumps(message), Message) == message


@given(sessions)
def test_every_session_round_trips_through_json(session: SessionRecord) -> None:
    assert loads(dumps(session), SessionRecord) == session


@given(st.one_of(messages, sessions))
def test_export_lines_round_trip(record: Message | SessionRecord) -> None:
    line = dump_record(record)
    assert "\n" not in line
    assert load_record(line) == record


def test_json_carries_the_format_version_and_tags_parts() -> None:
    message = Message("s", 1, Role.USER, (Text("hi"), ToolResult("c1", "ok")))
    data = json.loads(dumps(message))
    assert data["v"] == FORMAT_VERSION
    assert [p["type"] for p in data["parts"]] == ["text", "tool_result"]
    assert data["created_at"].endswith("+00:00")


def test_bytes_are_base64_in_json() -> None:
    data = dump(Message("s", 1, Role.USER, (Image("image/png", data=b"\x00\xff"),)))
    assert data["parts"][0]["data"] == "AP8="


def test_newer_format_is_refused_with_a_reason() -> None:
    data = {**dump(Message("s", 1, Role.USER, (Text("hi"),))), "v": FORMAT_VERSION + 1}
    with pytest.raises(DataFormatError, match="upgrade threadline"):
        load(data, Message)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"seq": "one"}, "expected int"),
        ({"role": "wizard"}, "wizard"),
        ({"parts": [{"type": "hologram"}]}, "hologram"),
        ({"surprise": 1}, "extra fields"),
    ],
)
def test_malformed_records_are_refused(change: dict[str, object], reason: str) -> None:
    data = {**dump(Message("s", 1, Role.USER, (Text("hi"),))), **change}
    with pytest.raises(DataFormatError, match=reason):
        load(data, Message)


def test_image_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Image("image/png")
    with pytest.raises(ValueError, match="exactly one"):
        Image("image/png", data=b"x", url="https://x")


def test_as_parts_accepts_text_parts_and_lists() -> None:
    assert as_parts("hi") == (Text("hi"),)
    assert as_parts(Text("a")) == (Text("a"),)
    assert as_parts([Text("a"), ToolResult("c", "r")]) == (Text("a"), ToolResult("c", "r"))
    with pytest.raises(TypeError, match="expected a str or message parts"):
        as_parts([42])  # type: ignore[list-item]


def test_usage_adds_up() -> None:
    assert Usage(1, 2, 3) + Usage(10, 20, 30, 0.5) == Usage(11, 22, 33, 0.5)
    assert (Usage(1, 2) + Usage(1, 2)).cost is None
    assert (Usage(1, 2, 3, 0.5) + Usage(10, 20, 30)).cost == 0.5  # no cost known adds nothing


def test_assembler_joins_text_and_tool_call_fragments() -> None:
    assembler = StreamAssembler()
    for event in [
        TextDelta("Let me "),
        TextDelta("check."),
        ToolCallDelta(0, "c1", "weather", '{"ci'),
        ToolCallDelta(1, "c2", "time", "{}"),
        ToolCallDelta(0, arguments='ty": "Oslo"}'),
    ]:
        assembler.add(event)
    assert assembler.parts() == (
        Text("Let me check."),
        ToolCall("c1", "weather", {"city": "Oslo"}),
        ToolCall("c2", "time", {}),
    )


def test_assembler_drops_a_cut_off_tool_call_from_a_partial_reply() -> None:
    assembler = StreamAssembler()
    assembler.add(TextDelta("Hmm"))
    assembler.add(ToolCallDelta(0, "c1", "weather", '{"ci'))
    assert assembler.parts(complete=False) == (Text("Hmm"),)
    with pytest.raises(ProviderUnavailable, match="not a JSON object"):
        assembler.parts()


@pytest.mark.parametrize("arguments", ["[1, 2]", '"Oslo"', "42"])
def test_assembler_refuses_tool_call_arguments_that_are_not_an_object(arguments: str) -> None:
    assembler = StreamAssembler()
    assembler.add(ToolCallDelta(0, "c1", "weather", arguments))
    assert assembler.parts(complete=False) == ()
    with pytest.raises(ProviderUnavailable, match="'weather' arrived with arguments that are not a JSON object"):
        assembler.parts()


@given(st.lists(parts, max_size=4).map(tuple))
def test_stored_parts_round_trip(value: tuple[Part, ...]) -> None:
    assert load_parts(dump_parts(value)) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"v": 2, "parts": []}', "upgrade threadline"),
        ('{"v": 1, "parts": [{"type": "zzz"}]}', "unknown part type 'zzz'"),
        ('{"v": 1, "parts": [1]}', "not a valid StoredParts"),
        ("[]", "expected a JSON object"),
    ],
)
def test_bad_stored_parts_are_refused(text: str, reason: str) -> None:
    with pytest.raises(DataFormatError, match=reason):
        load_parts(text)


@given(messages)
def test_the_unchecked_constructor_builds_equal_records(message: Message) -> None:
    build = unchecked_constructor(Message)
    rebuilt = build(**{a.name: getattr(message, a.name) for a in attrs.fields(Message)})
    assert rebuilt == message and type(rebuilt) is Message
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rebuilt.seq = 5  # type: ignore[misc]


def test_the_unchecked_constructor_takes_keywords_only() -> None:
    build = unchecked_constructor(Usage)
    with pytest.raises(TypeError, match="positional"):
        build(1, 2, 3, None)
    with pytest.raises(TypeError, match="cost"):
        build(input_tokens=1, output_tokens=2, cached_tokens=3)
    assert build(input_tokens=1, output_tokens=2, cached_tokens=3, cost=None) == Usage(1, 2, 3)


def test_the_unchecked_constructor_refuses_a_class_it_cannot_build() -> None:
    @attrs.frozen
    class WithWeakref:
        value: int

    with pytest.raises(TypeError, match="weakref_slot=False"):
        unchecked_constructor(WithWeakref)


def test_the_unchecked_constructor_freezes_mappings() -> None:
    metadata = {"k": "v"}
    text = unchecked_constructor(Text)(text="hi", provider_data=metadata)
    done = unchecked_constructor(Done)(
        usage=Usage(), finish_reason="stop", model=None, provider_state=None, message=None, parts=()
    )
    assert text == Text("hi", provider_data={"k": "v"}) and done.provider_state is None
    assert type(text.provider_data) is FrozenDict
    metadata["k"] = "w"
    assert text.provider_data == {"k": "v"}
    frozen = FrozenDict(metadata)
    assert unchecked_constructor(Text)(text="hi", provider_data=frozen).provider_data is frozen  # no copy


def mappings_of(record: Any) -> list[Any]:
    return [value for value in attrs.asdict(record, recurse=False).values() if isinstance(value, Mapping)]


@pytest.mark.parametrize(
    "record",
    [
        Message("s", 1, Role.USER, (Text("hi"),), metadata={"ip": "x"}),
        loads(dumps(Message("s", 1, Role.USER, (Text("hi"),), metadata={"ip": "x"})), Message),
        SessionRecord(metadata={"a": 1}, provider_state={"response_id": "r"}),
        Text("hi", provider_data={"sig": "s"}),
        ToolCall("c1", "weather", {"city": "Oslo"}, provider_data={"sig": "s"}),
        ToolSpec("weather", "The weather.", {"type": "object"}),
        CallOptions(extra={"top_k": 3}),
        Request(None, (), provider_state={"response_id": "r"}),
        Response((), provider_state={"response_id": "r"}),
        Done(provider_state={"response_id": "r"}),
    ],
    ids=lambda record: type(record).__name__,
)
def test_a_records_mappings_cannot_be_changed(record: object) -> None:
    mappings = mappings_of(record)
    assert mappings
    for value in mappings:
        assert type(value) is FrozenDict
        for change, arguments in ((value.__setitem__, ("k", 1)), (value.update, ({"k": 1},)), (value.clear, ())):
            with pytest.raises(TypeError, match="cannot be changed"):
                change(*arguments)


def test_a_record_keeps_its_own_copy_of_a_mapping_and_still_round_trips() -> None:
    metadata: dict[str, object] = {"ip": "x"}
    message = Message("s", 1, Role.USER, (Text("hi"),), metadata=metadata)
    metadata["ip"] = "y"
    assert message.metadata == {"ip": "x"}
    assert json.loads(dumps(message))["metadata"] == {"ip": "x"}
    assert json.loads(json.dumps(message.metadata)) == {"ip": "x"}  # still a dict to json and to SDKs
    assert attrs.evolve(message, seq=2).metadata == {"ip": "x"}
    for copied in (copy.copy(message), copy.deepcopy(message), pickle.loads(pickle.dumps(message))):
        assert copied == message and type(copied.metadata) is FrozenDict


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": [value]} if levels % 2 else {"a": value}
    return value


def test_mappings_nested_too_deep_are_refused_when_made() -> None:
    SessionRecord(metadata=nested(30))  # deep enough for anything real
    with pytest.raises(ValueError, match="nested more than 64 levels deep"):
        SessionRecord(metadata=nested(900))
    with pytest.raises(ValueError, match="nested more than 64 levels deep"):
        ToolCall("call_1", "f", nested(100))
    line = dump_record(SessionRecord()).replace('"metadata":{}', '"metadata":' + json.dumps(nested(900)))
    with pytest.raises(DataFormatError, match="nested more than 64 levels deep"):
        load_record(line)


def test_a_session_time_without_a_utc_offset_is_refused() -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="updated_at 2026-01-01T00:00:00 has no UTC offset"):
        SessionRecord(updated_at=naive)
    with pytest.raises(ValueError, match=r"created_at .* has no UTC offset"):
        attrs.evolve(SessionRecord(), created_at=naive)


# -- what a user reads when a record cannot be read: exact, so none of it goes missing ----

MESSAGE_DATA = dump(Message("s", 1, Role.USER, (Text("hi"),)))
BOTH_SOURCES = {"type": "image", "media_type": "image/png", "data": "eA==", "url": "https://x"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"seq": True}, "not a valid Message: expected int, got bool @ $.seq"),
        ({"seq": "3", "id": 5}, "not a valid Message: expected int, got str @ $.seq; expected str, got int @ $.id"),
        ({"created_at": 5}, "not a valid Message: expected an ISO 8601 time, got int @ $.created_at"),
        (
            {"parts": [BOTH_SOURCES]},
            "not a valid Message: Image needs exactly one of data= (bytes) or url= (str) @ $.parts[0]",
        ),
        (
            {"v": 2},
            "Message data has format version 2; this threadline reads version 1 (upgrade threadline to read it)",
        ),
        ({"v": "2"}, "Message data has format version '2'; this threadline reads version 1"),
        (
            {"parts": [{"type": "tool_call", "name": "x", "arguments": {}}]},
            "not a valid Message: required field missing @ $.parts[0].id",
        ),
        ({"metadata": "x"}, "not a valid Message: expected a mapping, got str @ $.metadata"),
        ({"usage": [1, 2]}, "not a valid Message: expected a mapping, got list @ $.usage"),
    ],
)
def test_a_record_that_cannot_be_read_says_exactly_what_is_wrong(change: dict[str, object], error: str) -> None:
    with pytest.raises(DataFormatError) as caught:
        load({**MESSAGE_DATA, **change}, Message)
    assert str(caught.value) == error


def test_a_list_field_given_a_string_is_refused_not_split_into_characters() -> None:
    with pytest.raises(DataFormatError) as caught:
        load({**dump(SessionRecord(id="x")), "tools": "abc"}, SessionRecord)
    assert str(caught.value) == "not a valid SessionRecord: expected a list, got str @ $.tools"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("[]", "expected a JSON object for record, got list"),
        ('{"type": "x"}', "record type 'x' is not one of session, message, revision"),
        ('{"type": "message", "s": "\\ud800"}', "a string holds a lone surrogate (\\ud800-\\udfff), which is not text"),
        ("[" * 100_000, "nested too deeply"),
        (b"\xff", "not UTF-8 text"),
        ("{nope", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ],
)
def test_an_export_line_that_cannot_be_read_says_exactly_what_is_wrong(line: str | bytes, error: str) -> None:
    with pytest.raises(DataFormatError) as caught:
        load_record(line)
    assert str(caught.value) == error


def test_other_json_that_is_not_an_object_names_what_was_expected() -> None:
    with pytest.raises(DataFormatError, match=r"^expected a JSON object for parts, got list$"):
        load_parts("[]")
    with pytest.raises(DataFormatError, match=r"^expected a JSON object for Message, got list$"):
        loads("[]", Message)


@pytest.mark.parametrize("usage", [Usage(-1, 0), Usage(0, -1), Usage(0, 0, -1), Usage(0, 0, 0, -0.5)])
def test_an_imported_message_with_negative_usage_is_refused(usage: Usage) -> None:
    line = dump_record(Message("s", 2, Role.ASSISTANT, (Text("x"),), usage=usage))
    with pytest.raises(DataFormatError, match=r"^usage counts must not be negative$"):
        load_record(line)


def test_an_imported_time_more_than_a_day_ahead_is_refused_and_clock_skew_is_not() -> None:
    skewed = Message("s", 1, Role.USER, (Text("x"),), created_at=datetime.now(UTC) + timedelta(hours=20))
    assert load_record(dump_record(skewed)) == skewed
    future = attrs.evolve(skewed, created_at=datetime.now(UTC) + timedelta(hours=30))
    with pytest.raises(DataFormatError, match=f"^time {re.escape(future.created_at.isoformat())} is in the future$"):
        load_record(dump_record(future))


def test_misuse_of_records_is_explained() -> None:
    with pytest.raises(TypeError) as frozen:
        FrozenDict({"a": 1})["a"] = 2  # type: ignore[index]
    assert str(frozen.value) == (
        "a record's mappings cannot be changed: change a copy, dict(...), and attrs.evolve the record"
    )
    with pytest.raises(ValueError, match=r"^Image needs exactly one of data= \(bytes\) or url= \(str\)$"):
        Image("image/png")
    with pytest.raises(TypeError, match=r"\(Text, Image, File, \.\.\.\), got int$"):
        as_parts([42])  # type: ignore[list-item]


# -- JSON as written: compact, UTF-8 as it is ----------------------------------------------


def test_json_is_written_compact_with_text_as_it_is() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    message = Message("s", 1, Role.USER, (Text("é", provider_data={"a": 1}),), id="i", created_at=when)
    assert dump_record(message) == (
        '{"type":"message","v":1,"session_id":"s","seq":1,"role":"user","parts":[{"text":"é","provider_data":'
        '{"a":1},"type":"text"}],"id":"i","created_at":"2026-01-01T00:00:00+00:00","usage":null,"status":"ok",'
        '"error":null,"provider":null,"model":null,"metadata":{}}'
    )
    assert dumps(Usage(1, 2)) == '{"v":1,"input_tokens":1,"output_tokens":2,"cached_tokens":0,"cost":null}'
    assert dump_parts(message.parts) == '{"v":1,"parts":[{"text":"é","provider_data":{"a":1},"type":"text"}]}'


def test_a_replys_provider_state_is_kept_frozen_or_left_out() -> None:
    assert Response(parts=(), provider_state=None).provider_state is None
    assert Done(provider_state=None).provider_state is None
    state = Response(parts=(), provider_state={"id": "r1"}).provider_state
    assert isinstance(state, FrozenDict) and state == {"id": "r1"}


def test_assembler_names_a_call_that_came_without_id_name_or_arguments() -> None:
    assembler = StreamAssembler()
    assembler.add(ToolCallDelta(0))
    assembler.add(ToolCallDelta(1, "c1", "now"))
    assert assembler.parts() == (ToolCall("call_0", "", {}), ToolCall("c1", "now", {}))


def test_assembler_keeps_the_whole_calls_after_a_cut_off_one_in_a_partial_reply() -> None:
    assembler = StreamAssembler()
    assembler.add(ToolCallDelta(0, "c0", "weather", '{"ci'))
    assembler.add(ToolCallDelta(1, "c1", "time", "{}"))
    assert assembler.parts(complete=False) == (ToolCall("c1", "time", {}),)


def test_message_extra_holds_what_a_message_rarely_has_and_nothing_else() -> None:
    plain = Message("s", 1, Role.USER, (Text("hi"),))
    assert message_extra(plain) is None
    rich = attrs.evolve(
        plain, error="cut off", provider="openai", model="m1", usage=Usage(3, 4, 1, 0.5), metadata={"k": [1]}
    )
    assert message_extra(rich) == {
        "error": "cut off", "provider": "openai", "model": "m1", "usage": [3, 4, 1, 0.5], "metadata": {"k": [1]},
    }  # fmt: skip
    assert message_extra(attrs.evolve(plain, usage=Usage())) == {"usage": [0, 0, 0, None]}
