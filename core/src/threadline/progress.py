"""The progress bar ``threadline migrate`` draws on standard error (with rich; shown only
on a terminal)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from threadline.migrate import MigrationReport


class MigrationProgress:
    """Sessions and messages read from the source, towards their totals when known
    (``None``: a migration of every tenant, whose totals no listing gives), then those
    read back from the target."""

    def __init__(self, totals: tuple[int, int] | None) -> None:
        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        sessions, messages = totals or (None, None)
        self._sessions = self._progress.add_task("sessions read", total=sessions)
        self._messages = self._progress.add_task("messages read", total=messages)
        self._verified: TaskID | None = None

    def __enter__(self) -> MigrationProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def __call__(self, report: MigrationReport) -> None:
        self._progress.update(self._sessions, completed=report.read.sessions)
        self._progress.update(self._messages, completed=report.read.messages)
        if report.phase == "copying":
            return
        if self._verified is None:
            self._verified = self._progress.add_task("sessions verified", total=report.expected.sessions)
        self._progress.update(self._verified, completed=report.verified.sessions)
