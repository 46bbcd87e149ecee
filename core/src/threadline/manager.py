"""``SessionManager``: opens the storage, assembles the plugins a config names, and hands out
:class:`~threadline.Session` handles."""

from __future__ import annotations

import os
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import IO, Any

from threadline.config import Config, Template
from threadline.contracts import Provider, Storage
from threadline.errors import AuthenticationError, ConfigError, DataFormatError, PluginError, ToolError
from threadline.importing import stoppable_import
from threadline.keys import unset_variable, with_stored_key
from threadline.middleware import Call, Chain, Middleware
from threadline.model import (
    DeletedCounts,
    Event,
    Record,
    Response,
    SessionPage,
    SessionQuery,
    SessionRecord,
    SessionStatus,
    dump_record,
    load_record,
    new_id,
)
from threadline.plugins import PluginManager, get_plugin_manager
from threadline.providers import ProviderConfig
from threadline.registry import Registry
from threadline.search import SearchHit, SearchQuery
from threadline.session import Session, _Live
from threadline.storage_events import StorageEvent
from threadline.tools import Tool


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
        self._storage = storage
        #: the storage as the middleware's storage stage gives it, once the manager is open
        self._staged_storage: Storage | None = None
        self._storage_plugin = (  # looked up now: a wrong backend or setting fails here, not at open()
            None
            if storage is not None
            else self._plugin(
                "storage", self.storage_backend, self.config.storage.settings, "storage", "storage.backend"
            )
        )
        self._check_config()
        tables = self.config.plugins.settings
        self._settings = {  # a table no plugin registered is an error, naming those that did
            name: self._plugin("settings", name, tables.get(name, {}), f"plugins.{name}")[1]
            for name in {*self.registry.settings, *tables}
        }
        #: the provider of sessions that name none: ``[defaults] provider``, else the first ready one
        self.default_provider = self.config.defaults.provider or self._ready_provider()
        self._check_provider(self.default_provider, "defaults.provider")
        self._check_default_model()
        self._chain = Chain(
            [self._make_middleware(name) for name in self.config.middleware.chain],
            self._provider_complete,
            self._provider_stream,
        )
        self._live: weakref.WeakValueDictionary[tuple[str, str], _Live] = weakref.WeakValueDictionary()
        self._open = False
        #: who this manager is when it holds a session's turn lease (unique per manager)
        self.holder = f"{os.getpid()}-{new_id()}"
        self._opened = AsyncExitStack()
        self._made_providers: list[Provider] = []

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
        """Open the storage and fire ``threadline_startup``. If a startup hook fails, what was
        opened is closed again before the error reaches the caller."""
        if self._open:
            return
        async with AsyncExitStack() as stack:
            storage = self._storage = self._storage or self._make_storage()
            self._staged_storage = self._chain.wrap_storage(storage, self._backend_name(storage))
            await storage.open()
            stack.push_async_callback(storage.close)
            stack.push_async_callback(self._close_providers)
            self._open = True
            stack.callback(setattr, self, "_open", False)
            await self.plugin_manager.notify("threadline_startup", manager=self)
            self._opened = stack.pop_all()

    async def close(self) -> None:
        """Fire ``threadline_shutdown``, then close the providers the manager made and the
        storage, each even when what came before it raised."""
        if not self._open:
            return
        try:
            await self.plugin_manager.notify("threadline_shutdown", manager=self)
        finally:
            await self._opened.aclose()

    async def _close_providers(self) -> None:
        async with AsyncExitStack() as stack:
            for provider in self._made_providers:
                stack.push_async_callback(provider.close)
            self._made_providers.clear()

    @property
    def middleware(self) -> Mapping[str, Middleware]:
        """The middleware ``[middleware] chain`` names, made, by name in its order: how a
        plugin's ``threadline_startup`` finds its own (``manager.middleware.get("pii")``),
        to give it the storage, say."""
        return MappingProxyType(dict(zip(self.config.middleware.chain, self._chain.layers, strict=True)))

    @property
    def storage(self) -> Storage:
        """The storage object, once the manager is open."""
        if self._staged_storage is None or not self._open:
            raise RuntimeError("the SessionManager is not open; use `async with SessionManager(...) as tl:`")
        return self._staged_storage

    @property
    def storage_backend(self) -> str:
        """The storage plugin in use: ``[storage] backend``, else sqlite when installed, else memory."""
        return self.config.storage.backend or ("sqlite" if "sqlite" in self.registry.storage else "memory")

    @property
    def tenant(self) -> str:
        """The tenant of calls that name none: ``[defaults] tenant``."""
        return self.config.defaults.tenant

    def _tenant(self, tenant: str | None) -> str:
        """The tenant a call names, else the configured one; an empty name is refused (it
        would silently have meant the configured tenant)."""
        if tenant is None:
            return self.tenant
        if not isinstance(tenant, str) or not tenant:
            raise ConfigError(f"tenant must be a non-empty name, got {tenant!r}; leave it out for {self.tenant!r}")
        return tenant

    def settings(self, name: str) -> Any:
        """The settings a plugin registered as ``name`` (``threadline_register_settings``),
        structured from the ``[plugins.<name>]`` table of the config."""
        if name not in self._settings:
            known = ", ".join(sorted(self._settings)) or "none"
            raise PluginError(f"no plugin registered settings named {name!r}; registered: {known}")
        return self._settings[name]

    # -- plugins ------------------------------------------------------------

    def _check_config(self) -> None:
        """Every provider and middleware the config names is installed and its settings fit its
        config class (the storage's are checked as it is looked up)."""
        config = self.config
        for name, settings in config.providers.items():
            if name not in self._providers:  # its ${VAR}s wait for its first use: see _provider_settings
                self._plugin("providers", name, settings, f"providers.{name}", lenient=True)
        for name in set(config.middleware.settings) - set(config.middleware.chain):
            raise ConfigError(
                f"settings for middleware {name!r}, which chain does not name",
                file=config.path,
                key=f"middleware.{name}",
            )
        for name, template in config.templates.items():
            self._check_provider(template.provider, f"templates.{name}.provider")

    def _ready_provider(self) -> str:
        """The first provider plugin, by name, whose API key is set or that has a ``base_url``
        (see :meth:`ProviderConfig.ready`); else ``echo``, which needs nothing. A provider whose
        table names an environment variable that is not set is not ready."""
        for name in sorted(self.registry.providers):
            if issubclass(self.registry.providers[name].config, ProviderConfig):
                settings, _ = self._provider_table(name)
                _, config = self._plugin("providers", name, settings, f"providers.{name}", lenient=True)
                if config is not None and with_stored_key(name, config, lenient=True).ready():
                    return name
        return "echo"

    def _check_default_model(self) -> None:
        """``[defaults] model`` is a model of ``[defaults] provider``. Without that provider the
        default is whichever provider has its key set, which may not serve the model: refused."""
        defaults = self.config.defaults
        if defaults.model is not None and defaults.provider is None:
            raise ConfigError(
                f"{defaults.model!r} needs [defaults] provider: without one, new sessions go to whichever "
                f"provider has its API key set (now {self.default_provider}), which may not serve that model; "
                "set provider too, or leave model out for the provider's own default_model",
                file=self.config.path,
                key="defaults.model",
            )

    def _check_provider(self, name: str | None, key: str | None = None) -> None:
        """Provider ``name`` is installed (or was given as an object). ``key`` is the config key
        that names it, which the error names with the file; without one the name was an
        argument, ``provider``."""
        if name is not None and name not in self._providers and name not in self.registry.providers:
            installed = ", ".join(sorted({*self.registry.providers, *self._providers})) or "none"
            message = f"no provider plugin named {name!r}; installed: {installed}"
            if key is None:
                raise ConfigError(message, key="provider")
            raise ConfigError(message, file=self.config.path, key=key)

    def _plugin(
        self,
        kind: str,
        name: str,
        settings: Mapping[str, Any],
        key: str,
        name_key: str | None = None,
        *,
        lenient: bool = False,
    ) -> tuple[Callable[[Any], Any], Any]:
        """The registered factory of plugin ``name`` and its settings, structured and checked.
        ``lenient``: the settings are ``None`` when they need an environment variable that is
        not set (see :meth:`Config.check_plugin_config`)."""
        try:
            registration = self.registry.lookup(kind, name)
        except PluginError as exc:
            raise ConfigError(str(exc), file=self.config.path, key=name_key or key) from None
        check = self.config.check_plugin_config if lenient else self.config.plugin_config
        return registration.factory, check(registration.config, settings, key)

    def _backend_name(self, storage: Storage) -> str:
        """The name a storage stage is given: the backend's, or the class name of a storage
        given to the manager."""
        return self.storage_backend if self._storage_plugin is not None else type(storage).__name__

    def _make_storage(self) -> Storage:
        assert self._storage_plugin is not None  # looked up in __init__ whenever no storage was given
        factory, settings = self._storage_plugin
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
            factory, config = self._provider_settings(name)
            self._providers[name] = factory(config)
            self._made_providers.append(self._providers[name])
        return self._providers[name]

    def _provider_settings(self, name: str) -> tuple[Callable[[Any], Any], Any]:
        """Provider ``name``'s factory and its settings from ``[providers.<name>]``, ``${VAR}``
        resolved. Only here, when a provider is about to be used (or ``threadline config check``
        asks), is an unset variable in its table an error: commands that call no provider
        (``sessions list``, ``export``) work without its key."""
        self._check_provider(name)
        table, unset = self._provider_table(name)
        factory, settings = self._plugin("providers", name, table, f"providers.{name}")
        settings = with_stored_key(name, settings)  # the key file: where a key is looked for last
        if unset is not None and not settings.api_key and not any(map(os.environ.get, settings.key_variables)):
            store = f"`threadline keys set {name}`"
            raise ConfigError(
                f"environment variable {unset} is not set (set it, or store the key with {store})",
                file=self.config.path,
                key=f"providers.{name}.api_key",
            )
        return factory, settings

    def _provider_table(self, name: str) -> tuple[Mapping[str, Any], str | None]:
        """``[providers.<name>]``, without its ``api_key`` when that is only an environment
        variable that is not set (``"${OPENAI_API_KEY}"``): that counts as no key, so the key
        is looked for where it is when there is no ``api_key`` (the provider's variables, the
        key file). And the name of that variable (``None`` when there is none)."""
        table = self.config.providers.get(name, {})
        registration = self.registry.providers.get(name)
        unset = unset_variable(table.get("api_key"))
        if unset is None or registration is None or not issubclass(registration.config, ProviderConfig):
            return table, None
        return {key: value for key, value in table.items() if key != "api_key"}, unset

    def provider_default_model(self, name: str) -> str | None:
        """The model provider ``name`` is asked for when neither the call nor the session names
        one: its ``default_model`` setting (``None`` when it has no such setting)."""
        if name in self._providers or name not in self.registry.providers:  # given as an object: no settings
            return None
        return getattr(self._provider_settings(name)[1], "default_model", None)

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
                raise ToolError(self._no_tool(tool))
        return tuple(names)

    def _no_tool(self, name: str) -> str:
        return f"no tool named {name!r}; registered tools: {', '.join(sorted(self.registry.tools)) or 'none'}"

    # -- checks: what a session's first reply would find wrong, found before ----

    def check_provider(self, name: str) -> None:
        """Provider ``name`` can be called: it is installed, every ``${VAR}`` of its
        ``[providers.<name>]`` table is set, and it has an API key, or a ``base_url``
        (:meth:`ProviderConfig.ready`). Raises what its first call would
        (:class:`ConfigError`, :class:`AuthenticationError`), without calling it."""
        if name in self._providers:  # given as an object, or made already
            return
        _, settings = self._provider_settings(name)
        if isinstance(settings, ProviderConfig) and not settings.ready():
            variables = " or ".join(settings.key_variables)
            also = f", the {variables} environment variable" if variables else ""
            raise AuthenticationError(
                f"no API key: set api_key in [providers.{name}]{also} or run `threadline keys set {name}`",
                provider=name,
            )

    def check_new_session(self, *, template: str | None = None, provider: str | None = None) -> None:
        """What a session made by ``create_session(template=..., provider=...)`` would find
        wrong by its first reply, found now: an unknown template or provider, a tool the
        template names that nobody registered, a provider that cannot be called
        (:meth:`check_provider`). ``threadline chat`` runs it before its first prompt."""
        base = self._template(template)
        for tool in base.tools:
            if tool not in self.registry.tools:
                raise ConfigError(self._no_tool(tool), file=self.config.path, key=f"templates.{template}.tools")
        self.check_provider(self._new_session_model(provider, None, base)[0])

    def check(self) -> None:
        """:meth:`check_new_session` for a session of each template and one of none, and
        :meth:`check_provider` for each provider the config has a table for: every check
        ``threadline chat`` makes before it starts, as ``threadline config check`` runs them."""
        for template in (None, *self.config.templates):
            self.check_new_session(template=template)
        for name in self.config.providers:
            self.check_provider(name)

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
        """Create and store a session. Arguments override the template's, which override ``[defaults]``.

        :param provider: the provider plugin that answers it (``[defaults] provider``, else the
            first provider plugin whose key is set, else ``echo``).
        :param model: the model; unset, the template's, else ``[defaults] model`` when the provider
            is ``[defaults] provider``, else the provider's ``default_model``. A model alias, from
            any of these places, is replaced by the model it stands for.
        :param system_prompt: the system prompt, sent with every call.
        :param template: a ``[templates.<name>]`` of the config, whose values the other
            arguments override.
        :param user_id: whose session it is (listings filter by it; :meth:`delete_user` deletes by it).
        :param tenant: the tenant; unset, ``[defaults] tenant``.
        :param title: a title; unset, the start of the first message.
        :param tools: tools the model may call: ``@threadline.tool`` functions, or the names of
            tools a plugin or ``SessionManager(tools=...)`` registered.
        :param metadata: your own JSON data, kept with the session.
        """
        base = self._template(template)
        provider, model = self._new_session_model(provider, model, base)
        self._check_provider(provider)
        record = SessionRecord(
            tenant=self._tenant(tenant),
            user_id=user_id,
            provider=provider,
            model=model,
            system_prompt=system_prompt if system_prompt is not None else base.system_prompt,
            template=template,
            title=title,
            tools=self.resolve_tools([*base.tools, *tools]),
            metadata={**base.metadata, **(metadata or {})},
        )
        return await self._adopt(await self.storage.create_session(await self._chain.session_stage(record)))

    def _template(self, name: str | None) -> Template:
        if name is None:
            return Template()
        if name not in self.config.templates:
            known = ", ".join(sorted(self.config.templates)) or (
                "none (add [templates.NAME] to the config; on the command line, `threadline templates save NAME`)"
            )
            raise ConfigError(f"no template named {name!r}; templates: {known}", key="template")
        template: Template = self.config.templates[name]  # its model alias resolved by _new_session_model
        return template

    def _new_session_model(self, provider: str | None, model: str | None, base: Template) -> tuple[str, str | None]:
        """The provider and model of a new session: the call's, else its template's, else
        ``[defaults]``'s (its ``model`` for its ``provider`` only). A model alias names its
        provider where it is given (the call's model, the template's); the model is resolved
        once, after that choice, whichever place gave it, ``[defaults] model`` too."""
        provider = provider or self._alias_provider(model) or base.provider or self._alias_provider(base.model)
        provider = provider or self.default_provider
        defaults = self.config.defaults
        model = model or base.model or (defaults.model if provider == defaults.provider else None)
        resolved, model = self.resolve_model(provider, model)
        return resolved or provider, model

    def _alias_provider(self, model: str | None) -> str | None:
        alias = self.config.aliases.get(model) if model else None
        return None if alias is None else alias.provider

    def resolve_model(self, provider: str | None, model: str | None) -> tuple[str | None, str | None]:
        """``(provider, model)`` with a model alias (``[aliases]``, ``threadline aliases``)
        replaced by the model it stands for, and ``provider`` by the alias's when it is
        ``None``. An alias of one provider's model asked of another is a ``ConfigError``."""
        alias = self.config.aliases.get(model) if model else None
        if alias is None:
            return provider, model
        if provider is not None and alias.provider is not None and provider != alias.provider:
            raise ConfigError(
                f"model alias {model!r} is {alias.provider}/{alias.model}, not a model of provider {provider!r}",
                key="model",
            )
        return provider or alias.provider, alias.model

    async def _adopt(self, record: SessionRecord) -> Session:
        session = self._session(record)
        await self.plugin_manager.notify("threadline_session_created", session=record, manager=self)
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
        return self._session(await self.storage.get_session(self._tenant(tenant), session_id))

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
            tenant=self._tenant(tenant),
            user_id=user_id,
            status=SessionStatus(status) if status is not None else None,
            limit=limit,
            cursor=cursor,
        )
        return await self.storage.list_sessions(query)

    async def delete_user(self, user_id: str, *, tenant: str | None = None) -> DeletedCounts:
        """Delete every session of ``user_id`` in the tenant (unset: the configured one) and
        their messages, in one go, and return how many of each. Nothing asks first: export
        what you may need before (see the guide on deleting a user's data)."""
        return await self.storage.delete_user(self._tenant(tenant), user_id)

    # -- export and import --------------------------------------------------

    async def export_jsonl(
        self, out: IO[str], *, tenant: str | None = None, all_tenants: bool = False, raw: bool = False
    ) -> int:
        """Write every session of ``tenant`` (default: the configured one; every tenant's with
        ``all_tenants=True``) and its messages as JSON lines; return the count. Each record
        passes the middleware's export stage (:meth:`Middleware.export`), which may take out
        what must stay on this storage; ``raw=True`` writes the records as stored."""
        if all_tenants and tenant is not None:
            raise ConfigError("name a tenant or ask for all tenants, not both")
        count = 0
        async for record in self.storage.export_records(None if all_tenants else self._tenant(tenant)):
            out.write(dump_record(await self.exported(record, raw=raw)) + "\n")
            count += 1
        return count

    async def exported(self, record: Record, *, raw: bool = False) -> Record:
        """``record`` as an export writes it: after the middleware's export stage
        (:meth:`Middleware.export`), or as stored with ``raw=True``."""
        if raw or not self._chain.export_stages:
            return record
        return await self._chain.export_stage(record)

    def events(self, *, tenant: str | None = None, all_tenants: bool = False) -> AsyncIterator[StorageEvent]:
        """What any process changes in the sessions of ``tenant`` (default: the configured
        one; every tenant's with ``all_tenants=True``), as it happens, from the first
        iteration (which starts listening) until the caller stops: the storage's
        :class:`StorageEvent` s, at most once each. Only a storage that processes share gives
        them (``redis``; ``postgres``); another is a ``ConfigError``."""
        if all_tenants and tenant is not None:
            raise ConfigError("name a tenant or ask for all tenants, not both")
        events = self._optional_method(
            "events", "gives no events across processes; threadline-redis and threadline-postgres do"
        )
        listening: AsyncIterator[StorageEvent] = events(None if all_tenants else self._tenant(tenant))
        return listening

    async def vacuum(self) -> int:
        """Give the space that deleted sessions held back to the system; returns the bytes
        given back. A storage that gives space back by itself (``memory``, ``redis``,
        ``postgres``'s autovacuum) has no ``vacuum``: a ``ConfigError``."""
        vacuum = self._optional_method("vacuum", "gives space back by itself: there is nothing to vacuum")
        given_back: int = await vacuum()
        return given_back

    async def search(
        self,
        text: str,
        *,
        user_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        limit: int = 20,
        tenant: str | None = None,
    ) -> list[SearchHit]:
        """The stored messages that have every word of ``text``, best match first, at most
        ``limit`` (1 to 1000): of the sessions of ``tenant`` (unset: the configured one), of
        ``user_id`` and of ``provider`` (the session's) when given, made at or after ``since``
        (timezone-aware) when given. Nothing in ``text`` is syntax: see :mod:`threadline.search`.

        An optional storage capability (``Storage.search_messages``): threadline-sqlite and the
        ``memory`` storage have it; another storage is a ``ConfigError`` that says so. What a
        message stage changed before storing (redaction, encryption) is what is searched."""
        try:
            query = SearchQuery(
                text, self._tenant(tenant), user_id=user_id, provider=provider, since=since, limit=limit
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not query.terms:
            raise ConfigError(f"nothing to search for in {text!r}: give at least one word (letters or digits)")
        search = self._storage_method(
            "search_messages", "cannot search messages; threadline-sqlite and the memory storage can"
        )
        hits: list[SearchHit] = await search(query)
        return hits

    def _storage_method(self, name: str, without: str) -> Any:
        """The optional method ``name`` of the storage as staged, or of the backend when a
        storage stage does not pass it on; a ``ConfigError`` as :meth:`_optional_method`."""
        return getattr(self.storage, name, self._optional_method(name, without))

    def _optional_method(self, name: str, without: str) -> Any:
        """The storage backend's optional method ``name`` (its own: a storage stage need not
        pass it on), or a ``ConfigError``: "the <backend> storage <without>"."""
        self.storage  # noqa: B018 -- open, or the error that says to open it
        backend = self._storage
        assert backend is not None  # set by open()
        method = getattr(backend, name, None)
        if method is None:
            raise ConfigError(
                f"the {self._backend_name(backend)} storage {without}", file=self.config.path, key="storage.backend"
            )
        return method

    async def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Import a file :meth:`export_jsonl` wrote: all of it, or, if any line is bad, none of it
        (the storage imports all or nothing; the error names the line). Cancelled, it stops
        reading and the storage gives the import up."""
        return await stoppable_import(self.storage, _read_records(path))


async def _read_records(path: str | os.PathLike[str]) -> AsyncIterator[Record]:
    with open(path, "rb") as lines:  # noqa: ASYNC230 -- a local file, read a line at a time; bytes, so a line
        for number, line in enumerate(lines, 1):  # that is not UTF-8 is named like any other bad line
            if not line.strip():
                continue
            try:
                yield load_record(line)
            except DataFormatError as exc:
                raise DataFormatError(f"{os.fspath(path)}, line {number}: {exc}; nothing was imported") from None
