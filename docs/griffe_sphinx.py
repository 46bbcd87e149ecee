"""A griffe extension for the API reference: the kernel's docstrings are written for Sphinx,
and mkdocstrings would print two of its marks as they are written. A cross-reference role
(``:class:`~threadline.Session```) becomes code: the full path, or its last name after ``~``,
as Sphinx shows it. A paragraph that ends in ``::`` before a literal block ends in ``:``."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data):`(~?)([\w.]+)`")
LITERAL_BLOCK_MARK = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _code(match: re.Match[str]) -> str:
    tilde, path = match.groups()
    return f"`{path.rsplit('.', 1)[-1] if tilde else path}`"


class SphinxMarks(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = LITERAL_BLOCK_MARK.sub(":", ROLE.sub(_code, obj.docstring.value))
