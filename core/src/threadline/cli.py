"""The ``threadline`` command: chat, manage sessions, inspect plugins and config.

``threadline --help`` and ``threadline plugins`` import click, pluggy and the plugins' entry
modules only; a command imports the session machinery (asyncio, the data model) when it runs,
and ``chat`` its terminal loop (:mod:`threadline.chat`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from threadline.config import Config, read_disabled_plugins, user_config_dir
from threadline.errors import ConfigError, SessionNotFound, ThreadlineError
from threadline.plugins import PluginManager, get_plugin_manager
from threadline.printable import printable
from threadline.search_cli import Since

if TYPE_CHECKING:
    from threadline.manager import SessionManager
    from threadline.migrate import MigrationReport
    from threadline.model import Message, Record, SessionRecord

T = TypeVar("T")

DEFAULT_CONFIG = """\
# threadline config: every key is described in the config reference (docs/config.md).

[defaults]
# provider = "openai"     # unset: the first installed provider plugin whose API key is set
#                         # (threadline-openai, -anthropic, -gemini), else the offline echo
# model = "gpt-4.1-mini"  # a model of that provider: needs provider set

# [storage]
# backend = "sqlite"      # default: sqlite when threadline-sqlite is installed, else memory
# path = "~/.local/share/threadline/threadline.db"

# [providers.openai]
# api_key = "${OPENAI_API_KEY}"
"""


class _Text(click.ParamType[str]):
    """Text that storage can keep: a terminal or script that passes bytes which are not
    UTF-8 gets a clear error instead of a traceback from deep in a database driver."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not _is_utf8(text):
            self.fail("is not valid UTF-8 text (the shell passed bytes that are not text)", param, ctx)
        return text


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


TEXT = _Text()


class _SessionId(_Text):
    """A session id: text that is not empty (an empty one would match no session, or look
    like none was given)."""

    def __init__(self, alternative: str = "") -> None:
        self.alternative = alternative

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        if not text.strip():
            self.fail(
                f"a session id cannot be empty; `threadline sessions list` shows them{self.alternative}", param, ctx
            )
        return text

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from threadline.completion import session_ids

        return session_ids(ctx, incomplete)


SESSION_ID = _SessionId()

#: the config file looked for in the working directory, before the user's
LOCAL_CONFIG = "threadline.toml"
#: why a config file is the one in use, by where it was found
_SOURCES = {
    "option": "given by --config",
    "env": "given by THREADLINE_CONFIG",
    "cwd": "threadline.toml in the working directory",
    "user": "the user config file",
}


def default_config_path() -> Path:
    """The user's config file, which the CLI writes on first run when no other is found."""
    return user_config_dir() / "threadline.toml"


def find_config(config_path: str | None, source: str = "option") -> tuple[Path, str]:
    """The config file the CLI uses and where it was found: ``config_path`` (from ``--config``,
    or ``THREADLINE_CONFIG`` with ``source="env"``) when given, else ``./threadline.toml`` when
    there is one, else the user's config file. The path is absolute."""
    if config_path:
        return Path(os.path.abspath(os.path.expanduser(config_path))), source
    with contextlib.suppress(OSError):  # a working directory that was removed has no config
        local = Path.cwd() / LOCAL_CONFIG
        if local.is_file():
            return local, "cwd"
    return default_config_path(), "user"


def program() -> list[str]:
    """This run's program as a shell can start it again: ``threadline`` when that name on
    PATH is the script that runs, else the script's absolute path; ``python -m threadline``
    (the interpreter's full path unless it is the one on PATH) when run that way."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("threadline", "threadline.__main__"):
        return [_on_path(sys.executable) or "python", "-m", "threadline"]
    script = sys.argv[0] if sys.argv else ""
    if not script or script.startswith("-") or not os.path.isfile(script):  # python -c, or embedded
        return ["threadline"]
    if os.access(script, os.X_OK):
        return [_on_path(script)]
    return [_on_path(sys.executable) or "python", os.path.abspath(script)]


def _on_path(path: str) -> str:
    """``path``'s file name when PATH finds this very file by it, else ``path`` made absolute."""
    if not path:
        return path
    name, absolute = os.path.basename(path), os.path.abspath(path)
    found = shutil.which(name)
    return name if found is not None and os.path.abspath(found) == absolute else absolute


