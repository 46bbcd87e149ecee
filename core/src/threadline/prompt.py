"""``threadline prompt``: one question, its reply streamed to stdout, the two stored as a
session (a new one, the latest with ``-c``, or ``--session ID``)."""

from __future__ import annotations

import contextlib
import json
import math
import mimetypes
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import click

from threadline.errors import ConfigError
from threadline.manager import SessionManager
from threadline.model import Done, File, Image, Message, Part, Text, TextDelta
from threadline.output import shape_of
from threadline.printable import PrintableStream, printable
from threadline.session import Session

NAMED_OPTIONS: Final[dict[str, tuple[type, Callable[[Any], bool], str]]] = {
    "temperature": (float, lambda t: math.isfinite(t) and t >= 0, "a number of 0 or more"),
    "max_tokens": (int, lambda n: n >= 1, "a whole number of 1 or more"),
}
"""``-o`` keys that are ``send``'s own arguments; ``stop`` may be given more than once, and
every other key goes to the provider as it is (``options={...}``)."""
BUILT: Final = {
    "model": "-m sets",
    "stream": "--no-stream sets",
    "messages": "the session holds",
    "input": "the session holds",
    "contents": "the session holds",
    "system": "-s sets",
    "instructions": "-s sets",
    "tools": "the session holds",
}
"""``-o`` keys that would overwrite what threadline builds of the request."""
SHORT_TYPES: Final = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
"""The types of ``--schema``'s short form (``"name, age int, bio: a sentence"``)."""
MAX_ATTACHMENT: Final = 50 * 1024 * 1024
ATTACHABLE: Final = ("image/", "application/pdf", "text/")


def question(text: str | None, piped: str | None) -> str:
    """The prompt: ``text``, then what was piped in after a blank line (each without the
    whitespace it ends with); a usage error when there is neither."""
    parts = [part.rstrip() for part in (text, piped) if part and part.strip()]
    if not parts:
        raise click.UsageError(
            "give the question as an argument, or pipe it in: threadline prompt 'Why is the sky blue?'"
        )
    return "\n\n".join(parts)


def read_schema(source: str) -> dict[str, Any]:
    """``--schema``: a JSON schema, inline or in a file, or fields in short form: each
    ``name [type][: description]``, split by commas or lines, the type ``str`` unless it is
    ``int``, ``float`` or ``bool``. Checked as a schema before anything is sent."""
    schema = _schema_source(source)
    try:
        shape_of(schema)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("output= "), param_hint="--schema") from None
    return schema


def _schema_source(source: str) -> dict[str, Any]:
    path = Path(source).expanduser()
    if path.is_file():
        try:
            return _schema_json(path.read_text(encoding="utf-8"), f"the file {source}")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {source}: {exc}", param_hint="--schema") from None
    if source.lstrip().startswith(("{", "[")):
        return _schema_json(source, "--schema")
    if path.is_dir():
        raise click.BadParameter(f"{source} is a folder: name the schema file in it", param_hint="--schema")
    if source.endswith(".json") or os.sep in source:
        raise click.BadParameter(f"no such file: {source}", param_hint="--schema")
    fields = [_short_field(field) for field in source.replace("\n", ",").split(",") if field.strip()]
    names = [name for name, _ in fields]
    if not fields or len(set(names)) < len(names):
        wrong = "names a field twice" if fields else "is empty"
        raise click.BadParameter(
            f"{source!r} {wrong}: give a JSON schema, a file that holds one, or fields ('name, age int')",
            param_hint="--schema",
        )
    return {"type": "object", "properties": dict(fields), "required": names, "additionalProperties": False}


def _schema_json(text: str, where: str) -> dict[str, Any]:
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{where} is not JSON: {exc}", param_hint="--schema") from None
    if not isinstance(schema, dict):
        raise click.BadParameter(
            f"{where} holds a JSON {type(schema).__name__}, not a schema (an object)", param_hint="--schema"
        )
    return schema


