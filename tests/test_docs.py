"""The docs stay true to the code: every hook is in the generated reference."""

from __future__ import annotations

import runpy
from pathlib import Path

from threadline import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_hookspec_is_documented() -> None:
    reference = (DOCS / "hooks.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("threadline_")]
    assert len(hooks) == 13
    for name in hooks:
        assert f"### `{name}`" in reference, f"{name} is missing from docs/hooks.md"


def test_hook_reference_is_generated_from_the_docstrings() -> None:
    generator = runpy.run_path(str(DOCS / "gen_hooks.py"))
    assert (DOCS / "hooks.md").read_text() == generator["render"](), "run: python docs/gen_hooks.py"
