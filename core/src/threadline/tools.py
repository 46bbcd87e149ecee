"""``@threadline.tool``: a typed Python function becomes a tool the model can call."""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union, get_args, get_origin, overload

from attrs import frozen

from threadline.errors import ToolError
from threadline.model import ToolCall, ToolResult, ToolSpec

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


@frozen
class Tool:
    """A function the model may call, with the JSON schema of its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    function: Callable[..., Any]

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    async def call(self, call: ToolCall) -> ToolResult:
        """Run the tool for ``call``: its result, as a string or JSON. What it raises is raised."""
        result = self.function(**call.arguments)
        if inspect.isawaitable(result):
            result = await result
        return ToolResult(call.id, result if isinstance(result, str) else json.dumps(result, default=str))


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    function: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a :class:`Tool`.

    The schema comes from the type hints; the description from the docstring's first
    paragraph, and each argument's from ``:param name:`` or a Google-style ``Args:`` section.
    """

    def make(fn: Callable[..., Any]) -> Tool:
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        return Tool(
            name=name or fn.__name__,
            description=description or summary or fn.__name__,
            parameters=_parameters_schema(fn, arg_docs),
            function=fn,
        )

    return make(function) if function is not None else make


def _parameters_schema(fn: Callable[..., Any], arg_docs: Mapping[str, str]) -> dict[str, Any]:
    hints = typing.get_type_hints(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name not in hints:
            raise ToolError(f"tool {fn.__name__!r}: argument {param.name!r} needs a type hint")
        schema = json_schema(hints[param.name])
        if param.name in arg_docs:
            schema["description"] = arg_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        properties[param.name] = schema
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def json_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of a type hint: scalars, lists, dicts, Literal, Enum and Optional."""
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if hint is Any:
        return {}
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [json_schema(arg) for arg in args if arg is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return {"anyOf": [schema, {"type": "null"}]} if type(None) in args else schema
    if origin is Literal:
        return {"enum": list(args)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if hint in (list, tuple, set) or origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": json_schema(args[0]) if args else {}}
    if hint is dict or origin in (dict, Mapping):
        return {"type": "object"}
    raise ToolError(f"cannot describe {hint!r} as JSON schema; use str, int, float, bool, list, dict, Literal or Enum")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    if summary.startswith((":param", "Args:")):
        summary = ""
    arg_docs = dict(re.findall(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+)$", doc, re.MULTILINE))
    args_section = re.search(r"^Args:\s*\n((?:[ \t]+.+\n?)+)", doc, re.MULTILINE)
    if args_section:
        arg_docs.update(re.findall(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", args_section.group(1), re.MULTILINE))
    return summary, arg_docs