class _Group(click.Group):
    """Turns threadline's own errors into one line on stderr and exit code 1; takes a first
    argument with a space in it, which names no command, for ``prompt``'s question, and
    ``prompt``'s options before any command (``threadline -c "more"``) for ``prompt``'s."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from threadline.default_command import with_prompt

        return super().parse_args(ctx, with_prompt(self, args))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and " " in args[0].strip() and args[0] not in self.commands and "prompt" in self.commands:
            return "prompt", self.commands["prompt"], args
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ThreadlineError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            raise  # the reader went away (`| head`): click ends quietly, exit 1
        except KeyboardInterrupt:  # click would say "Aborted!" and exit 1
            click.echo("\ninterrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None


class _State:
    """What every command of one ``threadline`` run shares: the config file (see
    :func:`find_config`) and the one plugin manager built from it (``[plugins] disable`` and
    ``THREADLINE_PLUGINS`` applied)."""

    def __init__(self, config_path: str | None, source: str = "option") -> None:
        self.config_path, self.source = find_config(config_path, source)
        self._plugin_manager: PluginManager | None = None

    def describe(self) -> str:
        """The config file in use and why it is that one."""
        return f"{self.config_path} ({_SOURCES[self.source]})"

    def command(self, *args: str) -> str:
        """A ``threadline`` command line that runs ``args`` as this run would: the same program,
        and ``--config`` with this run's file unless it is the user's (found anywhere)."""
        config = [] if self.source == "user" else ["--config", str(self.config_path)]
        return shlex.join([*program(), *config, *args])

    def config(self) -> Config:
        if self.source == "user" and not self.config_path.exists():
            self.config_path.parent.mkdir(parents=True, exist_ok=True)
            self.config_path.write_text(DEFAULT_CONFIG, encoding="utf-8")
            click.echo(f"created a default config at {self.config_path}", err=True)
        from threadline.user_files import report_once, with_user_files  # templates and aliases saved as files

        return with_user_files(Config.load(self.config_path), report=report_once)

    def plugin_manager(self) -> PluginManager:
        if self._plugin_manager is None:
            disable = read_disabled_plugins(self.config_path) if self.config_path.exists() else ()
            self._plugin_manager = get_plugin_manager(disable=disable)
        return self._plugin_manager

    def manager(self, *, notice: bool = True, start_line: bool = False, memory: bool = False) -> SessionManager:
        """The ``SessionManager`` the config assembles (not open yet). ``start_line`` first says
        which config file is in use; ``notice`` says when storage fell back to memory;
        ``memory`` puts the memory storage in the place of the config's."""
        from threadline.manager import SessionManager

        config = self.config()
        if start_line:
            click.echo(f"config: {self.describe()}", err=True)
        storage = None
        if memory:
            from threadline.builtins.memory import MemoryStorage

            storage = MemoryStorage()
        manager = SessionManager(config, plugin_manager=self.plugin_manager(), storage=storage)
        if notice and not memory and config.storage.backend is None and manager.storage_backend == "memory":
            click.echo(f"note: storage is memory, nothing will persist: {self._no_storage(manager)}", err=True)
        return manager

    def _no_storage(self, manager: SessionManager) -> str:
        """Why no storage that persists was picked, and what to do about it."""
        others = sorted(set(manager.registry.storage) - {"memory"})
        if others:
            return f"set [storage] backend in {self.config_path} (installed: {', '.join(others)})"
        sqlite = next((info for info in manager.plugin_manager.infos if info.name == "sqlite"), None)
        if sqlite is not None and sqlite.status == "disabled":
            why = (
                f"[plugins] disable in {self.config_path} names it"
                if "sqlite" in manager.config.plugins.disable
                else "THREADLINE_PLUGINS leaves it out"
            )
            return f"threadline-sqlite is installed but disabled: {why}"
        if sqlite is not None:
            return f"threadline-sqlite is installed but failed to load: {sqlite.error} (see `threadline plugins`)"
        return f"install threadline-sqlite, or set [storage] backend in {self.config_path}"

    def not_found(self, manager: SessionManager, error: SessionNotFound) -> str:
        """``error`` with where the session was looked for and how to see what is there."""
        if manager.storage_backend == "memory":
            where = "the memory storage, which starts empty in every run"
        else:
            path = getattr(manager.storage, "path", None)
            where = (
                f"the {manager.storage_backend} database {os.path.abspath(path)}"
                if isinstance(path, str | os.PathLike)
                else f"the {manager.storage_backend} storage"
            )
        listing = self.command("sessions", "list")
        return f"{error} of {where} (config {self.config_path}); `{listing}` lists the sessions there"


def _state() -> _State:
    return click.get_current_context().find_object(_State) or _State(None)


