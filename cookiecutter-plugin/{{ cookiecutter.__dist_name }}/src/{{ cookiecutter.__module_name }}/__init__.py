{%- set name = cookiecutter.plugin_name -%}
{%- set module = cookiecutter.__module_name -%}
{%- set cls = cookiecutter.__class_name -%}
"""{{ cookiecutter.description }}

threadline finds this module through the ``threadline`` entry point in pyproject.toml and
imports it whenever it starts (``threadline --help`` included), so it stays light: what is
heavy (an SDK, a driver) is imported inside the factory, when the plugin is first used.
"""

from __future__ import annotations
{% if cookiecutter.kind == "provider" %}
from typing import TYPE_CHECKING

import attrs
from attrs import field, frozen
from threadline.plugin import hookimpl

if TYPE_CHECKING:
    from threadline.plugin import Register

    from {{ module }}.provider import {{ cls }}Provider

__all__ = ["{{ cls }}Config", "make_provider"]


@frozen
class {{ cls }}Config:
    """``[providers.{{ name }}]`` in threadline.toml.

    :param chunk_size: characters in each streamed chunk.
    :param default_model: the model name replies report when a call names none.
    """

    chunk_size: int = field(default=4, validator=attrs.validators.ge(1))
    default_model: str = "{{ name }}-1"


def make_provider(config: {{ cls }}Config) -> {{ cls }}Provider:
    from {{ module }}.provider import {{ cls }}Provider

    return {{ cls }}Provider(config)


@hookimpl
def threadline_register_providers(register: Register) -> None:
    register("{{ name }}", make_provider, config={{ cls }}Config)
{% elif cookiecutter.kind == "storage" %}
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import field, frozen
from threadline.plugin import hookimpl, user_data_dir

if TYPE_CHECKING:
    from threadline.plugin import Register

    from {{ module }}.storage import {{ cls }}Storage

__all__ = ["{{ cls }}Config", "make_storage"]


def _expand(path: str | Path) -> Path:
    return Path(path).expanduser()


@frozen
class {{ cls }}Config:
    """``[storage]`` in threadline.toml when ``backend = "{{ name }}"``.

    :param path: the JSON-lines file the sessions are kept in; ``~`` is expanded.
    """

    path: Path = field(factory=lambda: user_data_dir() / "{{ name }}.jsonl", converter=_expand)


def make_storage(config: {{ cls }}Config) -> {{ cls }}Storage:
    from {{ module }}.storage import {{ cls }}Storage

    return {{ cls }}Storage(config)


@hookimpl
def threadline_register_storage(register: Register) -> None:
    register("{{ name }}", make_storage, config={{ cls }}Config)
{% elif cookiecutter.kind == "middleware" %}
from typing import TYPE_CHECKING, Literal

from attrs import frozen
from threadline.plugin import hookimpl

if TYPE_CHECKING:
    from threadline.plugin import Register

    from {{ module }}.middleware import {{ cls }}Middleware

__all__ = ["{{ cls }}Config", "make_middleware"]


@frozen
class {{ cls }}Config:
    """``[middleware.{{ name }}]`` in threadline.toml.

    :param level: the logging level of the line written for each provider call.
    """

    level: Literal["DEBUG", "INFO", "WARNING"] = "INFO"


def make_middleware(config: {{ cls }}Config) -> {{ cls }}Middleware:
    from {{ module }}.middleware import {{ cls }}Middleware

    return {{ cls }}Middleware(config)


@hookimpl
def threadline_register_middleware(register: Register) -> None:
    register("{{ name }}", make_middleware, config={{ cls }}Config)
{% elif cookiecutter.kind == "lifecycle" %}
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from threadline.plugin import Message, ProviderError, SessionRecord, hookimpl, user_data_dir

LOG_VARIABLE = "THREADLINE_{{ cookiecutter.__snake_name|upper }}_LOG"


def events_path() -> Path:
    """Where the events go: the file the ``THREADLINE_{{ cookiecutter.__snake_name|upper }}_LOG``
    environment variable names, else ``{{ name }}-events.jsonl`` in threadline's data folder."""
    return Path(os.environ.get(LOG_VARIABLE) or user_data_dir() / "{{ name }}-events.jsonl").expanduser()


def record(event: str, **fields: Any) -> None:
    """Append one event to the log, one JSON object a line."""
    path = events_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"event": event, "at": datetime.now(UTC).isoformat(), **fields}
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")


@hookimpl
def threadline_session_created(session: SessionRecord) -> None:
    record("session_created", session=session.id, user=session.user_id, provider=session.provider)


@hookimpl
def threadline_message_appended(session: SessionRecord, message: Message) -> None:
    record("message_appended", session=session.id, seq=message.seq, role=message.role.value, chars=len(message.text))


@hookimpl
def threadline_session_archived(session: SessionRecord) -> None:
    record("session_archived", session=session.id)


@hookimpl
def threadline_session_deleted(session_id: str, user_id: str | None) -> None:
    record("session_deleted", session=session_id, user=user_id)


@hookimpl
def threadline_provider_error(session: SessionRecord, error: ProviderError) -> None:
    record("provider_error", session=session.id, error=type(error).__name__, message=str(error))
{% elif cookiecutter.kind == "tools" %}
from threadline.plugin import RegisterTool, hookimpl, tool


@tool
def {{ cookiecutter.__snake_name }}(text: str) -> int:
    """Count the words in a text.

    :param text: the text whose words to count.
    """
    return len(text.split())


@hookimpl
def threadline_register_tools(register: RegisterTool) -> None:
    register({{ cookiecutter.__snake_name }})
{% elif cookiecutter.kind == "command" %}
import click
from threadline.plugin import hookimpl


@hookimpl
def threadline_register_commands(cli: click.Group) -> None:
    from threadline import SessionManager
    from threadline.plugin import examples_epilog, with_manager

    @cli.command(name="{{ name }}", epilog=examples_epilog('threadline {{ name }} "How far is the moon?"'))
    @click.argument("question")
    @click.option("--provider", metavar="NAME", help="Provider to ask (default: the config's).")
    @with_manager
    async def ask(manager: SessionManager, question: str, provider: str | None) -> None:
        """Ask one QUESTION in a new session and print the reply."""
        session = await manager.create_session(provider=provider)
        reply = await session.send(question)
        click.echo(reply.text)
        click.echo(f"(session {session.id})", err=True)
{% endif -%}
