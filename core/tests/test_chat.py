"""`threadline chat`, driven as a user drives it: keys typed into a pseudo-terminal, or lines
through a pipe. The chat runs on the echo provider, with memory storage; `/history` shows what
was stored."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from threadline import Config, Message, SessionArchived, SessionManager, hookimpl
from threadline.builtins.memory import MemoryStorage

PROMPT = "you>"
CTRL_D = "\x04"
LEFT, UP = "\x1b[D", "\x1b[A"
ESC_ENTER = "\x1b\r"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"

# the CLI, counting the sessions it stores (memory storage keeps nothing to look at afterwards)
COUNTING_SESSIONS = """
import atexit, sys
import threadline.builtins.memory as memory
from threadline.cli import main

stored = []
create_session = memory.MemoryStorage.create_session

async def counted(self, record):
    stored.append(record.id)
    return await create_session(self, record)

memory.MemoryStorage.create_session = counted
atexit.register(lambda: print(f"sessions stored: {len(stored)}", file=sys.stderr))
main(sys.argv[1:])
"""
THREADLINE = ["-m", "threadline"]
COUNTING = ["-c", COUNTING_SESSIONS]


def write_config(path: Path, echo: str = "") -> Path:
    path.write_text(f'[defaults]\nprovider = "echo"\n[storage]\nbackend = "memory"\n[providers.echo]\n{echo}\n')
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "threadline.toml")


@pytest.fixture
def slow_config(tmp_path: Path) -> Path:
    """Replies that take half a minute: one character every half second."""
    return write_config(tmp_path / "threadline.toml", "chunk_size = 1\nchunk_delay = 0.5")


Terminal = Callable[..., pexpect.spawn]


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    """Start `threadline chat` in a pseudo-terminal and wait for its first prompt."""
    children: list[pexpect.spawn] = []

    def start(config: Path, program: list[str] = THREADLINE) -> pexpect.spawn:
        env = {**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"}  # no reply to a cursor query
        child = pexpect.spawn(
            sys.executable,
            [*program, "--config", str(config), "chat"],
            env=env,
            encoding="utf-8",
            codec_errors="replace",
            timeout=30,
            dimensions=(24, 200),
        )
        children.append(child)
        child.expect_exact(PROMPT)
        return child

    yield start
    for child in children:
        child.close(force=True)


def leave(child: pexpect.spawn) -> str:
    """Press Ctrl-D at the prompt; what the chat printed until it ended, and its exit status."""
    child.send(CTRL_D)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def history(child: pexpect.spawn, *lines: str) -> None:
    child.send("/history\r")
    for line in lines:
        child.expect_exact(line)
    child.expect_exact(PROMPT)


def test_ctrl_c_during_a_reply_stops_it_keeps_it_incomplete_and_returns_to_the_prompt(
    terminal: Terminal, slow_config: Path
) -> None:
    chat = terminal(slow_config)
    chat.send("a reply that takes long enough to be interrupted in the middle\r")
    chat.expect_exact("assistant> a")
    chat.sendintr()
    chat.expect_exact("(reply stopped)")
    chat.expect_exact(PROMPT)
    history(chat, "   1 user: a reply that takes", "   2 assistant (incomplete: cancelled): a")
    leave(chat)


def test_ctrl_c_at_the_prompt_clears_the_line_and_the_chat_goes_on(terminal: Terminal, config: Path) -> None:
    chat = terminal(config)
    chat.send("abc")
    chat.sendintr()
    chat.send("hello\r")
    chat.expect_exact("assistant> hello\r\n")
    history(chat, "   1 user: hello\r\n")
    leave(chat)


def test_ctrl_d_leaves_at_once_and_stores_no_session(terminal: Terminal, config: Path) -> None:
    assert "sessions stored: 0" in leave(terminal(config, COUNTING))


def test_arrow_keys_edit_the_line_and_the_edited_text_is_sent(terminal: Terminal, config: Path) -> None:
    chat = terminal(config)
    chat.send(f"abc{LEFT}{LEFT}X\r")
    chat.expect_exact("assistant> aXbc\r\n")
    history(chat, "   1 user: aXbc\r\n")
    leave(chat)


def test_up_arrow_recalls_a_message_from_an_earlier_run(terminal: Terminal, config: Path) -> None:
    first = terminal(config)
    first.send("remember me\r")
    first.expect_exact("assistant> remember me\r\n")
    first.expect_exact(PROMPT)
    leave(first)
    second = terminal(config)
    second.send(f"{UP}\r")
    second.expect_exact("assistant> remember me\r\n")
    leave(second)


def test_a_paste_and_esc_enter_make_multi_line_messages(terminal: Terminal, config: Path) -> None:
    chat = terminal(config)
    chat.send(f"{PASTE_START}one\ntwo{PASTE_END}\r")
    chat.expect_exact("assistant> one\r\ntwo\r\n")
    chat.expect_exact(PROMPT)
    chat.send(f"three{ESC_ENTER}four\r")
    chat.expect_exact("assistant> three\r\nfour\r\n")
    chat.expect_exact(PROMPT)
    history(chat, "   1 user: one\r\ntwo\r\n", "   3 user: three\r\nfour\r\n", "   4 assistant: three\r\nfour\r\n")
    leave(chat)


def test_a_provider_error_is_one_line_and_the_next_piped_line_is_answered(tmp_path: Path) -> None:
    replies = 'replies = [{ error = "rate_limited", retry_after = 2 }, { text = "fine" }]'
    config = write_config(tmp_path / "threadline.toml", replies)
    run = subprocess.run(
        [sys.executable, *THREADLINE, "--config", str(config), "chat"],
        input="first\nsecond\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout == "fine\n"
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "rate_limited" in line]
    assert errors == ["error: echo: scripted rate_limited error (retry after 2 s)"]
    assert run.returncode == 1 and "Error: 1 message got no reply" in run.stderr


def test_a_piped_chat_that_sends_nothing_stores_no_session(config: Path) -> None:
    run = subprocess.run(
        [sys.executable, *COUNTING, "--config", str(config), "chat"],
        input="/history\n/new\n/quit\nnever sent\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "sessions stored: 0" in run.stderr and "not kept" not in run.stderr


def sigint_as_at_a_terminal() -> None:
    """A program started from a background job (as CI may start the tests) inherits SIGINT
    ignored and, as every program does, keeps it so; a terminal's Ctrl-C is what a test means."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_a_piped_chat_waits_for_a_line_exits_130(config: Path) -> None:
    chat = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", *THREADLINE, "--config", str(config), "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    try:
        assert chat.stderr is not None
        assert chat.stderr.readline() == f"config: {config} (given by --config)\n"  # the chat has begun
        chat.send_signal(signal.SIGINT)
        try:
            assert chat.wait(timeout=60) == 130
        except subprocess.TimeoutExpired:
            chat.send_signal(signal.SIGABRT)  # -X faulthandler prints every thread's stack
            pytest.fail(f"the chat did not end on Ctrl-C; where it was:\n{chat.communicate()[1]}")
        assert chat.stderr.read().strip() == "interrupted"
    finally:
        chat.kill()
        chat.communicate()


