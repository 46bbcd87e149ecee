"""The sync API: :class:`threadline.SessionManager` and :class:`threadline.Session` without
``await``, for scripts and notebooks.

A ``threadline.sync.SessionManager`` runs an async manager on an event loop of its own, in a
daemon thread, and each call waits for its async counterpart there. The work never runs on
the caller's loop, so the same code works where one is running (Jupyter). A stream is a plain
iterator of the same events. Errors come with their own types (``threadline.RateLimited``);
a caller interrupted while it waits (Ctrl-C) cancels the call, which is then recorded as an
async cancellation is, before the interruption goes on.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from types import TracebackType
from typing import IO, Any, Generic, TypeVar, overload

from threadline.config import Config
from threadline.contracts import Provider, Storage
from threadline.manager import SessionManager as AsyncSessionManager
from threadline.model import (
    DeletedCounts,
    Event,
    Message,
    Part,
    Revision,
    Role,
    SessionPage,
    SessionRecord,
    SessionStatus,
)
from threadline.plugins import PluginManager
from threadline.search import SearchHit
from threadline.session import Session as AsyncSession
from threadline.storage_events import StorageEvent
from threadline.tools import Tool

__all__ = ["Session", "SessionManager", "Stream"]

T = TypeVar("T")
S = TypeVar("S")

_CLOSED = "this threadline.sync.SessionManager is closed; make another"
_NOT_OPEN = "the threadline.sync.SessionManager is not open; use `with SessionManager(...) as tl:` or call open()"
_OWN_THREAD = (
    "threadline.sync was called from its own event loop's thread (in a tool or a hook?), where it would wait for "
    "itself; await the async API there (SessionManager.async_manager, Session.async_session)"
)
_END: Any = object()  # what a stream's pump answers once the events have run out


class _Job(Generic[T]):
    """A coroutine running as a task on the loop, for a thread that waits for it. Made only
    under :attr:`_Loop.lock`, while the loop takes work (see :meth:`_Loop.submit`)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], running: set[asyncio.Task[Any]]
    ) -> None:
        self._loop = loop
        self._task: asyncio.Task[T] | None = None
        #: the task's outcome, for the waiting thread
        self.done: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            loop.call_soon_threadsafe(self._start, coro, running)
        except RuntimeError:  # the loop is closed (which the lock should rule out): refuse, leaving nothing unawaited
            coro.close()
            raise RuntimeError(_CLOSED) from None

    def _start(self, coro: Coroutine[Any, Any, T], running: set[asyncio.Task[Any]]) -> None:
        """Make the task, in ``running`` until it ends."""
        self._task = self._loop.create_task(coro)
        running.add(self._task)
        self._task.add_done_callback(running.discard)
        self._task.add_done_callback(self._finish)

    def _finish(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():  # by the manager's close (an interrupted caller raises its interruption instead)
            self.done.set_exception(RuntimeError(_CLOSED))
        elif (error := task.exception()) is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(task.result())

    def _cancel(self) -> None:
        assert self._task is not None  # _start was called first: the loop runs its callbacks in order
        self._task.cancel()

    def result(self) -> T:
        """Wait for the task; its result, or its error as it raised it."""
        return self.wait(self.done)

    def wait(self, step: concurrent.futures.Future[S]) -> S:
        """Wait for ``step``, which the task answers; its result, or its error. Interrupted
        while waiting (Ctrl-C), cancel the task and wait for it to wind up (a turn records
        its cancellation), then let the interruption go on."""
        either: list[concurrent.futures.Future[Any]] = [step, self.done]
        try:
            concurrent.futures.wait(either, return_when=concurrent.futures.FIRST_COMPLETED)
        except BaseException:
            if not self.done.done():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile, settling the task first
                    self._loop.call_soon_threadsafe(self._cancel)
                concurrent.futures.wait([self.done])
            raise
        if not step.done():  # the task ended without an answer: the manager closed and cancelled it
            raise RuntimeError(_CLOSED)
        return step.result()


class _Loop:
    """An event loop in a daemon thread of its own, from :meth:`start` to :meth:`stop`.

    Work reaches the loop only under :attr:`lock`, which :meth:`stop` holds to set
    :attr:`closed`: a call from another thread is either queued before the wind-down, which
    then cancels it, or refused. None is queued after it, on a loop that would never run it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: set (under ``lock``) once :meth:`stop` begins: the loop takes no more work
        self.closed = False
        #: held from the check that the loop takes work to the queueing of that work
        self.lock = threading.Lock()
        #: the tasks of the calls and streams under way (touched only on the loop)
        self._running: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self.closed

    def start(self) -> None:
        with self.lock:
            if self.closed:
                raise RuntimeError(_CLOSED)
            if self._thread is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="threadline-sync", daemon=True)
                self._thread.start()

    def stop(self, last: Coroutine[Any, Any, None]) -> None:
        """Refuse new work; run ``last`` on the loop, cancel what still runs there and wait
        for it, then stop the loop and join its thread; the loop cannot start again. A loop
        that never started is only marked closed (and ``last`` dropped); one another thread
        is stopping is waited for."""
        with self.lock:
            if self.closed or self._loop is None:
                last.close()
                self.closed = True
                thread = self._thread
                job = None
            else:
                loop = self._ready()  # refused in the loop's own thread, before anything changes
                self.closed = True  # no call is queued after this one; those queued before it, it cancels
                job = _Job(loop, _wound_down(self._running, last), self._running)
        if job is None:
            if thread is not None and not self.in_thread():
                thread.join()  # closed by another thread: wait until it is done
            return
        assert self._thread is not None
        try:
            job.result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            # what the wind-down left (it was interrupted, say): cancel it and let it end, so no waiter waits on
            if leftover := asyncio.all_tasks(loop):
                loop.run_until_complete(_cancelled(leftover))
            loop.close()

    def in_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _ready(self) -> asyncio.AbstractEventLoop:
        """The loop, for a thread that may wait for it; else the error that says why not."""
        if self.closed or self._loop is None or self.in_thread():
            raise RuntimeError(_CLOSED if self.closed else _NOT_OPEN if self._loop is None else _OWN_THREAD)
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> _Job[T]:
        """Start ``coro`` on the loop (closing it unstarted when the loop cannot take it)."""
        with self.lock:  # so that stop() cannot begin between the check and the queueing
            try:
                loop = self._ready()
            except RuntimeError:
                coro.close()
                raise
            return _Job(loop, coro, self._running)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it: :meth:`_Job.result`."""
        return self.submit(coro).result()

    def call(self, callback: Callable[[T], object], argument: T) -> None:
        """Call ``callback(argument)`` on the loop, soon; from its own thread too."""
        if self.closed:
            raise RuntimeError(_CLOSED)
        assert self._loop is not None  # a stream, the only caller, was made on the running loop
        try:  # without the lock: Stream.__del__ calls this, wherever the collector runs
            self._loop.call_soon_threadsafe(callback, argument)
        except RuntimeError:  # closed since the check; its stream's pump has been wound down
            raise RuntimeError(_CLOSED) from None


async def _wound_down(running: set[asyncio.Task[Any]], last: Coroutine[Any, Any, None]) -> None:
    """Cancel the calls and streams still under way (their turns record the cancellation),
    then ``last`` (the manager's close); then what ``asyncio.run`` does before it closes its
    loop: cancel what else still runs, close the async generators left, shut the default
    executor down."""
    await _cancelled(running - {asyncio.current_task()})
    try:
        await last
    finally:
        await _cancelled(asyncio.all_tasks() - {asyncio.current_task()})
        loop = asyncio.get_running_loop()
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()


async def _cancelled(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them to end."""
    ending = list(tasks)
    for task in ending:
        task.cancel()
    await asyncio.gather(*ending, return_exceptions=True)


async def _made(make: Callable[[], T]) -> T:
    return make()


async def _pump(events: AsyncIterator[T], wanted: asyncio.Queue[concurrent.futures.Future[T] | None]) -> None:
    """A stream's task: answer each step its iterator puts in ``wanted`` with the next event;
    end at ``None`` (the iterator closed), at the events' end or at their error, closing them."""
    async with aclosing(events):  # type: ignore[type-var]  # the streams threadline gives are async generators
        while (step := await wanted.get()) is not None:
            try:
                event = await anext(events, _END)
            except Exception as error:
                step.set_exception(error)
                return
            step.set_result(event)
            if event is _END:
                return


class Stream(Iterator[T]):
    """The events of an async stream as a plain iterator: ``for event in session.stream("Hi"):``.

    The async stream runs in one task on the manager's loop, an event each time the iterator
    is asked for one. :meth:`close`, leaving a ``with`` block, ``break`` (the iterator is
    dropped) or being interrupted closes the async stream there and waits for it: a reply
    broken off is stored as far as it got, marked incomplete, as with ``async for``.
    """

    def __init__(self, loop: _Loop, make: Callable[[], AsyncIterator[T]]) -> None:
        self._over = True  # until the pump runs: nothing to close
        self._loop = loop
        events = loop.run(_made(make))  # on the loop: what the async call refuses, it refuses here
        self._wanted: asyncio.Queue[concurrent.futures.Future[T] | None] = asyncio.Queue()
        self._pump = loop.submit(_pump(events, self._wanted))  # which holds no reference to the iterator
        self._over = False

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        if self._over:
            raise StopIteration
        step: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._loop.call(self._wanted.put_nowait, step)
        try:
            event = self._pump.wait(step)
        except BaseException:
            self._over = True
            raise
        if event is _END:
            self._over = True
            raise StopIteration
        return event

    def close(self) -> None:
        """Stop the stream: close the async stream on the loop and wait until it is closed."""
        if self._over or self._pump.done.done():
            self._over = True
            return
        self._over = True
        try:
            self._loop.call(self._wanted.put_nowait, None)
        except RuntimeError:  # the manager is closing, which closes the stream: wait for that
            concurrent.futures.wait([self._pump.done])
            return
        self._pump.result()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if self._over or sys.is_finalizing() or self._loop.closed:
            return
        if self._loop.in_thread():  # collected on the loop's own thread, which must not wait for itself
            self._over = True
            self._loop.call(self._wanted.put_nowait, None)
        else:
            self.close()


def _per_call(
    provider: str | None,
    model: str | None,
    max_tokens: int | None,
    temperature: float | None,
    stop: Sequence[str],
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The options every turn takes, as the async methods take them."""
    return {
        "provider": provider,
        "model": model,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stop": stop,
        "options": options,
    }


class Session:
    """A :class:`threadline.Session` without ``await``. Get one from
    :meth:`SessionManager.create_session` or ``get_session``; each method is the async one's,
    waited for."""

    def __init__(self, session: AsyncSession, loop: _Loop) -> None:
        self._session = session
        self._loop = loop

    def __repr__(self) -> str:
        return repr(self._session)

    @property
    def async_session(self) -> AsyncSession:
        """The async :class:`threadline.Session` this one runs; await it only on the manager's loop."""
        return self._session

    @property
    def record(self) -> SessionRecord:
        """The session as last stored or read."""
        return self._session.record

    @property
    def id(self) -> str:
        """The session's id."""
        return self._session.id

    @property
    def title(self) -> str | None:
        """The title: given, else the start of the first message."""
        return self._session.title

    def _wrap(self, session: AsyncSession) -> Session:
        return Session(session, self._loop)

    # -- reading --------------------------------------------------------------

    def history(self, limit: int | None = None) -> list[Message]:
        """The stored messages, oldest first: :meth:`threadline.Session.history`."""
        return self._loop.run(self._session.history(limit))

    def refresh(self) -> SessionRecord:
        """Read the record again: :meth:`threadline.Session.refresh`."""
        return self._loop.run(self._session.refresh())

    # -- changing the session -------------------------------------------------

    def update(self, **changes: Any) -> SessionRecord:
        """Change and store fields of the record: :meth:`threadline.Session.update`."""
        return self._loop.run(self._session.update(**changes))

    def archive(self) -> None:
        """Mark the session archived: :meth:`threadline.Session.archive`."""
        self._loop.run(self._session.archive())

    def delete(self) -> None:
        """Delete the session and its messages: :meth:`threadline.Session.delete`."""
        self._loop.run(self._session.delete())

    def fork(self, at_message: int | None = None) -> Session:
        """A new session with a copy of the history: :meth:`threadline.Session.fork`."""
        return self._wrap(self._loop.run(self._session.fork(at_message)))

    # -- editing the history ----------------------------------------------------

    def add(self, messages: Iterable[Message | tuple[Role | str, str | Part | Sequence[Part]]]) -> list[Message]:
        """Store messages without calling a model: :meth:`threadline.Session.add`."""
        return self._loop.run(self._session.add(messages))

    def undo(self) -> list[Message]:
        """Take back the last turn: :meth:`threadline.Session.undo`."""
        return self._loop.run(self._session.undo())

    def edit(self, seq: int, content: str | Part | Sequence[Part]) -> Message:
        """Replace the content of message ``seq``: :meth:`threadline.Session.edit`."""
        return self._loop.run(self._session.edit(seq, content))

    def remove(self, seq: int) -> Message:
        """Remove message ``seq``: :meth:`threadline.Session.remove`."""
        return self._loop.run(self._session.remove(seq))

    def clear(self) -> list[Message]:
        """Remove every message: :meth:`threadline.Session.clear`."""
        return self._loop.run(self._session.clear())

    def revisions(self) -> list[Revision]:
        """Every edit of the history: :meth:`threadline.Session.revisions`."""
        return self._loop.run(self._session.revisions())

    # -- conversation ---------------------------------------------------------

    @overload
    def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: None = None,
    ) -> Message: ...
    @overload
    def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: type[T],
    ) -> T: ...
    @overload
    def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: Mapping[str, Any] | Any,
    ) -> Any: ...

    def send(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        output: Any = None,
    ) -> Any:
        """Send a user message and return the stored reply, or with ``output`` what it reads
        as: :meth:`threadline.Session.send`."""
        return self._loop.run(
            self._session.send(
                content, output=output, **_per_call(provider, model, max_tokens, temperature, stop, options)
            )
        )

    def stream(
        self,
        content: str | Part | Sequence[Part],
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Stream[Event]:
        """Send a user message and iterate over the reply as it arrives (``TextDelta``,
        ``ToolCallDelta``, then ``Done``): :meth:`threadline.Session.stream`. Breaking off
        stores the reply as far as it got (see :class:`Stream`)."""
        return Stream(
            self._loop,
            lambda: self._session.stream(content, **_per_call(provider, model, max_tokens, temperature, stop, options)),
        )

    def regenerate(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Message:
        """Answer the last user message again: :meth:`threadline.Session.regenerate`."""
        return self._loop.run(
            self._session.regenerate(**_per_call(provider, model, max_tokens, temperature, stop, options))
        )

    def regenerate_stream(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Stream[Event]:
        """:meth:`regenerate`, iterated as it arrives: :meth:`threadline.Session.regenerate_stream`."""
        return Stream(
            self._loop,
            lambda: self._session.regenerate_stream(
                **_per_call(provider, model, max_tokens, temperature, stop, options)
            ),
        )


class SessionManager:
    """A :class:`threadline.SessionManager` without ``await``, for scripts and notebooks::

        with threadline.sync.SessionManager.from_config("threadline.toml") as tl:
            session = tl.create_session(user_id="ann")
            print(session.send("Hello").text)

    It takes what the async one takes. :meth:`open` starts an event loop in a thread of its
    own, where the async manager runs; :meth:`close` stops it (a manager still open when the
    program exits is closed then). Each method is the async one's, waited for.

    :param config: a :class:`threadline.Config`, or see :meth:`from_config`.
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
        self._manager = AsyncSessionManager(
            config, storage=storage, providers=providers, plugins=plugins, plugin_manager=plugin_manager, tools=tools
        )
        self._loop = _Loop()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kwargs: Any) -> SessionManager:
        """A manager assembled from a ``threadline.toml`` file."""
        return cls(Config.load(path), **kwargs)

    @property
    def async_manager(self) -> AsyncSessionManager:
        """The async :class:`threadline.SessionManager` this one runs; await it only on this
        manager's loop (in a tool or a hook, say)."""
        return self._manager

    # -- start and stop -----------------------------------------------------

    def __enter__(self) -> SessionManager:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Start the event loop's thread and open the async manager there
        (:meth:`threadline.SessionManager.open`). If that fails, the manager is closed."""
        if not self._loop.running:
            self._loop.start()
            atexit.register(self.close)
        try:
            self._loop.run(self._manager.open())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the async manager (:meth:`threadline.SessionManager.close`), then stop the
        event loop and join its thread. A closed manager, and its sessions, cannot be used again."""
        self._loop.stop(self._manager.close())
        atexit.unregister(self.close)

    # -- what needs no waiting ------------------------------------------------

    @property
    def config(self) -> Config:
        """The config the manager was made with."""
        return self._manager.config

    @property
    def tenant(self) -> str:
        """The tenant of calls that name none: ``[defaults] tenant``."""
        return self._manager.tenant

    @property
    def default_provider(self) -> str:
        """The provider of sessions that name none."""
        return self._manager.default_provider

    @property
    def storage_backend(self) -> str:
        """The storage plugin in use."""
        return self._manager.storage_backend

    def provider(self, name: str) -> Provider:
        """The provider called ``name``: :meth:`threadline.SessionManager.provider`."""
        return self._manager.provider(name)

    def settings(self, name: str) -> Any:
        """A plugin's settings: :meth:`threadline.SessionManager.settings`."""
        return self._manager.settings(name)

    def check_provider(self, name: str) -> None:
        """Provider ``name`` can be called: :meth:`threadline.SessionManager.check_provider`."""
        self._manager.check_provider(name)

    def check_new_session(self, *, template: str | None = None, provider: str | None = None) -> None:
        """What a new session would find wrong: :meth:`threadline.SessionManager.check_new_session`."""
        self._manager.check_new_session(template=template, provider=provider)

    def check(self) -> None:
        """Every check ``threadline chat`` makes first: :meth:`threadline.SessionManager.check`."""
        self._manager.check()

    # -- sessions -----------------------------------------------------------

    def create_session(
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
        """Create and store a session: :meth:`threadline.SessionManager.create_session`."""
        made = self._manager.create_session(
            provider=provider,
            model=model,
            system_prompt=system_prompt,
            template=template,
            user_id=user_id,
            tenant=tenant,
            title=title,
            tools=tools,
            metadata=metadata,
        )
        return Session(self._loop.run(made), self._loop)

    def get_session(self, session_id: str, *, tenant: str | None = None) -> Session:
        """The stored session, or :class:`threadline.SessionNotFound`."""
        return Session(self._loop.run(self._manager.get_session(session_id, tenant=tenant)), self._loop)

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        status: SessionStatus | str | None = None,
        tenant: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:
        """A page of sessions: :meth:`threadline.SessionManager.list_sessions`."""
        listed = self._manager.list_sessions(user_id=user_id, status=status, tenant=tenant, limit=limit, cursor=cursor)
        return self._loop.run(listed)

    def delete_user(self, user_id: str, *, tenant: str | None = None) -> DeletedCounts:
        """Delete every session of a user: :meth:`threadline.SessionManager.delete_user`."""
        return self._loop.run(self._manager.delete_user(user_id, tenant=tenant))

    # -- export, import and the storage ---------------------------------------

    def export_jsonl(
        self, out: IO[str], *, tenant: str | None = None, all_tenants: bool = False, raw: bool = False
    ) -> int:
        """Write sessions and messages as JSON lines: :meth:`threadline.SessionManager.export_jsonl`."""
        return self._loop.run(self._manager.export_jsonl(out, tenant=tenant, all_tenants=all_tenants, raw=raw))

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Import a file :meth:`export_jsonl` wrote: :meth:`threadline.SessionManager.import_jsonl`."""
        return self._loop.run(self._manager.import_jsonl(path))

    def events(self, *, tenant: str | None = None, all_tenants: bool = False) -> Stream[StorageEvent]:
        """What any process changes, as it happens: :meth:`threadline.SessionManager.events`."""
        return Stream(self._loop, lambda: self._manager.events(tenant=tenant, all_tenants=all_tenants))

    def search(
        self,
        text: str,
        *,
        user_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        limit: int = 20,
        tenant: str | None = None,
    ) -> list[SearchHit]:
        """The stored messages that have every word of ``text``: :meth:`threadline.SessionManager.search`."""
        found = self._manager.search(text, user_id=user_id, provider=provider, since=since, limit=limit, tenant=tenant)
        return self._loop.run(found)

    def vacuum(self) -> int:
        """Give deleted sessions' space back: :meth:`threadline.SessionManager.vacuum`."""
        return self._loop.run(self._manager.vacuum())
