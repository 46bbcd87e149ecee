"""JSON schemas of Python types: a tool's arguments, and a structured reply's shape."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin, is_typeddict

import attrs

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
#: keys that say what a value may be: a node of a strict schema has one
_TYPED = frozenset({"type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const"})


def json_schema(hint: Any, *, read_back: bool = True) -> dict[str, Any]:
    """The JSON schema of a type hint: scalars, lists, dicts, ``Literal``, ``Enum``,
    ``Optional``, and, for a value read back into its type (``read_back``; a tool is given
    its arguments as JSON), ``datetime`` and records (attrs classes, dataclasses,
    ``TypedDict``), whose fields are the object's properties. A type it cannot describe is
    a ``TypeError``."""
    return _schema(hint, () if read_back else None)


def _schema(hint: Any, within: tuple[type, ...] | None) -> dict[str, Any]:
    """``within``: the records being described around this hint; ``None``: no value is read
    back, so records and ``datetime`` are refused."""
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if hint is datetime and within is not None:
        return {"type": "string", "format": "date-time"}
    if hint is Any:
        return {}
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [_schema(arg, within) for arg in args if arg is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return {"anyOf": [schema, {"type": "null"}]} if type(None) in args else schema
    if origin is Literal:
        return {"enum": list(args)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if hint in (list, tuple, set) or origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": _schema(_item_type(hint, args), within) if args else {}}
    if hint is dict or origin in (dict, Mapping):
        return {"type": "object"}
    if within is not None and is_record(hint):
        return _record_schema(hint, within)
    records = "" if within is None else ", datetime, or a record of them (an attrs class, a dataclass, a TypedDict)"
    raise TypeError(
        f"cannot describe {hint!r} as JSON schema; use str, int, float, bool, list, dict, Literal, Enum{records}"
    )


def _item_type(hint: Any, args: tuple[Any, ...]) -> Any:
    """The type of a sequence's items: one type, or a tuple's one type (``tuple[int, ...]``)."""
    items = {arg for arg in args if arg is not Ellipsis}
    if len(items) != 1:
        raise TypeError(f"cannot describe {hint!r} as JSON schema: its items are of different types; use a record")
    return items.pop()


def is_record(hint: Any) -> bool:
    """Whether ``hint`` is a class whose fields make a JSON object."""
    return isinstance(hint, type) and (attrs.has(hint) or dataclasses.is_dataclass(hint) or is_typeddict(hint))


def _record_schema(record: type, within: tuple[type, ...]) -> dict[str, Any]:
    """An object with the record's fields as properties, closed to any other. A field with a
    default is required too: a model is asked for every value (as strict schemas must),
    and a reply without one still takes the default when it is read."""
    if record in within:
        raise TypeError(f"cannot describe {record.__name__} as JSON schema: it contains itself")
    hints = typing.get_type_hints(record, include_extras=True)
    names = _field_names(record, hints)
    properties = {name: _schema(_bare(hints[name]), (*within, record)) for name in names}
    required = record.__required_keys__ if is_typeddict(record) else names  # type: ignore[attr-defined]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [name for name in names if name in required],
        "additionalProperties": False,
    }
    if doc := _summary(record):
        schema["description"] = doc
    return schema


def _bare(hint: Any) -> Any:
    """A hint without ``Required``, ``NotRequired`` and ``Annotated`` around it. Which keys
    of a ``TypedDict`` are required is the class's to say (``__required_keys__``, which
    cannot see ``NotRequired`` in a string annotation: declare such a class in a module
    without ``from __future__ import annotations``)."""
    while get_origin(hint) in (typing.Required, typing.NotRequired, typing.Annotated):
        hint = get_args(hint)[0]
    return hint


def _field_names(record: type, hints: Mapping[str, Any]) -> list[str]:
    if attrs.has(record):
        return [field.name for field in attrs.fields(record) if field.init]
    if dataclasses.is_dataclass(record):
        return [field.name for field in dataclasses.fields(record) if field.init]
    return list(hints)


def _summary(record: type) -> str:
    """The first paragraph of a record's own docstring (not the one attrs or dataclasses write)."""
    doc = record.__doc__
    if not doc or doc.startswith(f"{record.__name__}("):
        return ""
    return inspect.cleandoc(doc).split("\n\n", 1)[0].replace("\n", " ")


def is_strict(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` meets OpenAI's strict structured-output rules: every value typed,
    and every object lists its properties, requires them all and allows no others."""
    if not _TYPED.intersection(schema):
        return False
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", ())) != set(properties):
            return False
    return all(is_strict(child) for child in _children(schema))


def _children(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Any] = list((schema.get("properties") or {}).values())
    found += [schema[key] for key in ("items", "additionalProperties") if isinstance(schema.get(key), Mapping)]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        found += schema.get(key) or []
    found += list((schema.get("$defs") or {}).values())
    return [child for child in found if isinstance(child, Mapping)]
