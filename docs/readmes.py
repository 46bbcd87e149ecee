"""A mkdocs hook: each package's README is also a page of the site, ``packages/<name>.md``, so
that it has one source. A README links as the repository lays files out; on the site, a link
to a page of docs/ goes to that page, and a link to the repository's README to the home page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([\w./-]+\.md)(#[\w-]*)?\)")


def readmes() -> Iterator[tuple[str, Path]]:
    """Each package's name on the site and its README: the kernel, then the plugins."""
    yield "core", ROOT / "core" / "README.md"
    for readme in sorted(ROOT.glob("plugins/*/README.md")):
        yield readme.parent.name, readme


def site_links(readme: Path) -> str:
    """The text of ``readme`` with its links as they go from ``packages/<name>.md`` on the site."""
    return LINK.sub(lambda link: f"]({site_page(readme, link[1])}{link[2] or ''})", readme.read_text("utf-8"))


def site_page(readme: Path, target: str) -> str:
    """Where a link of ``readme`` to ``target`` goes on the site."""
    path = (readme.parent / target).resolve()
    if path == ROOT / "README.md":
        return "../index.md"
    if path.is_relative_to(DOCS):
        return f"../{path.relative_to(DOCS).as_posix()}"
    return target  # mkdocs --strict fails on it, as on any link to a page the site does not have


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for name, readme in readmes():
        files.append(File.generated(config, f"packages/{name}.md", content=site_links(readme)))
    return files
