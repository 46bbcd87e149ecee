"""``SessionManager`` and ``Session``: the user-facing API."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import IO, Any

import attrs

from threadline.config import Config, Template
from threadline.contracts import Provider, Storage
from threadline.errors import (
    ConfigError,
    DataFormatError,
    PluginError,
    ProviderError,
    StorageConflict,
    ToolError,
)
from threadline.middleware import Call, Chain, Middleware
from threadline.model import (
    CallOptions,
    DeletedCounts,
    Done,
    Event,
    Message,
    MessageStatus,
    Part,
    Request,
    Response,
    Role,
    SessionPage,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    StreamAssembler,
    ToolCall,
    ToolResult,
    Usage,
    as_parts,
    dump_record,
    load_record,
    new_id,
)
from threadline.plugins import PluginManager, get_plugin_manager
from threadline.providers import ProviderConfig, check_attachments
from threadline.registry import Registry
from threadline.tools import Tool

TITLE_LENGTH = 60
_UPDATABLE = frozenset(
    {"title", "system_prompt", "provider", "model", "tools", "user_id", "metadata", "provider_state"}
)
_CONFLICT_RETRIES = 5


class SessionManager:
    """Opens the storage, makes providers on first use, and hands out :class:`Session` objects.

    ``SessionManager()`` uses the built-in defaults (echo provider; memory storage, or
    sqlite when ``threadline-sqlite`` is installed). Use it as an async context manager.

    :param config: a :class:`Config`, or see :meth:`from_config`.
    :param storage: a storage object to use instead of the configured backend.
    :param providers: provider objects by name, used instead of the registered factories.
    :param plugins: in-process plugin objects (hook implementations) to register.
    :param plugin_manager: a prepared plugin manager (``plugins`` is then ignored).
    :param tools: tools every session may name.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        storage: Storage | None = None,
        providers: Mapping[str, Provider] | None = None,
        plugins: Iterable[object] = (),
        plugin_manager: PluginManager | None = None,
        tools: Iterable[Tool] = (),
    ) -> None:
        self.config = config or Config()
        self.plugin_manager = plugin_manager or get_plugin_manager(disable=self.config.plugins.disable, plugins=plugins)
        self.registry = Registry.collect(self.plugin_manager)
        for tool in tools:
            self.registry.add_tool(tool, "SessionManager(tools=...)")
        self._providers: dict[str, Provider] = dict(providers or {})
        self._check_config(storage_given=storage is not None)
        #: the provider of sessions that name none: ``[defaults] provider``, else the first ready one
        self.default_provider = self.config.defaults.provider or self._ready_provider()
        self._check_provider(self.default_provider, "defaults.provider")
        self._storage = storage
        self._chain = Chain(
            [self._make_middleware(name) for name in self.config.middleware.chain],
            self._provider_complete,
            self._provider_stream,
        )
        self._live: weakref.WeakValueDictionary[tuple[str, str], _Live] = weakref.WeakValueDictionary()
        self._open = False

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kwargs: Any) -> SessionManager:
        """A manager assembled from a ``threadline.toml`` file."""
        return cls(Config.load(path), **kwargs)

    # -- start and stop -----------------------------------------------------

    async def __aenter__(self) -> SessionManager:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the storage and fire ``threadline_startup``."""
        if self._open:
            return
        if self._storage is None:
            self._storage = self._make_storage()
        await self._storage.open()
        self._open = True
        await self.plugin_manager.notify("threadline_startup", manager=self)

    async def close(self) -> None:
        """Fire ``threadline_shutdown``, then close the providers and the storage."""
        if not self._open:
            return
        try:
            await self.plugin_manager.notify("threadline_shutdown", manager=self)
        finally:
            self._open = False
            for provider in self._providers.values():
                await provider.close()
            assert self._storage is not None
            await self._storage.close()

    @property
    def storage(self) -> Storage:
        if self._storage is None or not self._open:
            raise RuntimeError("the SessionManager is not open; use `async with SessionManager(...) as tl:`")
        return self._storage

    @property
    def storage_backend(self) -> str:
        """The storage plugin in use: ``[storage] backend``, else sqlite when installed, else memory."""
        return self.config.storage.backend or ("sqlite" if "sqlite" in self.registry.storage else "memory")

    @property
    def tenant(self) -> str:
        return self.config.defaults.tenant

    # -- plugins ------------------------------------------------------------

    def _check_config(self, *, storage_given: bool) -> None:
        """Every plugin the config names is installed and its settings fit its config class."""
        config = self.config
        if not storage_given:
            self._plugin("storage", self.storage_backend, config.storage.settings, "storage", "storage.backend")
        for name, settings in config.providers.items():
            if name not in self._providers:
                self._plugin("providers", name, settings, f"providers.{name}")
        for name in set(config.middleware.settings) - set(config.middleware.chain):
            raise ConfigError(
                f"settings for middleware {name!r}, which chain does not name",
                file=config.path,
                key=f"middleware.{name}",
            )
        for name, template in config.templates.items():
            self._check_provider(template.provider, f"templates.{name}.provider")
        self._check_provider(config.defaults.provider, "defaults.provider")

    def _ready_provider(self) -> str:
        """The first provider plugin, by name, whose API key is set or that has a ``base_url``
        (see :meth:`ProviderConfig.ready`); else ``echo``, which needs nothing."""
        for name in sorted(self.registry.providers):
            if issubclass(self.registry.providers[name].config, ProviderConfig):
                _, settings = self._plugin("providers", name, self.config.providers.get(name, {}), f"providers.{name}")
                if settings.ready():
                    return name
        return "echo"

    def _check_provider(self, name: str | None, key: str) -> None:
        if name is not None and name not in self._providers and name not in self.registry.providers:
            installed = ", ".join(sorted({*self.registry.providers, *self._providers})) or "none"
            raise ConfigError(
                f"no provider plugin named {name!r}; installed: {installed}", file=self.config.path, key=key
            )

    def _plugin(
        self, kind: str, name: str, settings: Mapping[str, Any], key: str, name_key: str | None = None
    ) -> tuple[Callable[[Any], Any], Any]:
        """The registered factory of plugin ``name`` and its settings, structured and checked."""
        try:
            registration = self.registry.lookup(kind, name)
        except PluginError as exc:
            raise ConfigError(str(exc), file=self.config.path, key=name_key or key) from None
        return registration.factory, self.config.plugin_config(registration.config, settings, key)

    def _make_storage(self) -> Storage:
        factory, settings = self._plugin(
            "storage", self.storage_backend, self.config.storage.settings, "storage", "storage.backend"
        )
        storage: Storage = factory(settings)
        return storage

    def _make_middleware(self, name: str) -> Middleware:
        settings = self.config.middleware.settings.get(name, {})
        factory, config = self._plugin("middleware", name, settings, f"middleware.{name}")
        middleware: Middleware = factory(config)
        return middleware

    def provider(self, name: str) -> Provider:
        """The provider called ``name``, made on first use (which is when its SDK is imported)."""
        if name not in self._providers:
            self._check_provider(name, "provider")
            settings = self.config.providers.get(name, {})
            factory, config = self._plugin("providers", name, settings, f"providers.{name}")
            self._providers[name] = factory(config)
        return self._providers[name]

    async def _provider_complete(self, call: Call) -> Response:
        return await self.provider(call.provider).complete(call.request)

    def _provider_stream(self, call: Call) -> AsyncIterator[Event]:
        return self.provider(call.provider).stream(call.request)

    def resolve_tools(self, tools: Iterable[Tool | str]) -> tuple[str, ...]:
        """Tool names for a session; functions passed in are registered with this manager."""
        names = []
        for tool in tools:
            if isinstance(tool, Tool):
                self.registry.add_tool(tool, "create_session(tools=...)")
                names.append(tool.name)
            elif tool in self.registry.tools:
                names.append(tool)
            else:
                known = ", ".join(sorted(self.registry.tools)) or "none"
                raise ToolError(f"no tool named {tool!r}; registered tools: {known}")
        return tuple(names)

    # -- sessions -----------------------------------------------------------

    async def create_session(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        template: str | None = None,
        user_id: str | None = None,
        tenant: str | None = None,
        title: str | None = None,
        tools: Iterable[Tool | str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        """Create and store a session. Arguments override the template's, which override ``[defaults]``."""
        base = self._template(template)
        provider = provider or base.provider or self.default_provider
        self._check_provider(provider, "provider")
        record = SessionRecord(
            tenant=tenant or self.tenant,
            user_id=user_id,
            provider=provider,
            model=model
            or base.model
            or (self.config.defaults.model if provider == self.config.defaults.provider else None),
            system_prompt=system_prompt if system_prompt is not None else base.system_prompt,
            template=template,
            title=title,
            tools=self.resolve_tools([*base.tools, *tools]),
            metadata={**base.metadata, **(metadata or {})},
        )
        return await self._adopt(await self.storage.create_session(record))

    def _template(self, name: str | None) -> Template:
        if name is None:
            return Template()
        if name not in self.config.templates:
            known = ", ".join(sorted(self.config.templates)) or "none (add [templates.<name>] to the config)"
            raise ConfigError(f"no template named {name!r}; templates: {known}", file=self.config.path, key="template")
        return self.config.templates[name]

    async def _adopt(self, record: SessionRecord) -> Session:
        session = self._session(record)
        await self.plugin_manager.notify("threadline_session_created", session=record)
        return session

    def _session(self, record: SessionRecord) -> Session:
        key = (record.tenant, record.id)
        live = self._live.get(key)
        if live is None:
            live = self._live[key] = _Live(record)
        elif not live.lock.locked():
            live.refresh(record)
        return Session(self, live)

    async def get_session(self, session_id: str, *, tenant: str | None = None) -> Session:
        """The stored session, or :class:`~threadline.SessionNotFound`."""
        return self._session(await self.storage.get_session(tenant or self.tenant, session_id))

    async def list_sessions(
        self,
        *,
        user_id: str | None = None,
        status: SessionStatus | str | None = None,
        tenant: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:
        """A page of sessions, most recent activity first; pass ``page.next_cursor`` for the next."""
        query = SessionQuery(
            tenant=tenant or self.tenant,
            user_id=user_id,
            status=SessionStatus(status) if status is not None else None,
            limit=limit,
            cursor=cursor,
        )
        return await self.storage.list_sessions(query)

    async def delete_user(self, user_id: str, *, tenant: str | None = None) -> DeletedCounts:
        """Delete every session of ``user_id`` and their messages."""
        return await self.storage.delete_user(tenant or self.tenant, user_id)

    # -- export and import --------------------------------------------------

    async def export_jsonl(self, out: IO[str], *, tenant: str | None = None) -> int:
        """Write every session (of ``tenant``, or all) and its messages as JSON lines; return the count."""
        count = 0
        async for record in self.storage.export_records(tenant):
            out.write(dump_record(record) + "\n")
            count += 1
        return count

    async def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Import a file :meth:`export_jsonl` wrote: all of it, or, if any line is bad, none of it
        (the storage imports all or nothing; the error names the line)."""
        return await self.storage.import_records(_read_records(path))


async def _read_records(path: str | os.PathLike[str]) -> AsyncIterator[SessionRecord | Message]:
    with open(path, encoding="utf-8") as lines:  # noqa: ASYNC230 -- a local file, read a line at a time
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield load_record(line)
            except DataFormatError as exc:
                raise DataFormatError(f"{os.fspath(path)}, line {number}: {exc}; nothing was imported") from None


@attrs.define(eq=False)
class _Live:
    """What every ``Session`` handle on one session shares: the lock that serialises its turns,
    the record as last stored, what this process appended since, and the history as far as
    this process has seen it."""

    stored: SessionRecord
    lock: asyncio.Lock = attrs.Factory(asyncio.Lock)
    history: list[Message] | None = None
    appended: int = 0
    appended_usage: Usage = attrs.Factory(Usage)
    _record: SessionRecord | None = None

    @property
    def message_count(self) -> int:
        return self.stored.message_count + self.appended

    @property
    def record(self) -> SessionRecord:
        """The stored record with this process's appends counted in (made only when asked for)."""
        if self._record is None:
            self._record = (
                self.stored
                if not self.appended
                else attrs.evolve(
                    self.stored, message_count=self.message_count, usage=self.stored.usage + self.appended_usage
                )
            )
        return self._record

    def store(self, record: SessionRecord) -> None:
        """``record`` is what the storage now holds."""
        self.stored, self.appended, self.appended_usage, self._record = record, 0, Usage(), None

    def refresh(self, record: SessionRecord) -> None:
        if record.message_count != self.message_count:
            self.history = None
        self.store(record)

    def count(self, messages: list[Message]) -> None:
        self.appended += len(messages)
        self.appended_usage = sum((m.usage for m in messages if m.usage), self.appended_usage)
        self._record = None
        if self.history is not None:
            self.history.extend(messages)


class Session:
    """One conversation. Get one from :meth:`SessionManager.create_session` or ``get_session``.

    Turns on one session run one at a time, in the order they were asked for.
    """

    def __init__(self, manager: SessionManager, live: _Live) -> None:
        self._manager = manager
        self._live = live

    def __repr__(self) -> str:
        return f"<Session {self.id} provider={self.record.provider!r} messages={self.record.message_count}>"

    @property
    def record(self) -> SessionRecord:
        """The session as last stored or read."""
        return self._live.record

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def title(self) -> str | None:
        return self.record.title

    @property
    def _storage(self) -> Storage:
        return self._manager.storage

    # -- reading --------------------------------------------------------------

    async def history(self, limit: int | None = None) -> list[Message]:
        """The stored messages, oldest first; only the newest ``limit`` when given."""
        return await self._storage.get_messages(self.record.tenant, self.id, last=limit)

    async def refresh(self) -> SessionRecord:
        self._live.refresh(await self._storage.get_session(self.record.tenant, self.id))
        return self.record

    # -- changing the session -------------------------------------------------

    async def update(self, **changes: Any) -> SessionRecord:
        """Change and store fields of the record (``title``, ``system_prompt``, ``provider``,
        ``model``, ``tools``, ``user_id``, ``metadata``, ``provider_state``)."""
        if set(changes) - _UPDATABLE:
            wrong = ", ".join(sorted(set(changes) - _UPDATABLE))
            raise TypeError(f"cannot update {wrong}; updatable: {', '.join(sorted(_UPDATABLE))}")
        if "provider" in changes:
            self._manager._check_provider(changes["provider"], "provider")
        if "tools" in changes:
            changes["tools"] = self._manager.resolve_tools(changes["tools"])
        return await self._write(changes)

    async def _write(self, changes: Mapping[str, Any]) -> SessionRecord:
        """Store ``changes`` on the newest record, re-reading it when another writer got there first."""
        for _ in range(_CONFLICT_RETRIES):
            try:
                self._live.store(await self._storage.update_session(attrs.evolve(self.record, **changes)))
                return self.record
            except StorageConflict:
                await self.refresh()
        raise StorageConflict(f"session {self.id!r} kept changing; gave up after {_CONFLICT_RETRIES} tries")

    async def set_system_prompt(self, text: str | None) -> None:
        await self.update(system_prompt=text)

    async def archive(self) -> None:
        """Mark the session archived (it stays readable and listable by status)."""
        async with self._live.lock:
            await self._write({"status": SessionStatus.ARCHIVED})
        await self._manager.plugin_manager.notify("threadline_session_archived", session=self.record)

    async def delete(self) -> None:
        """Delete the session and all its messages."""
        async with self._live.lock:
            await self._storage.delete_session(self.record.tenant, self.id)
        await self._manager.plugin_manager.notify(
            "threadline_session_deleted", session_id=self.id, user_id=self.record.user_id
        )

    async def fork(self, at_message: int | None = None) -> Session:
        """A new session with a copy of this one's history up to and including message
        ``at_message`` (a ``seq``; ``None``: all of it)."""
        history = await self._storage.get_messages(self.record.tenant, self.id)
        if at_message is not None:
            history = [m for m in history if m.seq <= at_message]
        source = self.record
        record = attrs.evolve(
            source,
            id=new_id(),
            status=SessionStatus.ACTIVE,
            metadata={**source.metadata, "forked_from": source.id},
            provider_state={},
        )
        stored = await self._storage.create_session(record)
        fork = await self._manager._adopt(stored)
        copies = [attrs.evolve(m, id=new_id(), session_id=stored.id) for m in history]
        if copies:
            await fork._append(copies)
        return fork

    # -- conversation ---------------------------------------------------------

    async def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Message:
        """Send a user message and return the assistant's reply, stored.

        When the model calls tools, they run and the model is called again (up to
        ``[defaults] max_tool_steps`` times). ``provider`` and ``model`` apply to this call only.
        """
        turn = self._turn(provider, model, CallOptions(temperature, max_tokens, tuple(stop), options or {}))
        async with self._live.lock:
            user = await self._send_user(content, turn)
            try:
                for _ in range(self._manager.config.defaults.max_tool_steps):
                    response = await self._manager._chain.complete(await self._call(turn))
                    (reply,) = await self._store_reply(response.parts, response, turn)
                    if not reply.tool_calls:
                        return reply
                    await self._run_tools(reply.tool_calls)
                raise self._step_limit()
            except BaseException as exc:
                await _shielded(self._fail(user, exc))
                raise

    async def stream(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Event]:
        """Send a user message and yield the reply as it arrives: ``TextDelta`` and
        ``ToolCallDelta`` events, then one ``Done`` whose ``message`` is the stored reply.

        Breaking off (or being cancelled) stores the reply as far as it got, marked incomplete.
        """
        turn = self._turn(provider, model, CallOptions(temperature, max_tokens, tuple(stop), options or {}))
        async with self._live.lock:
            user = await self._send_user(content, turn)
            usage = Usage()
            for _ in range(self._manager.config.defaults.max_tool_steps):
                assembler = StreamAssembler()
                events = self._manager._chain.stream(await self._call(turn))
                try:
                    async for event in events:
                        assembler.add(event)
                        if not isinstance(event, Done):
                            yield event
                except BaseException as exc:
                    await _shielded(self._fail(user, exc, partial=assembler))
                    raise
                finally:
                    await _close(events)
                done = assembler.done or Done()
                (reply,) = await self._store_reply(assembler.parts(), done, turn)
                usage += done.usage
                if not reply.tool_calls:
                    yield attrs.evolve(done, usage=usage, message=reply)
                    return
                await self._run_tools(reply.tool_calls)
            raise self._step_limit()

    def _turn(self, provider: str | None, model: str | None, options: CallOptions) -> _Turn:
        if provider is not None:
            self._manager._check_provider(provider, "provider")
        chosen = provider or self._live.stored.provider
        same = chosen == self._live.stored.provider
        return _Turn(chosen, model or (self._live.stored.model if same else None), options)

    async def _send_user(self, content: str | Part | Sequence[Part], turn: _Turn) -> Message:
        parts = as_parts(content)  # type: ignore[arg-type]
        self._check_capabilities(parts, turn)
        if self._live.stored.title is None and (text := "".join(getattr(p, "text", "") for p in parts).strip()):
            await self.update(title=_title_from(text))
        (user,) = await self._append([Message(self.id, self._next_seq, Role.USER, parts)])
        return user

    def _check_capabilities(self, parts: tuple[Part, ...], turn: _Turn) -> None:
        capabilities = self._manager.provider(turn.provider).capabilities(turn.model)
        message = Message(self.id, self._next_seq, Role.USER, parts)
        check_attachments(capabilities, [message], model=turn.model, provider=turn.provider)

    async def _call(self, turn: _Turn) -> Call:
        history = await self._history_for_request()
        state = self._live.stored.provider_state if turn.provider == self._live.stored.provider else {}
        request = Request(
            turn.model, tuple(history), self._live.stored.system_prompt, self._tool_specs(), turn.options, state
        )
        return Call(self.record, turn.provider, request)

    def _tool_specs(self) -> tuple[Any, ...]:
        return tuple(
            self._manager.registry.tools[name].spec
            for name in self._live.stored.tools
            if name in self._manager.registry.tools
        )

    async def _history_for_request(self) -> list[Message]:
        live = self._live
        if live.history is None or len(live.history) != live.message_count:
            live.history = await self._storage.get_messages(live.stored.tenant, self.id)
        return _replayable(live.history)

    async def _store_reply(self, parts: tuple[Part, ...], result: Response | Done, turn: _Turn) -> list[Message]:
        message = Message(
            self.id,
            self._next_seq,
            Role.ASSISTANT,
            parts,
            usage=result.usage,
            provider=turn.provider,
            model=result.model or turn.model,
        )
        stored = await self._append([message])
        if result.provider_state is not None and turn.provider == self._live.stored.provider:
            await self.update(provider_state=result.provider_state)
        return stored

    async def _run_tools(self, calls: list[ToolCall]) -> None:
        results = await asyncio.gather(*(self._run_tool(call) for call in calls))
        await self._append([Message(self.id, self._next_seq, Role.TOOL, results)])

    async def _run_tool(self, call: ToolCall) -> ToolResult:
        tools = self._manager.registry.tools
        if call.name not in self._live.stored.tools or call.name not in tools:
            known = ", ".join(self._live.stored.tools) or "none"
            return ToolResult(call.id, f"no tool named {call.name!r}; this session's tools: {known}", is_error=True)
        return await tools[call.name].run(call)

    def _step_limit(self) -> ToolError:
        steps = self._manager.config.defaults.max_tool_steps
        return ToolError(f"the model was still calling tools after {steps} steps ([defaults] max_tool_steps)")

    @property
    def _next_seq(self) -> int:
        return self._live.message_count + 1

    async def _append(self, messages: list[Message]) -> list[Message]:
        """Store ``messages`` after the session's last, renumbering and retrying when another
        writer got there first; then fire ``threadline_message_appended`` for each."""
        live = self._live
        for _ in range(_CONFLICT_RETRIES):
            start = live.message_count + 1
            numbered = [m if m.seq == start + i else attrs.evolve(m, seq=start + i) for i, m in enumerate(messages)]
            try:
                await self._storage.append_messages(live.stored.tenant, self.id, numbered)
                break
            except StorageConflict:
                await self.refresh()
        else:
            raise StorageConflict(f"session {self.id!r} kept moving on; gave up after {_CONFLICT_RETRIES} tries")
        live.count(numbered)
        pm = self._manager.plugin_manager
        if pm.each_impl("threadline_message_appended"):
            for message in numbered:
                await pm.notify("threadline_message_appended", session=live.record, message=message)
        return numbered

    async def _fail(self, user: Message, exc: BaseException, partial: StreamAssembler | None = None) -> None:
        """Record a failed turn: the reply as far as it got (incomplete), else the user message
        marked failed; tell the ``threadline_provider_error`` hook about provider errors."""
        error = str(exc) or type(exc).__name__
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            error = "cancelled"
        if partial is not None and partial.started:
            message = Message(
                self.id,
                self._next_seq,
                Role.ASSISTANT,
                partial.parts(complete=False),
                status=MessageStatus.INCOMPLETE,
                error=error,
            )
            await self._append([message])
        elif self._live.message_count == user.seq:
            await self._storage.set_message_status(
                self._live.stored.tenant, self.id, user.seq, MessageStatus.FAILED.value, error
            )
            if self._live.history is not None:
                self._live.history[-1] = attrs.evolve(user, status=MessageStatus.FAILED, error=error)
        if isinstance(exc, ProviderError):
            await self._manager.plugin_manager.notify("threadline_provider_error", session=self.record, error=exc)


@attrs.frozen
class _Turn:
    provider: str
    model: str | None
    options: CallOptions


async def _shielded(coroutine: Any) -> None:
    """Finish a bookkeeping write even when the caller is being cancelled."""
    await asyncio.shield(coroutine)


async def _close(events: AsyncIterator[Event]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def _replayable(history: list[Message]) -> list[Message]:
    """The history as a provider should see it: without user messages whose turn failed,
    and without tool calls that never got a result (a turn cut off mid-way)."""
    answered = {p.call_id for m in history if m.role is Role.TOOL for p in m.parts if isinstance(p, ToolResult)}
    replay = []
    for message in history:
        if message.status is MessageStatus.FAILED:
            continue
        if message.role is Role.ASSISTANT and any(
            isinstance(p, ToolCall) and p.id not in answered for p in message.parts
        ):
            parts = tuple(p for p in message.parts if not isinstance(p, ToolCall) or p.id in answered)
            if not parts:
                continue
            message = attrs.evolve(message, parts=parts)
        replay.append(message)
    return replay
