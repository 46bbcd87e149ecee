"""The terminal chat loop behind ``threadline chat``: read a message, stream the reply, go on.

When standard input and output are a terminal, messages are typed into prompt_toolkit's line
editor (history kept across runs, Esc then Enter for a line break, a paste arriving as one
message); Ctrl-C stops a reply or clears the line, Ctrl-D leaves. Otherwise standard input is
read one message per line. A reply that fails is reported in one line and the chat goes on;
so does one that is stopped, which the session stores as far as it got, marked incomplete.

Only the ``chat`` command imports this module, and only a terminal chat imports prompt_toolkit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shlex
import signal
import sys
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from threadline.cli import format_message, provider_model
from threadline.config import user_data_dir
from threadline.errors import HistoryError, RateLimited, SessionArchived, ThreadlineError
from threadline.model import Event, SessionRecord, SessionStatus, TextDelta, ToolCallDelta
from threadline.printable import PrintableStream, printable

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import History

    from threadline.manager import SessionManager
    from threadline.session import Session

QUIT = ("/quit", "/exit")
COMMANDS = (
    "commands: /history, /undo (take back the last turn), /retry (answer the last message again), "
    "/edit N TEXT (message N says TEXT instead), /new, /quit"
)


def history_path() -> Path:
    """The file that keeps what was typed at the ``you>`` prompt, across runs."""
    return user_data_dir() / "chat_history"


async def run_chat(
    manager: SessionManager,
    *,
    session_id: str | None = None,
    template: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    command: Callable[..., str] = lambda *args: shlex.join(["threadline", *args]),
) -> None:
    """Chat until the user leaves. ``session_id`` resumes that session (an archived one is
    refused: :class:`~threadline.SessionArchived`); otherwise the first message sent creates
    one from ``template``, ``provider``, ``model`` and ``system_prompt``. ``provider`` and
    ``model`` apply to every reply. What the first reply would find wrong is checked first
    (:meth:`SessionManager.check_new_session`, :meth:`~SessionManager.check_provider`); a
    resumed session given another ``provider`` and no ``model`` is told which model that is.
    ``command(*args)`` is the shell command that runs ``threadline *args`` (for the resume
    hint). Input that is not a terminal and had a message fail ends in a
    :class:`click.ClickException` (exit status 1) once it is all read."""
    start = functools.partial(
        manager.create_session, template=template, provider=provider, model=model, system_prompt=system_prompt
    )
    hint = functools.partial(announce, command=command, kept=manager.storage_backend != "memory")
    if session_id is None:
        manager.check_new_session(template=template, provider=provider)
        conversation = Conversation(None, start, hint)
    else:
        session = await manager.get_session(session_id)
        record = session.record
        if record.status is SessionStatus.ARCHIVED:
            raise SessionArchived(record.id, record.tenant)
        manager.check_provider(provider or record.provider)
        hint(session)
        if provider not in (None, record.provider) and model is None:
            click.echo(_switch_note(record, provider, manager.provider_default_model(provider)), err=True)
        conversation = Conversation(session, start, hint)
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    failed = await _converse(conversation, TerminalInput() if terminal else PipedInput(), provider, model, terminal)
    if failed and not terminal:
        raise click.ClickException(f"{failed} message{'s' if failed > 1 else ''} got no reply (errors above)")


def _switch_note(record: SessionRecord, provider: str, default_model: str | None) -> str:
    """The line that says a resumed session's replies come from another provider, and its model."""
    model = f"{provider}/{default_model}" if default_model else f"{provider}'s default model"
    return (
        f"note: this session was on {provider_model(record)}; with --provider {provider} its replies come from "
        f"{model}, the provider's default (--model picks another)"
    )


