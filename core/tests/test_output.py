"""Structured output: ``send(output=T)`` asks for ``T``'s JSON schema (the provider's own way,
else in the system prompt), reads the reply into a ``T``, and sends a reply that does not
match back to the model with what was wrong."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

import attrs
import pydantic
import pytest

import threadline
from threadline import Config, OutputError, Role, SessionManager
from threadline.builtins.echo import EchoConfig, EchoProvider, Reply
from threadline.builtins.memory import MemoryStorage
from threadline.schemas import is_strict, json_schema


class Mood(enum.Enum):
    GLAD = "glad"
    SAD = "sad"


@attrs.frozen
class Address:
    city: str
    zip: str | None = None


@attrs.frozen
class Person:
    """Someone named in the text."""

    name: str
    age: int
    mood: Mood = Mood.GLAD
    address: Address | None = None
    tags: list[str] = attrs.field(factory=list)


@dataclasses.dataclass
class Point:
    x: float
    y: float


# the functional form: a class statement here would not see NotRequired in a string annotation
Movie = TypedDict("Movie", {"title": str, "year": int, "rating": NotRequired[float]})  # noqa: UP013


class Film(pydantic.BaseModel):
    title: str
    year: int = pydantic.Field(ge=1888)


@attrs.frozen
class Node:
    name: str
    children: list[Node] = attrs.field(factory=list)


ADA = {"name": "Ada", "age": 36, "mood": "sad", "address": {"city": "London", "zip": None}, "tags": ["maths"]}


@pytest.fixture
async def manager() -> AsyncIterator[SessionManager]:
    async with SessionManager(storage=MemoryStorage()) as tl:
        yield tl


def echo_of(manager: SessionManager) -> EchoProvider:
    provider = manager.provider("echo")
    assert isinstance(provider, EchoProvider)
    return provider


# -- the schema of a type ---------------------------------------------------------------


def test_an_attrs_class_is_a_closed_object_asking_for_every_field() -> None:
    schema = json_schema(Person)
    assert schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "mood": {"enum": ["glad", "sad"]},
            "address": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "zip": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        },
                        "required": ["city", "zip"],
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ]
            },
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "mood", "address", "tags"],
        "additionalProperties": False,
        "description": "Someone named in the text.",
    }
    assert is_strict(schema)


def test_dataclasses_and_typeddicts_are_objects_too() -> None:
    assert json_schema(Point)["required"] == ["x", "y"] and is_strict(json_schema(Point))
    movie = json_schema(Movie)
    assert movie["required"] == ["title", "year"] and set(movie["properties"]) == {"title", "year", "rating"}
    assert not is_strict(movie)  # a key that may be left out is not strict


def test_a_schema_that_is_not_closed_is_not_strict() -> None:
    assert not is_strict({"type": "object", "properties": {"a": {"type": "object"}}, "required": ["a"]})
    assert not is_strict({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False})
    assert is_strict({"type": "array", "items": {"type": "string"}})


def test_a_type_that_contains_itself_or_cannot_be_described_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"Node .*contains itself"):
        json_schema(Node)
    with pytest.raises(TypeError, match="cannot describe"):
        json_schema(bytes)


# -- asking, and reading the reply ---------------------------------------------------------


async def test_a_provider_without_structured_output_is_told_the_schema_in_the_system_prompt(
    manager: SessionManager,
) -> None:
    session = await manager.create_session(provider="echo", system_prompt="Be exact.")
    person = await session.send(json.dumps(ADA), output=Person)
    assert person == Person("Ada", 36, Mood.SAD, Address("London"), ["maths"])
    request = echo_of(manager).requests[-1]
    assert request.output is None
    assert request.system_prompt is not None and request.system_prompt.startswith("Be exact.\n\nReply with only a JSON")
    assert json.loads(request.system_prompt.split("\n")[-1]) == json_schema(Person)
    assert session.record.system_prompt == "Be exact."  # told for the call, not stored
    reply = (await session.history())[-1]
    assert reply.role is Role.ASSISTANT and json.loads(reply.text) == ADA  # the raw reply, stored as any


async def test_a_provider_with_structured_output_gets_the_schema_in_the_request() -> None:
    config = Config.from_dict({"providers": {"echo": {"structured_output": True}}})
    async with SessionManager(config, storage=MemoryStorage()) as tl:
        session = await tl.create_session(provider="echo")
        await session.send('{"x": 1, "y": 2.5}', output=Point)
        request = echo_of(tl).requests[-1]
    assert request.system_prompt is None
    assert request.output is not None and request.output.name == "Point" and request.output.strict
    assert dict(request.output.schema) == json_schema(Point)


async def test_defaults_fill_what_the_reply_leaves_out(manager: SessionManager) -> None:
    session = await manager.create_session(provider="echo")
    assert await session.send('{"name": "Bo", "age": 3}', output=Person) == Person("Bo", 3)


@pytest.mark.parametrize(
    ("output", "reply", "expected"),
    [
        (Point, '{"x": 1, "y": 2}', Point(1, 2)),
        (Movie, '{"title": "Up", "year": 2009}', {"title": "Up", "year": 2009}),
        (Film, '{"title": "Up", "year": 2009}', Film(title="Up", year=2009)),
        (list[str], '["a", "b"]', ["a", "b"]),
        (list[str], '{"result": ["a", "b"]}', ["a", "b"]),
        (Literal["yes", "no"], '"no"', "no"),
        ({"type": "object", "properties": {"n": {"type": "integer"}}}, '{"n": 4}', {"n": 4}),
    ],
)
async def test_each_kind_of_output_reads_its_reply(
    manager: SessionManager, output: Any, reply: str, expected: Any
) -> None:
    session = await manager.create_session(provider="echo")
    assert await session.send(reply, output=output) == expected


async def test_a_value_that_is_not_an_object_is_asked_for_under_result() -> None:
    config = Config.from_dict({"providers": {"echo": {"structured_output": True}}})
    async with SessionManager(config, storage=MemoryStorage()) as tl:
        session = await tl.create_session(provider="echo")
        await session.send('{"result": [1, 2]}', output=list[int])
        request = echo_of(tl).requests[-1]
    assert request.output is not None and request.output.name == "list_int"
    assert dict(request.output.schema) == {
        "type": "object",
        "properties": {"result": {"type": "array", "items": {"type": "integer"}}},
        "required": ["result"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"x": 1, "y": 2}\n```',
        'Here it is: {"x": 1, "y": 2}. Anything else?',
        '\n  {"x": 1, "y": 2}  \n',
    ],
)
async def test_json_in_a_code_fence_or_a_sentence_is_found(manager: SessionManager, reply: str) -> None:
    session = await manager.create_session(provider="echo")
    assert await session.send(reply, output=Point) == Point(1, 2)


# -- a reply that does not match -----------------------------------------------------------


async def test_a_reply_that_does_not_match_goes_back_with_what_was_wrong(manager: SessionManager) -> None:
    echo = echo_of(manager)
    echo.script([Reply(text='{"name": "Ada", "age": "thirty-six"}'), Reply(text='{"name": "Ada", "age": 36}')])
    session = await manager.create_session(provider="echo")
    assert await session.send("Who is she?", output=Person) == Person("Ada", 36)
    history = await session.history()
    assert [m.role for m in history] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    correction = history[2].text
    assert correction.startswith("Your reply did not match the JSON schema:")
    assert "expected int, got str @ $.age" in correction
    assert echo.requests[-1].messages[-1].text == correction  # the model is told, with its reply before


@pytest.mark.parametrize(
    ("output", "bad", "problem"),
    [
        (Person, '{"name": "Ada"}', "age"),
        (Person, '{"name": "Ada", "age": 1, "mood": "angry"}', "'angry' is not a valid Mood @ $.mood"),
        (Person, '{"name": "Ada", "age": 1, "extra": 1}', "extra fields found (extra)"),
        (Film, '{"title": "Up", "year": 1200}', "greater than or equal to 1888 @ $.year"),
        ({"type": "object", "required": ["n"]}, '{"m": 1}', "'n' is a required property"),
        (Point, "not json at all", "the reply is not JSON"),
    ],
)
async def test_output_error_after_the_retries_names_the_problem(
    manager: SessionManager, output: Any, bad: str, problem: str
) -> None:
    echo_of(manager).script([Reply(text=bad)] * 3)
    session = await manager.create_session(provider="echo")
    with pytest.raises(OutputError) as caught:
        await session.send("Go", output=output)
    assert "after 3 tries" in str(caught.value) and problem in str(caught.value)
    assert caught.value.reply.text == bad and any(problem in p for p in caught.value.problems)
    assert len(await session.history()) == 6  # every reply is stored, and every correction


async def test_output_retries_comes_from_the_config(tmp_path: Path) -> None:
    config = Config.from_dict({"defaults": {"output_retries": 0}})
    async with SessionManager(config, storage=MemoryStorage()) as tl:
        session = await tl.create_session(provider="echo")
        with pytest.raises(OutputError, match="after 1 try"):
            await session.send("nope", output=Point)
        assert len(await session.history()) == 2


async def test_an_output_that_is_not_a_type_is_refused_before_anything_is_stored(manager: SessionManager) -> None:
    session = await manager.create_session(provider="echo")
    with pytest.raises(TypeError, match="output= takes an attrs class"):
        await session.send("Hi", output=bytes)
    assert await session.history() == []


async def test_a_provider_error_is_raised_as_without_output(manager: SessionManager) -> None:
    echo_of(manager).script([Reply(error="rate_limited")])
    session = await manager.create_session(provider="echo")
    with pytest.raises(threadline.RateLimited):
        await session.send("Hi", output=Point)


async def test_middleware_sees_the_output_schema_of_the_turn() -> None:
    seen: list[Any] = []

    class Watch(threadline.Middleware):
        async def complete(self, call: threadline.Call, next: Any) -> threadline.Response:
            assert call.turn is not None
            seen.append(call.turn.output)
            return await next(call)

    class Plugin:
        @threadline.hookimpl
        def threadline_register_middleware(self, register: Any) -> None:
            register("watch", lambda _config: Watch())

    config = Config.from_dict({"middleware": {"chain": ["watch"]}})
    async with SessionManager(config, storage=MemoryStorage(), plugins=[Plugin()]) as tl:
        session = await tl.create_session(provider="echo")
        await session.send('{"x": 0, "y": 0}', output=Point)
        await session.send("plain")
    assert seen[0] is not None and seen[0].name == "Point" and seen[1] is None


def test_echo_config_takes_structured_output() -> None:
    assert EchoProvider(EchoConfig(structured_output=True)).capabilities(None).structured_output
    assert not EchoProvider().capabilities(None).structured_output


# -- threadline prompt --schema --------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "question", "printed"),
    [
        ("name, age int: in years", '{"name": "Ada", "age": 36}', {"name": "Ada", "age": 36}),
        ('{"type": "object", "properties": {"ok": {"type": "boolean"}}}', '{"ok": true}', {"ok": True}),
    ],
)
def test_prompt_schema_prints_the_replys_json(
    config: Path, schema: str, question: str, printed: dict[str, Any]
) -> None:
    from test_cli import ok, threadline

    assert json.loads(ok(threadline("prompt", "--schema", schema, question, config=config))) == printed


def test_prompt_schema_reads_a_file_and_json_adds_the_output(config: Path, tmp_path: Path) -> None:
    from test_cli import ok, threadline

    schema = tmp_path / "point.schema.json"
    schema.write_text(json.dumps(json_schema(Point)))
    asked = threadline("prompt", "--json", "--schema", str(schema), '{"x": 1, "y": 2}', config=config)
    result = json.loads(ok(asked))
    assert result["output"] == {"x": 1, "y": 2} and result["text"] == '{"x": 1, "y": 2}' and result["session"]


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ("name, age integer", "'age integer' is not a field"),
        ("name, age age", "'age age' is not a field"),
        (": a description", "': a description' is not a field"),
        ("name, name int", "names a field twice"),
        (" , ", "is empty"),
        ("missing.schema.json", "no such file: missing.schema.json"),
        ("/", "/ is a folder"),
        ('{"type": "bogus"}', "is not a JSON schema: 'bogus' is not valid"),
        ("{not json", "--schema is not JSON"),
        ("[1, 2]", "--schema holds a JSON list, not a schema"),
        ('{"type": "object"', "--schema is not JSON"),
    ],
)
def test_prompt_schema_that_is_wrong_is_a_usage_error(config: Path, schema: str, says: str) -> None:
    from test_cli import threadline, user_error

    assert says in user_error(threadline("prompt", "--schema", schema, "Hi", config=config))


def test_prompt_schema_reply_that_never_matches_is_an_error_without_a_traceback(config: Path) -> None:
    from test_cli import threadline, user_error

    stderr = user_error(threadline("prompt", "--schema", "name", "not json", config=config))
    assert "the reply did not match the schema after 3 tries: the reply is not JSON" in stderr


async def test_without_jsonschema_installed_a_schema_checks_the_top_level(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import jsonschema raises ImportError
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    replies = ['{"n": "four"}', "[4]", '{"m": 4}', '{"m": 4}']
    echo_of(manager).script([Reply(text=text) for text in replies])
    session = await manager.create_session(provider="echo")
    assert await session.send("Go", output=schema) == {"n": "four"}  # only the top level is checked
    with pytest.raises(OutputError) as caught:
        await session.send("Go", output=schema)
    assert caught.value.problems == ["'n' is a required property @ $"]
    assert "expected an object, got list @ $" in (await session.history())[-4].text


# -- what the review found ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "output", "expected"),
    [
        ('{"x": 1, "y": 2} (note: {not json})', Point, Point(1, 2)),
        ("Here they are: [1, 2, 3]", list[int], [1, 2, 3]),
        ('{"at": "2026-12-06T05:00:00+00:00"}', dict[str, datetime], {"at": datetime(2026, 12, 6, 5, tzinfo=UTC)}),
    ],
)
async def test_the_first_json_value_in_a_sentence_is_read(
    manager: SessionManager, reply: str, output: Any, expected: Any
) -> None:
    session = await manager.create_session(provider="echo")
    assert await session.send(reply, output=output) == expected


@pytest.mark.parametrize(
    ("reply", "problem"), [("1" * 5000, "Exceeds the limit"), ("[" * 100_000, "nested too deeply")]
)
async def test_json_python_cannot_read_is_a_mismatch_not_a_crash(
    manager: SessionManager, reply: str, problem: str
) -> None:
    echo_of(manager).script([Reply(text=reply)] * 3)
    session = await manager.create_session(provider="echo")
    with pytest.raises(OutputError, match=problem):
        await session.send("Go", output=int)


def test_untyped_values_and_mixed_tuples() -> None:
    assert not is_strict(json_schema(list[Any]))  # OpenAI's strict mode refuses a value of no type
    assert json_schema(tuple[int, ...]) == {"type": "array", "items": {"type": "integer"}}
    with pytest.raises(TypeError, match="items are of different types"):
        json_schema(tuple[int, str])
    assert json_schema(datetime) == {"type": "string", "format": "date-time"}


def test_a_tool_takes_no_record_or_datetime_argument() -> None:
    def place(address: Address) -> str:
        return address.city

    def when(at: datetime) -> str:
        return str(at)

    for function in (place, when):
        with pytest.raises(threadline.ToolError, match="cannot describe"):
            threadline.tool(function)


async def test_definitions_stay_at_the_root_when_a_value_is_wrapped() -> None:
    class Item(pydantic.BaseModel):
        name: str

    config = Config.from_dict({"providers": {"echo": {"structured_output": True}}})
    async with SessionManager(config, storage=MemoryStorage()) as tl:
        session = await tl.create_session(provider="echo")
        items = await session.send('{"result": [{"name": "a"}]}', output=pydantic.RootModel[list[Item]])
        request = echo_of(tl).requests[-1]
    assert items.root == [Item(name="a")]
    assert request.output is not None
    schema = request.output.schema
    assert schema["properties"]["result"]["items"] == {"$ref": "#/$defs/Item"} and "Item" in schema["$defs"]


async def test_a_dict_that_is_not_a_json_schema_is_refused_before_anything_is_stored(
    manager: SessionManager,
) -> None:
    session = await manager.create_session(provider="echo")
    with pytest.raises(ValueError, match="output= is not a JSON schema: 'bogus' is not valid"):
        await session.send("Hi", output={"type": "bogus"})
    assert await session.history() == []
