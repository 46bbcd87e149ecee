"""Structured output (``Session.send(output=T)``): the JSON schema a reply is asked to match,
made from ``T``, and the reply read into a ``T``; a reply that does not match goes back to
the model with what was wrong."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import cattrs
from attrs import frozen

from threadline.model import OutputSchema, converter, describe_error
from threadline.schemas import is_strict, json_schema

#: the property a value whose schema is not an object is asked for under: providers take
#: an object at the root
WRAPPER = "result"
_FENCE = re.compile(r"^```[\w-]*\s*\n(.*?)\n?```$", re.DOTALL)


class Mismatch(Exception):
    """A reply that does not match its schema: ``problems`` say how, for the model to fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@frozen
class Shape:
    """What ``output=`` named: the schema to ask for, and how a reply's JSON becomes a value."""

    schema: OutputSchema
    convert: Callable[[Any], Any]
    label: str
    wrapped: bool = False

    def read(self, text: str) -> Any:
        """The value in a reply's text, or :class:`Mismatch`."""
        value = _json_in(text)
        if self.wrapped and isinstance(value, dict) and set(value) == {WRAPPER}:
            value = value[WRAPPER]  # else the value itself, as a model told in the prompt may give it
        return self.convert(value)


def shape_of(output: Any) -> Shape:
    """The shape of ``output``: an attrs class, a dataclass, a ``TypedDict``, a pydantic model,
    another type hint (``list[Person]``), or a JSON schema as a dict."""
    if isinstance(output, Mapping):
        return _wrapped(dict(output), str(output.get("title") or "the schema"), _json_schema_reader(output))
    pydantic_schema = getattr(output, "model_json_schema", None)
    if isinstance(output, type) and callable(pydantic_schema):  # a pydantic model
        return _wrapped(pydantic_schema(), output.__name__, _pydantic_reader(output))
    try:
        schema = json_schema(output)
    except TypeError as exc:
        raise TypeError(
            "output= takes an attrs class, a dataclass, a TypedDict, a pydantic model, a type such as"
            f" list[str], or a JSON schema as a dict; {exc}"
        ) from None
    label = output.__name__ if isinstance(output, type) else str(output)
    return _wrapped(schema, label, _cattrs_reader(output))


def _wrapped(schema: dict[str, Any], label: str, convert: Callable[[Any], Any]) -> Shape:
    """The shape asking for ``schema``, under a property of an object when it is not one
    (its definitions, which ``$ref`` names from the root, staying at the root)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_")[:64] or "output"
    if schema.get("type") == "object" or "properties" in schema:
        return Shape(OutputSchema(name, schema, is_strict(schema)), convert, label)
    inner = {key: value for key, value in schema.items() if key != "$defs"}
    closed = {"type": "object", "properties": {WRAPPER: inner}, "required": [WRAPPER], "additionalProperties": False}
    if "$defs" in schema:
        closed["$defs"] = schema["$defs"]
    return Shape(OutputSchema(name, closed, is_strict(closed)), convert, label, wrapped=True)


def _cattrs_reader(output: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return converter.structure(value, output)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Mismatch([str(problem) for problem in describe_error(exc)]) from None

    return convert


def _pydantic_reader(model: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        from pydantic import ValidationError

        try:
            return model.model_validate(value)
        except ValidationError as exc:
            problems = [f"{error['msg']} @ $.{'.'.join(map(str, error['loc']))}" for error in exc.errors()]
            raise Mismatch(problems) from None

    return convert


def _json_schema_reader(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    """Validated by ``jsonschema`` when it is installed (and the schema checked first: a
    ``ValueError`` if it is not one); else the root's type and required keys are checked."""
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        checker = jsonschema.validators.validator_for(schema)
        try:
            checker.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"output= is not a JSON schema: {exc.message} @ {exc.json_path}") from None
        validator = checker(schema)

    def convert(value: Any) -> Any:
        if jsonschema is not None:
            problems = [f"{error.message} @ {error.json_path}" for error in validator.iter_errors(value)]
        else:
            problems = _root_problems(schema, value)
        if problems:
            raise Mismatch(problems)
        return value

    return convert


def _root_problems(schema: Mapping[str, Any], value: Any) -> list[str]:
    if schema.get("type") == "object":
        if not isinstance(value, dict):
            return [f"expected an object, got {type(value).__name__} @ $"]
        return [f"{key!r} is a required property @ $" for key in schema.get("required", ()) if key not in value]
    return []


def _json_in(text: str) -> Any:
    """The JSON value a reply holds: the whole text, in a code fence, or the first value in
    it from a ``{`` or ``[`` on (a model that wrote a sentence around it)."""
    text = text.strip()
    if fenced := _FENCE.match(text):
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, and a number too long to read
        starts = [index for index in (text.find("{"), text.find("[")) if index >= 0]
        if starts:
            with contextlib.suppress(ValueError, RecursionError):
                return json.JSONDecoder().raw_decode(text, min(starts))[0]
        raise Mismatch([f"the reply is not JSON ({_why(exc)})"]) from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def output_instruction(schema: OutputSchema) -> str:
    """What a model without structured output is told in the system prompt: reply with JSON
    that matches ``schema``. For a provider plugin whose API cannot take the schema in a
    given call (Gemini before 3 with tools), to say it in the prompt instead."""
    return "Reply with only a JSON value that matches this JSON schema: no prose, no code fence.\n" + json.dumps(
        schema.schema, separators=(",", ":"), default=dict
    )


def correction(problems: list[str]) -> str:
    """The message that sends a reply that did not match back to the model."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return f"Your reply did not match the JSON schema:\n{listed}\nReply again with only the corrected JSON."