class Conversation:
    """The session the chat talks in: the one resumed, else one made with the first message sent."""

    def __init__(
        self,
        session: Session | None,
        start: Callable[[], Awaitable[Session]],
        announce: Callable[[Session], None] = lambda _: None,
    ) -> None:
        self.current = session
        self._start = start
        self._announce = announce

    async def session(self) -> Session:
        if self.current is None:
            self.current = await self._start()
            self._announce(self.current)
        return self.current

    def start_another(self) -> None:
        """The next message sent starts a new session."""
        self.current = None


def announce(session: Session, *, command: Callable[..., str], kept: bool = True) -> None:
    """Say which session the chat talks in and the command that resumes it, as ``command``
    (see :func:`run_chat`) writes it; where the storage keeps nothing (``kept=False``), that
    the session ends with the chat."""
    record = session.record
    if kept:
        after = f"resume with: {command('chat', '--session', record.id)}"
    else:
        after = "not kept: storage is memory, so it ends with this chat"
    click.echo(f"session {record.id} ({provider_model(record)}); {after}", err=True)


async def _converse(
    conversation: Conversation,
    messages: TerminalInput | PipedInput,
    provider: str | None,
    model: str | None,
    terminal: bool,
) -> int:
    """Read messages until the input ends or says /quit; the number that got no reply."""
    failed = 0
    while (text := await messages.read()) is not None:
        if text in QUIT:
            break
        if text == "/retry" and conversation.current is not None:
            session = conversation.current
            again = functools.partial(session.regenerate_stream, provider=provider, model=model)
            failed += not await _reply(again, terminal, command="/retry")
        elif text.startswith("/"):
            await _run_command(conversation, text)
        elif text:
            session = await conversation.session()
            failed += not await _reply(
                functools.partial(session.stream, text, provider=provider, model=model), terminal
            )
    return failed


async def _run_command(conversation: Conversation, command: str) -> None:
    """A command of the chat's own (``/retry`` is run as a reply is); what cannot be done
    says why in one line."""
    name, _, argument = command.partition(" ")
    session = conversation.current
    try:
        if name == "/new":
            conversation.start_another()
            click.echo("the next message starts a new session", err=True)
        elif name == "/history":
            messages = await session.history() if session else []
            for message in messages:
                click.echo(format_message(message))
            if not messages:
                click.echo("no messages yet", err=True)
        elif name in ("/undo", "/retry", "/edit") and session is None:
            click.echo(f"{name}: no messages yet", err=True)
        elif name == "/undo" and session is not None:
            undone = await session.undo()
            click.echo(
                f"took back {len(undone)} message{'s' * (len(undone) != 1)}, from: {_short(undone[0].text)}", err=True
            )
        elif name == "/edit" and session is not None:
            await _edit(session, argument)
        else:
            click.echo(COMMANDS, err=True)
    except ThreadlineError as error:
        click.echo(f"{name}: {_one_line(error)}", err=True)


async def _edit(session: Session, argument: str) -> None:
    """``/edit N TEXT``: message N says TEXT instead; ``/edit N``: show what it says now."""
    number, _, text = argument.strip().partition(" ")
    if not (number.isascii() and number.isdigit()):
        click.echo("/edit N TEXT: N is the number /history shows before the message", err=True)
        return
    if not text.strip():
        history = await session.history()
        shown = format_message(history[int(number) - 1]) if 1 <= int(number) <= len(history) else "no such message"
        click.echo(f"{shown}\n(to change it: /edit {number} followed by the new text)", err=True)
        return
    edited = await session.edit(int(number), text.strip())
    click.echo(f"message {edited.seq} now says: {_short(edited.text)}", err=True)


async def _reply(events: Callable[[], AsyncGenerator[Event, None]], terminal: bool, command: str | None = None) -> bool:
    """Print the reply ``events()`` streams; Ctrl-C stops it. An error is printed as one line
    and the reply is False: the chat goes on. A ``command`` that cannot be done (``/retry``
    with no message to answer) says why, and no reply failed."""
    try:
        await _interruptible(_print_reply(events(), terminal))
    except ThreadlineError as error:
        if command is not None and isinstance(error, HistoryError):
            click.echo(f"{command}: {_one_line(error)}", err=True)
            return True
        click.echo(f"error: {_one_line(error)}", err=True)
        return False
    return True


