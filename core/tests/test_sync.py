"""What only the sync API has to get right: its loop thread, which it starts and joins; use
inside a running event loop (Jupyter); streams left behind; interruption; its signatures.
What it shares with the async API is in test_behaviour.py."""

from __future__ import annotations

import gc
import inspect
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import threadline
import threadline.sync
from threadline import MessageStatus, TextDelta, ToolResult
from threadline.builtins.echo import EchoConfig, EchoProvider, Reply, ScriptedToolCall
from threadline.builtins.memory import MemoryStorage
from threadline.sync import SessionManager

LONG = "a long enough reply to come in pieces"


def loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "threadline-sync"]


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def tl(storage: MemoryStorage) -> Iterator[SessionManager]:
    with SessionManager(storage=storage) as manager:
        yield manager


async def test_it_works_where_an_event_loop_is_running_and_never_on_that_loop() -> None:
    """As in a Jupyter cell: called from a coroutine, the sync API blocks it and does its work
    on its own loop, in its own thread."""
    ran_in: list[str] = []

    @threadline.tool
    def where() -> str:
        """Where the tool runs."""
        ran_in.append(threading.current_thread().name)
        return "here"

    with SessionManager(storage=MemoryStorage(), tools=[where]) as tl:
        session = tl.create_session(tools=["where"])
        tl.provider("echo").script([Reply(tool_calls=(ScriptedToolCall("where"),))])  # type: ignore[attr-defined]
        assert session.send("where are you?").text == "tool results: here"
        assert [type(event).__name__ for event in session.stream("hi")] == ["TextDelta", "Done"]
    assert ran_in == ["threadline-sync"]


def test_close_stops_the_loop_and_joins_its_thread() -> None:
    before = loop_threads()
    manager = SessionManager(storage=MemoryStorage())
    assert loop_threads() == before  # no thread until it opens
    with manager as tl:
        tl.create_session()
        (thread,) = set(loop_threads()) - set(before)
    assert not thread.is_alive()
    assert loop_threads() == before
    manager.close()  # again: nothing to do


def test_use_before_open_and_after_close_is_a_clear_error(storage: MemoryStorage) -> None:
    manager = SessionManager(storage=storage)
    with pytest.raises(RuntimeError, match="not open; use `with SessionManager"):
        manager.list_sessions()
    with manager:
        session = manager.create_session()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coroutine is left unawaited by a refusal
        for call in [manager.list_sessions, lambda: session.send("hi"), lambda: session.stream("hi"), manager.open]:
            with pytest.raises(RuntimeError, match="SessionManager is closed; make another"):
                call()
        gc.collect()
    assert session.id and manager.config.defaults.tenant == "default"  # what needs no loop still answers


@pytest.mark.parametrize("how", ["break", "with", "del", "close"])
def test_a_stream_left_behind_stores_the_reply_so_far_before_the_caller_goes_on(tl: SessionManager, how: str) -> None:
    session = tl.create_session()
    if how == "break":
        for event in session.stream(LONG):
            first = event
            break
    elif how == "with":
        with session.stream(LONG) as events:
            first = next(events)
    else:
        events = session.stream(LONG)
        first = next(events)
        events.close() if how == "close" else events.__del__()
    assert isinstance(first, TextDelta)
    _, reply = session.history()
    assert (reply.text, reply.status) == (first.text, MessageStatus.INCOMPLETE)


def test_a_stream_still_open_when_the_manager_closes_is_recorded_and_then_refused(storage: MemoryStorage) -> None:
    with SessionManager(storage=storage) as tl:
        session = tl.create_session()
        events = session.stream(LONG)
        first = next(events)
    with pytest.raises(RuntimeError, match="closed"):
        next(events)
    events.close()  # nothing left to close
    with SessionManager(storage=storage) as tl:
        _, reply = tl.get_session(session.id).history()
    assert (reply.text, reply.status) == (getattr(first, "text", None), MessageStatus.INCOMPLETE)


def test_a_call_under_way_when_the_manager_closes_is_cancelled_recorded_and_refused(storage: MemoryStorage) -> None:
    asked = Asked()
    slow = EchoProvider(EchoConfig(latency=60))
    outcome: list[BaseException] = []
    with SessionManager(storage=storage, providers={"slow": slow}, plugins=[asked]) as tl:
        session = tl.create_session()
        caller = threading.Thread(target=keep_error, args=(outcome, lambda: session.send("hi", provider="slow")))
        caller.start()
        asked.stored.wait(10)
    caller.join()
    assert [str(error) for error in outcome] == [CLOSED]
    with SessionManager(storage=storage) as tl:
        (user,) = tl.get_session(session.id).history()
    assert (user.status, user.error) == (MessageStatus.FAILED, "cancelled")


def keep_error(errors: list[BaseException], call: Any) -> None:
    try:
        call()
    except RuntimeError as error:
        errors.append(error)


