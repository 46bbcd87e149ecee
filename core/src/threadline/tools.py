"""``@threadline.tool``: a typed Python function becomes a tool the model can call."""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, overload

from attrs import frozen

from threadline.errors import ToolError
from threadline.model import ToolCall, ToolResult, ToolSpec
from threadline.schemas import json_schema


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
        try:
            schema = json_schema(hints[param.name], read_back=False)
        except TypeError as exc:
            raise ToolError(f"tool {fn.__name__!r}: argument {param.name!r}: {exc}") from None
        if param.name in arg_docs:
            schema["description"] = arg_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        properties[param.name] = schema
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    if summary.startswith((":param", "Args:")):
        summary = ""
    arg_docs = dict(re.findall(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+)$", doc, re.MULTILINE))
    args_section = re.search(r"^Args:\s*\n((?:[ \t]+.+\n?)+)", doc, re.MULTILINE)
    if args_section:
        arg_docs.update(re.findall(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", args_section.group(1), re.MULTILINE))
    return summary, arg_docs