def _short_field(field: str) -> tuple[str, dict[str, Any]]:
    """One field of the short form: its name, and its schema."""
    declaration, _, description = field.partition(":")
    words = declaration.split()
    typed = len(words) == 2 and words[1] in SHORT_TYPES
    if not words or not words[0].isidentifier() or (len(words) > 1 and not typed):
        raise click.BadParameter(
            f"{field.strip()!r} is not a field: write 'name', or 'name TYPE' with TYPE one of {', '.join(SHORT_TYPES)},"
            " then ': a description' if you like",
            param_hint="--schema",
        )
    schema: dict[str, Any] = {"type": SHORT_TYPES[words[1] if len(words) > 1 else "str"]}
    if description.strip():
        schema["description"] = description.strip()
    return words[0], schema


def send_options(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``-o KEY VALUE`` pairs as ``send``'s keyword arguments; a value that reads as JSON is
    taken as it reads (``-o top_p 0.9``), any other as text."""
    named: dict[str, Any] = {}
    stop: list[str] = []
    extra: dict[str, Any] = {}
    for key, value in pairs:
        if key in BUILT:
            raise click.BadParameter(f"{key} is what {BUILT[key]}: leave -o {key} out", param_hint="-o")
        if key == "stop":
            if not value:
                raise click.BadParameter("stop takes the text to stop at, not nothing", param_hint="-o")
            stop.append(value)
        elif key in NAMED_OPTIONS:
            named[key] = _number(key, value)
        else:
            extra[key] = _json_or_text(value)
    return {**named, **({"stop": stop} if stop else {}), **({"options": extra} if extra else {})}


def _number(key: str, value: str) -> float | int:
    kind, check, what = NAMED_OPTIONS[key]
    wrong = click.BadParameter(f"{key} takes {what}, not {value!r}", param_hint="-o")
    try:
        number: float | int = kind(value)
    except ValueError:
        raise wrong from None
    if not check(number):
        raise wrong
    return number


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def attachment(source: str, stdin: bytes | None) -> Part:
    """``-a``'s ``source`` as a part: a URL (kept a URL), ``-`` (what was piped in), or a file;
    its media type from its name (an image, else a file: PDF, text)."""
    if source.startswith(("http://", "https://")):
        media = mimetypes.guess_type(source.split("?", 1)[0])[0] or "image/jpeg"
        return Image(media, url=source) if media.startswith("image/") else File(media, url=source)
    if source == "-":
        if not stdin:
            raise click.BadParameter("'-' attaches what is piped in, and nothing was", param_hint="-a")
        return _part(stdin, None, None)
    path = Path(source)
    try:
        if path.stat().st_size > MAX_ATTACHMENT:
            raise click.BadParameter(f"{source} is over {MAX_ATTACHMENT // 2**20} MB", param_hint="-a")
        data = path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source}: {exc.strerror or exc}", param_hint="-a") from None
    return _part(data, mimetypes.guess_type(path.name)[0], path.name)


def _part(data: bytes, media: str | None, name: str | None) -> Part:
    media = media or _sniffed(data)
    if not media.startswith(ATTACHABLE):
        raise click.BadParameter(f"{name or '-'} is {media}: attach an image, a PDF or a text file", param_hint="-a")
    return Image(media, data=data) if media.startswith("image/") else File(media, data=data, name=name)


def _sniffed(data: bytes) -> str:
    """The media type of bytes with no name, from their first bytes."""
    for magic, media in ((b"%PDF", "application/pdf"), (b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                         (b"GIF8", "image/gif"), (b"RIFF", "image/webp")):  # fmt: skip
        if data.startswith(magic):
            return media
    return "text/plain"


async def session_for(
    manager: SessionManager,
    session_id: str | None,
    latest: bool,
    *,
    system_prompt: str | None,
    provider: str | None,
    model: str | None,
    template: str | None = None,
) -> Session:
    """The session to ask in: ``session_id``'s, the latest with ``latest``, else a new one."""
    if session_id is not None and latest:
        raise click.UsageError("give --session ID or -c/--continue, not both")
    if session_id is not None:
        return await manager.get_session(session_id)
    if latest:
        newest = (await manager.list_sessions(limit=1)).items
        if not newest:
            raise click.UsageError("there is no session to continue yet: leave out -c to start one")
        return await manager.get_session(newest[0].id)
    try:
        manager.check_new_session(template=template, provider=provider)  # no session for a provider that cannot answer
    except ConfigError as exc:
        hint = "-t/--template" if exc.key == "template" else "-p/--provider"
        raise click.BadParameter(exc.reason, param_hint=hint) from None
    return await manager.create_session(provider=provider, model=model, system_prompt=system_prompt, template=template)


async def ask(
    session: Session,
    content: list[Part],
    *,
    stream: bool,
    as_json: bool,
    schema: dict[str, Any] | None = None,
    **options: Any,
) -> Message:
    """Send ``content``; the reply's text goes to stdout as it arrives (``stream``), or whole
    at the end, or as one JSON object (``as_json``). With a ``schema``, the reply's JSON,
    checked against it, is what is printed."""
    if schema is not None:
        value = await session.send(content, output=schema, **options)
        (reply,) = await session.history(limit=1)
        click.echo(json.dumps({**_as_json(session, reply), "output": value} if as_json else value, ensure_ascii=False))
        return reply
    if stream and not as_json:
        return await _streamed(session, content, **options)
    whole: Message = await session.send(content, **options)
    click.echo(json.dumps(_as_json(session, whole), ensure_ascii=False) if as_json else printable(whole.text))
    return whole


async def _streamed(session: Session, content: list[Part], **options: Any) -> Message:
    """Send ``content``, the reply's text going to stdout as it arrives."""
    reply = None
    shown = PrintableStream()
    async with contextlib.aclosing(session.stream(content, **options)) as events:  # closed on a broken pipe
        async for event in events:
            if isinstance(event, TextDelta):
                click.echo(shown(event.text), nl=False)
                sys.stdout.flush()
            elif isinstance(event, Done):
                reply = event.message
    click.echo()
    assert reply is not None
    return reply


def _as_json(session: Session, reply: Message) -> dict[str, Any]:
    usage = reply.usage
    return {
        "session": session.id,
        "provider": reply.provider,
        "model": reply.model,
        "text": reply.text,
        "usage": None if usage is None else {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    }


async def run_prompt(
    manager: SessionManager,
    *,
    text: str | None,
    session_id: str | None,
    latest: bool,
    system_prompt: str | None,
    provider: str | None,
    model: str | None,
    options: Sequence[tuple[str, str]],
    attachments: Sequence[str],
    stream: bool,
    as_json: bool,
    schema: str | None = None,
    template: str | None = None,
) -> None:
    """The whole command: read what was piped in, find or make the session, ask."""
    wanted = None if schema is None else read_schema(schema)
    piped = None if sys.stdin.isatty() else sys.stdin.buffer.read()
    attached = [attachment(source, piped) for source in attachments]
    piped_text = None if piped is None or "-" in attachments else piped.decode("utf-8", "replace")
    content: list[Part] = [Text(question(text, piped_text)), *attached]
    arguments = send_options(options)
    session = await session_for(
        manager, session_id, latest, system_prompt=system_prompt, provider=provider, model=model, template=template
    )
    if model is not None:
        arguments["model"] = model
    if session_id or latest:
        if provider is not None:
            arguments["provider"] = provider
        if system_prompt is not None:
            click.echo("note: -s sets the system prompt of a new session; this one keeps its own", err=True)
        if template is not None:
            click.echo("note: -t starts a new session from a template; this one keeps its own settings", err=True)
    await ask(session, content, stream=stream, as_json=as_json, schema=wanted, **arguments)