async def test_an_archived_session_refuses_a_message_and_stores_nothing(manager: SessionManager) -> None:
    """What a chat resumed on an archived session meets at its first message (the CLI refuses
    to resume one at all); the same for every storage, as the turn engine refuses it."""
    session = await manager.create_session()
    await session.send("before")
    await session.archive()
    with pytest.raises(SessionArchived, match=r"is archived and takes no new messages; .*fork it"):
        await session.send("after")
    with pytest.raises(SessionArchived):
        async for _ in session.stream("after"):
            pass
    other = await manager.get_session(session.id)
    with pytest.raises(SessionArchived) as refused:
        await other.send("after")
    assert (refused.value.session_id, refused.value.tenant) == (session.id, "default")
    assert [m.text for m in await other.history()] == ["before", "before"]
    fork = await session.fork()  # the way to go on
    assert (await fork.send("after")).text == "after"


async def test_a_message_queued_behind_the_archiving_is_refused() -> None:
    """A send that was waiting for the turn before it while the session was archived."""
    started = asyncio.Event()

    class Listener:
        @hookimpl
        def threadline_message_appended(self, message: Message) -> None:
            started.set()  # the first turn has stored its message: it holds the session's turn

    config = Config.from_dict({"defaults": {"provider": "echo"}, "providers": {"echo": {"latency": 0.2}}})
    async with SessionManager(config, storage=MemoryStorage(), plugins=[Listener()]) as manager:
        session = await manager.create_session()
        first = asyncio.create_task(session.send("first"))
        await started.wait()
        archiving = asyncio.create_task(session.archive())
        await asyncio.sleep(0)  # waits for the first turn to end, ahead of the next send
        with pytest.raises(SessionArchived):
            await session.send("queued")
        assert (await first).text == "first"
        await archiving
        assert [m.text for m in await session.history()] == ["first", "first"]
