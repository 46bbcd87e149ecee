"""Install a plugin into a folder as pip installs a distribution: its modules, and metadata
with its ``threadline`` entry points. With the folder on ``sys.path`` (or ``PYTHONPATH``),
threadline finds the plugin as it finds any installed one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def install_plugin(site: Path, distribution: str, entry_points: Mapping[str, str], modules: Mapping[str, str]) -> None:
    """``modules``: each module's name and code; ``entry_points``: each entry point's name and target."""
    site.mkdir(parents=True, exist_ok=True)
    for name, code in modules.items():
        (site / f"{name}.py").write_text(code, encoding="utf-8")
    info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    targets = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[threadline]\n{targets}")
