"""Keep the files of the chosen kind: the template holds every kind's."""

from pathlib import Path

KIND = "{{ cookiecutter.kind }}"
MODULE = Path("src") / "{{ cookiecutter.__module_name }}"
ONLY_FOR = {
    MODULE / "provider.py": ("provider",),
    MODULE / "storage.py": ("storage",),
    MODULE / "middleware.py": ("middleware",),
    Path("tests") / "test_contract.py": ("provider", "storage"),
}

for path, kinds in ONLY_FOR.items():
    if KIND not in kinds:
        path.unlink()