def test_a_call_from_another_thread_after_close_is_refused_not_left_waiting(storage: MemoryStorage) -> None:
    with SessionManager(storage=storage) as tl:
        session = tl.create_session()
    outcome: list[BaseException] = []
    calls = [tl.list_sessions, session.history, lambda: session.send("hi"), lambda: session.stream("hi")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coroutine is left unawaited by a refusal
        for call in calls:
            caller = threading.Thread(target=keep_error, args=(outcome, call), daemon=True)
            caller.start()
            caller.join(10)
            assert not caller.is_alive(), "the call waits for a loop that is gone"
        gc.collect()
    assert [str(error) for error in outcome] == [CLOSED] * len(calls)


def test_a_call_racing_close_from_another_thread_is_cancelled_or_refused_never_left_waiting(
    storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call that another thread makes as close() begins must not reach the loop after the
    wind-down, when it would never run. The interleaving is forced at the loop's
    ``call_soon_threadsafe`` (asyncio's, not threadline's): the caller, past the check that the
    manager is open, is held there until close() is about to stop the loop, or as long as
    close() cannot go on (0.5 s); close() holds the stop until the call is queued."""
    slow = EchoProvider(EchoConfig(latency=60))
    tl = SessionManager(storage=storage, providers={"slow": slow})
    tl.open()
    session = tl.create_session()
    loop = tl._loop._loop
    assert loop is not None
    queue = loop.call_soon_threadsafe
    holding, stopping, queued = threading.Event(), threading.Event(), threading.Event()

    def held(callback: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "caller":  # queueing its call's task
            holding.set()
            stopping.wait(0.5)
            handle = queue(callback, *args, **kwargs)
            queued.set()
            return handle
        if callback == loop.stop:
            stopping.set()
            queued.wait(5)
        return queue(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", held)
    outcome: list[BaseException] = []
    call = lambda: session.send("hi", provider="slow")  # noqa: E731
    caller = threading.Thread(target=keep_error, args=(outcome, call), name="caller", daemon=True)
    caller.start()
    assert holding.wait(10)
    tl.close()
    caller.join(10)
    assert not caller.is_alive(), "the call was queued after the wind-down and is left waiting"
    assert [str(error) for error in outcome] == [CLOSED]


CLOSED = "this threadline.sync.SessionManager is closed; make another"


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread, as in an interactive Python, even
    where the test run inherited it ignored (a background job of a non-interactive shell,
    as in CI)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if before is None else before)


@pytest.mark.usefixtures("ctrl_c_raises")
@pytest.mark.parametrize("how", ["send", "stream"])
def test_an_interrupted_call_is_cancelled_and_recorded_before_the_interruption_goes_on(how: str) -> None:
    asked = Asked()
    slow = EchoProvider(EchoConfig(latency=60))
    with SessionManager(storage=MemoryStorage(), providers={"slow": slow}, plugins=[asked]) as tl:
        session = tl.create_session()
        interrupter = threading.Thread(target=asked.interrupt)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            session.send("hi", provider="slow") if how == "send" else next(session.stream("hi", provider="slow"))
        interrupter.join()
        (user,) = session.history()
        assert (user.status, user.error) == (MessageStatus.FAILED, "cancelled")
        assert session.send("again").seq == 3  # the turn gave the session back


class Asked:
    """Presses Ctrl-C, as the main thread gets it, once a user message is stored (and the
    provider is being asked)."""

    def __init__(self) -> None:
        self.stored = threading.Event()

    @threadline.hookimpl
    def threadline_message_appended(self) -> None:
        self.stored.set()

    def interrupt(self) -> None:
        self.stored.wait(10)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def test_a_call_from_the_loops_own_thread_is_refused_not_deadlocked() -> None:
    @threadline.tool
    def count_sessions() -> int:
        """How many sessions there are."""
        return len(tl.list_sessions().items)

    with SessionManager(storage=MemoryStorage(), tools=[count_sessions]) as tl:
        session = tl.create_session(tools=["count_sessions"])
        tl.provider("echo").script([Reply(tool_calls=(ScriptedToolCall("count_sessions"),))])  # type: ignore[attr-defined]
        session.send("how many?")
        (result,) = session.history()[2].parts
    assert isinstance(result, ToolResult) and result.is_error
    assert "called from its own event loop's thread" in result.content


def test_a_manager_left_open_is_closed_when_the_program_exits(tmp_path: Path) -> None:
    script = tmp_path / "left_open.py"
    script.write_text(
        "import threadline, threadline.sync\n"
        "class Goodbye:\n"
        "    @threadline.hookimpl\n"
        "    def threadline_shutdown(self, manager):\n"
        "        print('shut down')\n"
        "tl = threadline.sync.SessionManager(plugins=[Goodbye()])\n"
        "tl.open()\n"
        "print(tl.create_session().send('hi').text)\n"
    )
    env = {"THREADLINE_PLUGINS": "echo,memory", "HOME": str(tmp_path), "PATH": ""}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\nshut down\n", "")


#: what the sync manager leaves to ``async_manager``: plumbing for plugins and the CLI
NOT_MIRRORED = {"middleware", "storage", "provider_default_model", "resolve_model", "resolve_tools", "exported"}


@pytest.mark.parametrize(
    ("sync", "asynchronous"),
    [(threadline.sync.SessionManager, threadline.SessionManager), (threadline.sync.Session, threadline.Session)],
)
def test_each_public_method_is_mirrored_with_the_same_parameters(sync: type, asynchronous: type) -> None:
    names = {name for name in dir(asynchronous) if not name.startswith("_")} - NOT_MIRRORED
    assert names <= set(dir(sync))
    for name in sorted(names | ({"__init__"} if sync is SessionManager else set())):
        theirs, ours = getattr(asynchronous, name), getattr(sync, name)
        if callable(theirs):
            assert parameters(ours) == parameters(theirs), name


def parameters(function: Any) -> list[inspect.Parameter]:
    return list(inspect.signature(function).parameters.values())[1:]  # after self (or the session's handle)