async def _print_reply(events: AsyncGenerator[Event, None], terminal: bool) -> None:
    line_open = terminal
    shown = PrintableStream()
    if terminal:
        click.echo("assistant> ", nl=False)
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                click.echo(_shown(event, shown), nl=False)
                line_open = True
    finally:
        if line_open:  # however the reply ended
            click.echo()


def _shown(event: Event, shown: PrintableStream) -> str:
    if isinstance(event, TextDelta):
        return shown(event.text)
    if isinstance(event, ToolCallDelta) and event.name:
        return f"[calling {printable(event.name)}]"
    return ""


def _short(text: str, length: int = 60) -> str:
    """``text`` on one line, cut at ``length`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= length else f"{line[: length - 1]}…"


def _one_line(error: ThreadlineError) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, RateLimited) and error.retry_after:
        return f"{text} (retry after {error.retry_after:g} s)"
    return text


async def _interruptible(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` as a task that Ctrl-C cancels, instead of ending the chat."""
    task = asyncio.create_task(work)
    with _sigint_cancels(task):
        try:
            await task
        except asyncio.CancelledError:
            if _being_cancelled():  # the chat itself is ending
                raise
            click.echo("(reply stopped)", err=True)


@contextlib.contextmanager
def _sigint_cancels(task: asyncio.Task[None]) -> Iterator[None]:
    """SIGINT cancels ``task`` while in the block, then it has its default handler again."""
    if sys.platform == "win32":  # no loop.add_signal_handler: Ctrl-C ends the chat
        yield
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, _cancel_once, task)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _cancel_once(task: asyncio.Task[None]) -> None:
    """A second Ctrl-C does not cut short the storing of what the first one stopped."""
    if not task.cancelling():
        task.cancel()


def _being_cancelled() -> bool:
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


class TerminalInput:
    """Messages typed at the ``you>`` prompt: Enter sends, Esc then Enter breaks the line, a
    paste arrives whole, Up and Down walk the history; Ctrl-C clears the line, Ctrl-D on an
    empty line ends the input."""

    def __init__(self) -> None:
        self._prompt = _prompt_session()

    async def read(self) -> str | None:
        while True:
            try:
                return (await self._prompt.prompt_async("you> ")).strip()
            except KeyboardInterrupt:
                continue
            except EOFError:
                return None


def _prompt_session() -> PromptSession[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _line_break(event: KeyPressEvent) -> None:
        event.current_buffer.newline(copy_margin=False)

    return PromptSession(history=_history(), key_bindings=bindings, prompt_continuation="     ")


def _history() -> History:
    """The history file, made private to the user; this run's history alone if it cannot be made."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
    except OSError:
        return InMemoryHistory()
    return FileHistory(path)


class PipedInput:
    """Messages from a pipe or a file, one per line, read as bytes (whatever the locale says)
    and decoded as UTF-8; a line that is not is reported and skipped. A thread of its own reads
    ahead, so neither Ctrl-C nor the end of the chat waits for a line that has not come."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[bytes] = asyncio.Queue()
        threading.Thread(target=self._read_all, name="threadline-chat-stdin", daemon=True).start()

    async def read(self) -> str | None:
        while line := await self._lines.get():
            try:
                return line.decode("utf-8").strip()
            except UnicodeDecodeError:
                click.echo("error: that line is not valid UTF-8 text; nothing was sent", err=True)
        return None

    def _read_all(self) -> None:
        with open(os.dup(sys.stdin.fileno()), "rb") as stdin:  # not sys.stdin, whose lock exit may need
            for line in stdin:
                self._put(line)
        self._put(b"")

    def _put(self, line: bytes) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the chat is over
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
