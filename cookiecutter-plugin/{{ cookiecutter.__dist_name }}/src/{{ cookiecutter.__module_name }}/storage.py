{%- set cls = cookiecutter.__class_name -%}
"""``{{ cls }}Storage``: sessions kept in memory and saved to a JSON-lines file.

It builds on the kernel's memory storage, which passes the whole ``StorageContract``: the
file is read when the storage opens and written, whole, when it closes (through a
temporary file, so a crash while writing leaves the old file). A starting point: a real
backend writes each change durably as it happens (see threadline-sqlite).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from threadline.builtins.memory import MemoryStorage
from threadline.model import Message, SessionRecord, dump_record, load_record

from {{ cookiecutter.__module_name }} import {{ cls }}Config


class {{ cls }}Storage(MemoryStorage):
    """The ``{{ cookiecutter.plugin_name }}`` storage backend."""

    def __init__(self, config: {{ cls }}Config | None = None) -> None:
        super().__init__()
        self.config = config or {{ cls }}Config()

    async def open(self) -> None:
        await super().open()
        if self.config.path.exists():
            lines = self.config.path.read_text(encoding="utf-8").splitlines()
            await self.import_records(_records(lines))

    async def close(self) -> None:
        path = self.config.path
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_name(path.name + ".tmp")
        with written.open("w", encoding="utf-8") as file:
            async for record in self.export_records():
                file.write(dump_record(record) + "\n")
        written.replace(path)
        await super().close()


async def _records(lines: Iterable[str]) -> AsyncIterator[SessionRecord | Message]:
    for line in lines:
        if line.strip():
            yield load_record(line)