def with_manager(function: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Make an async function a command body: it runs with the ``SessionManager`` the CLI's
    config assembles, open, as its first argument. For plugins' commands too."""
    return _with_manager(function)


def _with_manager(
    function: Callable[..., Awaitable[T]], *, start_line: bool = False, memory_option: str | None = None
) -> Callable[..., T]:
    """``memory_option``: the flag (``--no-log``) that makes the manager's storage memory."""

    @click.pass_obj
    def command(state: _State, *args: Any, **kwargs: Any) -> T:
        import asyncio

        memory = bool(memory_option and kwargs.get(memory_option))

        async def body() -> T:
            async with state.manager(start_line=start_line, memory=memory) as manager:
                try:
                    return await function(manager, *args, **kwargs)
                except SessionNotFound as error:
                    raise click.ClickException(state.not_found(manager, error)) from None
                except ConfigError as error:
                    raise _blamed_on_its_option(error) from None

        return asyncio.run(body())

    command.__name__ = function.__name__
    command.__doc__ = function.__doc__
    return command


def _blamed_on_its_option(error: ConfigError) -> Exception:
    """A config error about a value the command line gave (a key but no file: ``provider``
    from ``--provider``) as click's error for that option; any other as it is."""
    ctx = click.get_current_context()
    given = [p for p in ctx.command.params if p.name == error.key and ctx.params.get(p.name) is not None]
    if error.file is not None or not given:
        return error
    return click.BadParameter(error.reason, ctx, given[0])


@click.group(cls=_Group)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="THREADLINE_CONFIG",
    help="Config file [default: ./threadline.toml when there is one, else threadline.toml in the user "
    "config dir, created on first run; env THREADLINE_CONFIG]. `threadline config path` says which is used.",
)
@click.version_option(package_name="threadline", prog_name="threadline")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """threadline: LLM conversations that persist.

    Start with `threadline chat`; it runs on the offline echo provider until you
    install and configure a real one. For one question, `threadline "Why is the sky
    blue?"` is `threadline prompt "Why is the sky blue?"` (a first argument with a space in
    it; prompt's options go after it).

    The config file is --config PATH (or $THREADLINE_CONFIG), else threadline.toml in
    the working directory, else the one in the user config dir.
    """
    if not isinstance(ctx.obj, _State):  # main() made it already, to add the plugins' commands
        ctx.obj = _State(config_path, _source(ctx))


def _source(ctx: click.Context) -> str:
    """Where ``--config`` came from: the option, or ``THREADLINE_CONFIG``."""
    return "env" if ctx.get_parameter_source("config_path") is click.core.ParameterSource.ENVIRONMENT else "option"


# ---------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------


def _session_option(help: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """``--session ID``: a session to go on in, where leaving it out starts a new one."""
    return click.option(
        "--session",
        "session_id",
        metavar="ID",
        type=_SessionId(", or leave --session out to start a new session"),
        help=help,
    )


@cli.command()
@_session_option("Resume this session (`threadline sessions list` shows them).")
@click.option("--template", metavar="NAME", type=TEXT, help="Start from [templates.NAME] in the config.")
@click.option(
    "--provider",
    metavar="NAME",
    type=TEXT,
    help="Provider plugin to use (see `threadline plugins`), with its default model unless --model names one.",
)
@click.option("--model", metavar="NAME", type=TEXT, help="Model to ask for.")
@click.option("--system", "system_prompt", metavar="TEXT", type=TEXT, help="System prompt for a new session.")
@functools.partial(_with_manager, start_line=True)
async def chat(
    manager: SessionManager,
    session_id: str | None,
    template: str | None,
    provider: str | None,
    model: str | None,
    system_prompt: str | None,
) -> None:
    """Chat in the terminal; the reply streams as it arrives.

    \b
    Enter sends; Esc then Enter starts a new line, and a paste arrives as one message.
    Up and Down recall what you typed, in this run or earlier ones
    (kept in $XDG_DATA_HOME/threadline/chat_history, ~/.local/share/threadline/ by default).
    Ctrl-C stops a reply (what arrived is kept, marked incomplete) or clears the line.
    Type /history to see the conversation, /undo to take back the last turn, /retry to have
    the last message answered again, /edit N TEXT to change message N, /new to start another
    session, /quit (or Ctrl-D) to stop.

    The first line says which config file is in use. A new session is stored when the first
    message is sent; then a line gives the command that resumes it (with memory storage, that
    the session is not kept). An archived session cannot be resumed. A reply that fails prints
    one error line and the chat goes on. When standard input or output is not a terminal, each
    input line is a message (for scripts), and the exit status is 1 if any message got no reply.
    """
    from threadline.chat import run_chat

    await run_chat(
        manager,
        session_id=session_id,
        template=template,
        provider=provider,
        model=model,
        system_prompt=system_prompt,
        command=_state().command,
    )


@cli.command()
@click.argument("text", required=False, type=TEXT)
@click.option("-c", "--continue", "latest", is_flag=True, help="Ask in the latest session, not a new one.")
@_session_option("Ask in this session, not a new one.")
@click.option("-s", "--system", "system_prompt", metavar="TEXT", type=TEXT, help="The system prompt of a new session.")
@click.option(
    "-t", "--template", metavar="NAME", type=TEXT, help="A new session's template (see `threadline templates`)."
)
@click.option(
    "-p", "--provider", metavar="NAME", type=TEXT, help="The provider to ask [default: the session's, or the config's]."
)
@click.option("-m", "--model", metavar="NAME", type=TEXT, help="The model to ask [default: the provider's].")
@click.option(
    "-o",
    "--option",
    "options",
    type=(TEXT, TEXT),
    multiple=True,
    metavar="KEY VALUE",
    help="temperature, max_tokens, stop (repeat it), or any option of the provider's API, passed on as it is.",
)
@click.option(
    "-a",
    "--attach",
    "attachments",
    multiple=True,
    metavar="FILE|URL|-",
    help="An image, a PDF or a text file to send along (50 MB at most); - reads stdin.",
)
@click.option("--no-stream", is_flag=True, help="Print the reply when it is whole.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the reply as one JSON object: session, provider, model, text, usage."
)
@click.option(
    "--schema",
    metavar="JSON|FILE|FIELDS",
    type=TEXT,
    help="Ask for JSON that matches this schema and print it: a JSON schema, a file holding one, or fields"
    " ('name, age int, bio: one sentence').",
)
@click.option("--no-log", is_flag=True, help="Keep nothing: the session lives in memory for this run only.")
@functools.partial(_with_manager, memory_option="no_log")
async def prompt(
    manager: SessionManager,
    text: str | None,
    latest: bool,
    session_id: str | None,
    system_prompt: str | None,
    template: str | None,
    provider: str | None,
    model: str | None,
    options: tuple[tuple[str, str], ...],
    attachments: tuple[str, ...],
    no_stream: bool,
    as_json: bool,
    schema: str | None,
    no_log: bool,
) -> None:
    """Ask one question; the reply streams to stdout, and both are stored as a session.
    What is piped in is added to the question after a blank line.
    """
    from threadline.prompt import run_prompt

    if no_log and (latest or session_id):
        raise click.UsageError("--no-log keeps nothing, so there is no session to go on in: leave out -c/--session")
    await run_prompt(
        manager, text=text, session_id=session_id, latest=latest, system_prompt=system_prompt, provider=provider,
        model=model, options=options, attachments=attachments, stream=not no_stream, as_json=as_json,
        schema=schema, template=template,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------


@cli.group()
def sessions() -> None:
    """List, show, archive, delete, export and import sessions."""


@sessions.command("list")
@click.option("--user", "user_id", metavar="ID", type=TEXT, help="Only this user's sessions.")
@click.option("--status", type=click.Choice(["active", "archived"]), help="Only sessions with this status.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Sessions per page.")
@click.option("--cursor", metavar="CURSOR", type=TEXT, help="Continue from the cursor a previous page printed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_manager
async def list_sessions(
    manager: SessionManager, user_id: str | None, status: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List sessions, most recent activity first: id, last activity, provider/model, messages,
    tokens, title. When there are more, the command for the next page follows on stderr."""
    page = await manager.list_sessions(user_id=user_id, status=status, limit=limit, cursor=cursor)
    for record in page.items:
        click.echo(json.dumps(_summary(record)) if as_json else _format_summary(record))
    if page.next_cursor:
        options = [*(["--user", user_id] if user_id is not None else []), *(["--status", status] if status else [])]
        options += ["--limit", str(limit), *(["--json"] if as_json else []), "--cursor", page.next_cursor]
        click.echo(f"more: {_state().command('sessions', 'list', *options)}", err=True)
    if not page.items and not as_json:
        click.echo("no sessions", err=True)


def _summary(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "title": record.title,
        "user_id": record.user_id,
        "status": record.status.value,
        "provider": record.provider,
        "model": record.model,
        "messages": record.message_count,
        "tokens": record.usage.total_tokens,
        "updated_at": record.updated_at.isoformat(),
    }


def _format_summary(record: SessionRecord) -> str:
    title = record.title or "(untitled)"
    when = record.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    status = " [archived]" if record.status.value == "archived" else ""
    counts = f"{record.message_count:>4} msgs  {record.usage.total_tokens:>7} tok"
    return f"{record.id}  {when}  {provider_model(record)}  {counts}  {printable(title)}{status}"


def provider_model(record: SessionRecord) -> str:
    """``provider/model``, or the provider alone when the session leaves the model to it."""
    return f"{record.provider}/{record.model}" if record.model else record.provider


@sessions.command()
@click.argument("text", type=TEXT)
@click.option("--user", "user_id", metavar="ID", type=TEXT, help="Only this user's sessions.")
@click.option("--provider", metavar="NAME", type=TEXT, help="Only sessions of this provider.")
@click.option(
    "--since",
    metavar="DATE|DURATION",
    type=Since(),
    help="Only messages since then: a date, or minutes/hours/days/weeks ago (30m, 12h, 7d, 2w).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Most messages to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_manager
async def search(
    manager: SessionManager, text: str, user_id: str | None, provider: str | None, since: Any, limit: int,
    as_json: bool,
) -> None:  # fmt: skip
    """Find messages that have every word of TEXT (case and accents aside), best match first:
    session id, message number, role, when, and the words around the match in [brackets].

    Quotes, * and AND are not syntax: they are looked for as words, or left out. Needs a
    storage that can search (sqlite; memory).
    """
    from threadline.search_cli import run_search

    await run_search(
        manager, text, user_id=user_id, provider=provider, since=since, limit=limit, as_json=as_json
    )  # fmt: skip


@sessions.command()
@click.argument("session_id", type=SESSION_ID)
@click.option(
    "--json", "as_json", is_flag=True, help="The session and its messages as JSON lines, as an export writes them."
)
@click.option("--raw", is_flag=True, help="With --json: the records as stored, as `export --raw` writes them.")
@with_manager
async def show(manager: SessionManager, session_id: str, as_json: bool, raw: bool) -> None:
    """Show a session and its messages."""
    from threadline.model import dump_record

    session = await manager.get_session(session_id)
    messages = await session.history()
    if as_json:
        records: list[Record] = [session.record, *messages]
        for record in records:
            click.echo(dump_record(await manager.exported(record, raw=raw)))
        return
    click.echo(_format_summary(session.record))
    for message in messages:
        click.echo(format_message(message))


def format_message(message: Message) -> str:
    from threadline.model import ToolCall, ToolResult

    pieces = []
    for part in message.parts:
        if isinstance(part, ToolCall):
            pieces.append(f"[call {part.name}({json.dumps(dict(part.arguments))})]")
        elif isinstance(part, ToolResult):
            pieces.append(f"[result{' error' if part.is_error else ''}: {part.content}]")
        elif hasattr(part, "text"):
            pieces.append(part.text)
        else:
            pieces.append(f"[{getattr(part, 'media_type', 'attachment')}]")
    status = (
        ""
        if message.status.value == "ok"
        else f" ({message.status.value}{': ' + message.error if message.error else ''})"
    )
    return printable(f"{message.seq:>4} {message.role.value}{status}: {' '.join(pieces)}")


@sessions.command()
@click.argument("session_id", type=SESSION_ID)
@click.argument("seq", type=click.IntRange(min=1))
@click.argument("text", required=False)
@click.option("--remove", is_flag=True, help="Remove message SEQ instead; the ones after it move up one.")
@with_manager
async def edit(manager: SessionManager, session_id: str, seq: int, text: str | None, remove: bool) -> None:
    """Change what message SEQ says to TEXT (or remove it, with --remove).

    The old message is kept: `threadline sessions revisions SESSION_ID` shows it. A tool call
    or its result cannot be changed alone: undo the turn instead. SEQ is the number
    `threadline sessions show` prints before each message.
    """
    if remove == (text is not None):
        raise click.UsageError(
            "give the new TEXT, or --remove, not both" if remove else "give the new TEXT, or --remove"
        )
    session = await manager.get_session(session_id)
    if remove:
        removed = await session.remove(seq)
        click.echo(f"removed message {seq}: {format_message(removed)}")
    else:
        assert text is not None
        click.echo(format_message(await session.edit(seq, text)))


@sessions.command()
@click.argument("session_id", type=SESSION_ID)
@with_manager
async def undo(manager: SessionManager, session_id: str) -> None:
    """Take back the last turn: the last user message and everything after it (kept, as a
    revision)."""
    undone = await (await manager.get_session(session_id)).undo()
    click.echo(f"took back {len(undone)} message{'s' * (len(undone) != 1)}:")
    for message in undone:
        click.echo(format_message(message))


@sessions.command()
@click.argument("session_id", type=SESSION_ID)
@click.option("--json", "as_json", is_flag=True, help="Each revision as a JSON object, one a line.")
@with_manager
async def revisions(manager: SessionManager, session_id: str, as_json: bool) -> None:
    """Show every edit of a session's history, oldest first, with the messages it replaced."""
    from threadline.model import dump

    kept = await (await manager.get_session(session_id)).revisions()
    for revision in kept:
        if as_json:
            click.echo(json.dumps(dump(revision), ensure_ascii=False))
            continue
        click.echo(
            f"revision {revision.number} ({revision.created_at:%Y-%m-%d %H:%M:%S}): after message "
            f"{revision.after_seq}, {len(revision.replaced)} replaced by {revision.added}"
        )
        for message in revision.replaced:
            click.echo(format_message(message))
    if not kept and not as_json:
        click.echo("no revisions: the history was never edited", err=True)


@sessions.command()
@click.argument("session_id", type=SESSION_ID)
@with_manager
async def archive(manager: SessionManager, session_id: str) -> None:
    """Archive a session (it stays listable with --status archived)."""
    await (await manager.get_session(session_id)).archive()
    click.echo(f"archived {session_id}")


@sessions.command()
@click.argument("session_id", type=SESSION_ID)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_manager
async def delete(manager: SessionManager, session_id: str, yes: bool) -> None:
    """Delete a session and all its messages."""
    if not yes and not sys.stdin.isatty():
        raise click.UsageError("not a terminal, so nobody can confirm: pass --yes to delete")
    session = await manager.get_session(session_id)
    if not yes:
        click.confirm(f"delete session {session_id} and its {session.record.message_count} messages?", abort=True)
    await session.delete()
    click.echo(f"deleted {session_id}")


@sessions.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="File to write [default: stdout].",
)
@click.option("--tenant", metavar="NAME", type=TEXT, help="This tenant's sessions [default: the configured tenant].")
@click.option("--all-tenants", is_flag=True, help="Every tenant's sessions.")
@click.option(
    "--raw",
    is_flag=True,
    help="The records as stored: without the middleware's export stage, which takes out what "
    "must stay on this storage (a plugin's keys, pseudonym maps). For a move to another storage.",
)
@with_manager
async def export(manager: SessionManager, output: str, tenant: str | None, all_tenants: bool, raw: bool) -> None:
    """Export sessions and messages as JSON lines."""
    with _whole_file(output) as out:
        count = await manager.export_jsonl(out, tenant=tenant, all_tenants=all_tenants, raw=raw)
    click.echo(f"exported {count} records", err=True)


@contextlib.contextmanager
def _whole_file(output: str) -> Iterator[IO[str]]:
    """Standard output for ``-``; else a file that appears under its name only once it is
    written whole (a failure half way leaves nothing that looks complete)."""
    if output == "-":
        yield sys.stdout
        return
    target = Path(output)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            yield out
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


@sessions.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_manager
async def import_(manager: SessionManager, path: str) -> None:
    """Import a JSON-lines export: all of it, or nothing if any line is bad."""
    count = await manager.import_jsonl(path)
    click.echo(f"imported {count} records")


@sessions.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--tenant", metavar="NAME", type=TEXT, help="Only this tenant's sessions [default: every tenant's].")
@click.option("--replace", is_flag=True, help="Write over a file at PATH (never over anything but a file).")
@with_manager
async def backup(manager: SessionManager, path: str, tenant: str | None, replace: bool) -> None:
    """Back up the sessions and messages as stored, to a new gzip-compressed file that its
    owner alone may read.

    The file's first line says how many sessions and messages follow and their checksum;
    `threadline sessions restore PATH` checks them. It appears under PATH only once whole.
    A backup of one storage restores into any other."""
    from threadline.backup import backup_sessions

    header = await backup_sessions(manager.storage, path, tenant=tenant, replace=replace)
    click.echo(f"backed up {header.describe()} to {path}")


@sessions.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_manager
async def restore(manager: SessionManager, path: str) -> None:
    """Restore a backup that `threadline sessions backup` wrote: all of it, once its counts
    and checksum are found to match, or nothing. A session the storage has already is not
    overwritten: the restore stops, and nothing is restored."""
    from threadline.backup import restore_sessions

    header = await restore_sessions(manager.storage, path)
    click.echo(f"restored {header.describe()} from {path}")


@sessions.command()
@with_manager
async def vacuum(manager: SessionManager) -> None:
    """Give the disk space of deleted sessions back to the system (SQLite: rewrites the
    database file compactly; writes wait meanwhile)."""
    given_back = await manager.vacuum()
    click.echo(f"vacuumed: {given_back / 1e6:.1f} MB given back")


# ---------------------------------------------------------------------------
# migrate
# ---------------------------------------------------------------------------


class _Setting(_Text):
    """``KEY=VALUE``: a storage setting given on the command line; the value read as TOML
    when it is a TOML value (``5``, ``true``, ``"text"``), else as text."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import tomllib

        key, sep, raw = super().convert(value, param, ctx).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE (path=chats.db, say)", param, ctx)
        try:
            return key.strip(), tomllib.loads(f"value = {raw}")["value"]
        except tomllib.TOMLDecodeError:
            return key.strip(), raw


def _side_options(side: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """``--{side}``, ``--{side}-backend`` and ``--{side}-setting``: one side of a migration."""
    storage = "the source" if side == "from" else "the target"

    def add(function: Callable[..., T]) -> Callable[..., T]:
        for option in reversed([
            click.option(f"--{side}", f"{side}_config", metavar="CONFIG",
                         type=click.Path(exists=True, dir_okay=False),
                         help=f"Config file whose [storage] is {storage}."),
            click.option(f"--{side}-backend", f"{side}_backend", metavar="NAME", type=TEXT,
                         help=f"Storage backend of {storage}, instead of --{side} (see `threadline plugins`)."),
            click.option(f"--{side}-setting", f"{side}_settings", metavar="KEY=VALUE", type=_Setting(),
                         multiple=True, help=f"A [storage] setting of --{side}-backend; repeat for each."),
        ]):  # fmt: skip
            function = option(function)
        return function

    return add


@cli.command()
@_side_options("from")
@_side_options("to")
@click.option("--tenant", metavar="NAME", type=TEXT, help="Only this tenant's sessions [default: every tenant's].")
def migrate(
    from_config: str | None,
    from_backend: str | None,
    from_settings: tuple[tuple[str, Any], ...],
    to_config: str | None,
    to_backend: str | None,
    to_settings: tuple[tuple[str, Any], ...],
    tenant: str | None,
) -> None:
    """Copy every session and message from one storage to another, any backend to any other.

    \b
    threadline migrate --from old.toml --to new.toml
    threadline migrate --from-backend sqlite --from-setting path=chats.db \\
        --to-backend postgres --to-setting dsn=postgresql://db.internal/threadline

    The records move as stored (no middleware runs). A progress bar shows sessions and messages
    on a terminal. At the end the sessions are read back from the target, and their counts and
    checksum compared with what was read. Interrupted, run it again: sessions the target has
    already, the same, are skipped. A session the target has with other contents is not
    overwritten: it is named, and the exit status is 1. The --config file is not used.
    """
    import asyncio

    sides = [("from", from_config, from_backend, from_settings), ("to", to_config, to_backend, to_settings)]
    for side in sides:  # both sides' options, before either storage is looked up
        _check_side(*side)
    source, target = (_migration_side(*side) for side in sides)
    asyncio.run(_migrate(source, target, tenant))


def _check_side(side: str, config_path: str | None, backend: str | None, settings: tuple[tuple[str, Any], ...]) -> None:
    which = "the source" if side == "from" else "the target"
    if config_path is None and backend is None:
        raise click.UsageError(f"name {which} with --{side} CONFIG or --{side}-backend NAME")
    if config_path is not None and backend is not None:
        raise click.UsageError(f"name {which} with --{side} CONFIG or --{side}-backend NAME, not both")
    if config_path is not None and settings:
        raise click.UsageError(f"--{side}-setting goes with --{side}-backend; --{side} CONFIG has its settings")


def _migration_side(
    side: str, config_path: str | None, backend: str | None, settings: tuple[tuple[str, Any], ...]
) -> tuple[SessionManager, str]:
    """The manager of one side of a migration, holding only its storage, and how to name it."""
    from threadline.manager import SessionManager

    try:
        if config_path is not None:
            config = Config.load(config_path)
        else:
            config = Config.from_dict({"storage": {"backend": backend, **dict(settings)}})
        storage_only = Config(storage=config.storage, plugins=config.plugins, path=config.path)
        manager = SessionManager(storage_only, plugin_manager=get_plugin_manager(disable=config.plugins.disable))
    except ConfigError as exc:
        if exc.file is not None:
            raise
        option = f"--{side}-backend" if exc.key == "storage.backend" else f"--{side}-setting"
        raise click.UsageError(f"{option}: {exc.reason}") from None
    if manager.storage_backend == "memory":
        raise click.UsageError(f"--{side}: the memory storage keeps nothing between runs; name a storage that persists")
    return manager, f"{manager.storage_backend} ({config_path or f'--{side}-backend'})"


async def _migrate(source: tuple[SessionManager, str], target: tuple[SessionManager, str], tenant: str | None) -> None:
    from threadline.errors import MigrationIncomplete
    from threadline.migrate import count_sessions, migrate_sessions
    from threadline.progress import MigrationProgress

    (source_manager, source_name), (target_manager, target_name) = source, target
    async with source_manager as reading, target_manager as writing:
        totals = None if tenant is None else await count_sessions(reading.storage, tenant)
        try:
            with MigrationProgress(totals) as progress:
                report = await migrate_sessions(reading.storage, writing.storage, tenant=tenant, on_progress=progress)
        except MigrationIncomplete as exc:
            _say_migrated(exc.report, source_name, target_name)
            raise
    _say_migrated(report, source_name, target_name)
    if not report.read.sessions:
        of = f" of tenant {tenant!r}" if tenant is not None else ""
        raise click.ClickException(f"nothing to copy: {source_name} holds no sessions{of}; is it the right source?")


def _say_migrated(report: MigrationReport, source: str, target: str) -> None:
    for tenant, session_id in report.differing:
        click.echo(f"differs in the target, not copied: {session_id!r} (tenant {tenant!r})")
    for tenant, session_id in report.unverified:
        click.echo(f"not as read in the target at the end: {session_id!r} (tenant {tenant!r})")
    for tenant, session_id, why in report.refused:
        click.echo(f"the target cannot store it, not copied: {session_id!r} (tenant {tenant!r}): {why}")
    click.echo(f"read {report.read.sessions:,} sessions, {report.read.messages:,} messages from {source}")
    click.echo(
        f"copied {report.copied.sessions:,} sessions, {report.copied.messages:,} messages to {target}; "
        f"{report.already_there:,} sessions were there already"
    )
    click.echo(f"verified in the target: {report.verified.describe()}")


# ---------------------------------------------------------------------------
# plugins and config
# ---------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per plugin.")
@click.pass_obj
def plugins(state: _State, as_json: bool) -> None:
    """List plugins: distribution, version, hooks, and status or import error."""
    for info in state.plugin_manager().infos:
        if as_json:
            click.echo(json.dumps({
                "name": info.name, "distribution": info.distribution, "version": info.version,
                "status": info.status, "error": info.error, "hooks": list(info.hooks),
            }))  # fmt: skip
            continue
        where = f"{info.distribution} {info.version}" if info.distribution else "(in-process)"
        click.echo(f"{info.name:<16} {where:<28} {info.status}")
        if info.hooks:
            click.echo(f"{'':<16} hooks: {', '.join(info.hooks)}")
        if info.error:
            click.echo(f"{'':<16} error: {info.error}")


@cli.group("config")
def config_group() -> None:
    """Inspect the config file in use: --config, else ./threadline.toml, else the user's."""


@config_group.command()
@click.pass_obj
def check(state: _State) -> None:
    """Check the config file in use: every section, plugin and key; and what `threadline chat`
    checks before it starts, for the default provider, each template and each provider table:
    the environment variables the table names are set, an API key is set, the template's tools
    are registered."""
    manager = state.manager(notice=False)
    config = manager.config
    manager.check()
    click.echo(f"ok: {state.describe()}")
    click.echo(f"  storage: {manager.storage_backend}")
    click.echo(f"  providers: {', '.join(sorted(manager.registry.providers))} (default {manager.default_provider})")
    click.echo(f"  middleware: {', '.join(config.middleware.chain) or '(none)'}")
    click.echo(f"  templates: {', '.join(sorted(config.templates)) or '(none)'}")


@config_group.command()
@click.pass_obj
def path(state: _State) -> None:
    """Print the path of the config file in use; on stderr, why it is that one (--config,
    THREADLINE_CONFIG, ./threadline.toml, or the user's)."""
    click.echo(state.config_path)
    click.echo(f"({_SOURCES[state.source]}{'' if state.config_path.exists() else '; not written yet'})", err=True)


# ---------------------------------------------------------------------------
# the commands in modules of their own, and the examples every command's --help ends with
# ---------------------------------------------------------------------------

from threadline.completion import completion  # noqa: E402 -- these modules use what is defined above
from threadline.examples import add_examples  # noqa: E402
from threadline.install_cli import install, uninstall  # noqa: E402
from threadline.keys_cli import keys  # noqa: E402
from threadline.models_cli import models  # noqa: E402
from threadline.templates_cli import aliases, templates  # noqa: E402

for _command in (templates, aliases, keys, models, install, uninstall, completion):
    cli.add_command(_command)
add_examples(cli)


# ---------------------------------------------------------------------------


def _state_for(args: list[str]) -> _State:
    """The state of this run, from the ``--config`` option (or ``THREADLINE_CONFIG``) read
    ahead of the real parse: plugin commands must be added before it."""
    context = cli.make_context("threadline", list(args), resilient_parsing=True)
    return _State(context.params.get("config_path"), _source(context))


def _add_plugin_commands(state: _State) -> None:
    """Let the enabled plugins add their commands (one that fails is logged with its name and
    unloaded); a config that cannot be read adds none: the command that runs reports it."""
    try:
        plugin_manager = state.plugin_manager()
    except ThreadlineError:
        return
    plugin_manager.hook.threadline_register_commands(cli=cli)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    state = _state_for(args)
    _add_plugin_commands(state)
    try:
        cli.main(args=args, prog_name="threadline", obj=state)
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
