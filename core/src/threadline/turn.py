"""The one turn engine: a user message in, the reply out, tools run in between.

``Session.stream`` yields the events of :func:`run_turn`; ``Session.send`` drains the same
generator. So failure, cancellation, tool steps, the message stage and the hooks behave the
same for both by construction. Every message passes the middleware's message stage
(:meth:`threadline.Middleware.message`) before it is stored; what is stored is what later
readers, the title and ``threadline_message_appended`` see.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from threadline.editing import last_user, replace_after
from threadline.errors import ProviderError, ToolError
from threadline.middleware import Call, Turn
from threadline.model import (
    CallOptions,
    Capabilities,
    Done,
    Event,
    Message,
    MessageStatus,
    OutputSchema,
    Part,
    Request,
    Response,
    Role,
    StreamAssembler,
    ToolCall,
    ToolResult,
    Usage,
    as_parts,
)
from threadline.output import output_instruction
from threadline.providers import check_attachments
from threadline.turn_lease import turn_lease

if TYPE_CHECKING:
    from threadline.session import Session

TITLE_LENGTH = 60
log = logging.getLogger("threadline.turn")


def plan_turn(
    session: Session,
    content: str | Part | Sequence[Part],
    provider: str | None,
    model: str | None,
    options: CallOptions,
    *,
    streaming: bool,
    again: bool = False,
    output: OutputSchema | None = None,
) -> Turn:
    """What a ``send``, ``stream`` or ``regenerate`` asks for. The provider and model are the
    call's, else the session's (a model is kept only when the provider is the session's own)."""
    stored = session._live.stored
    provider, model = session._manager.resolve_model(provider, model)  # a model alias: its model
    if provider is not None:
        session._manager._check_provider(provider)
    chosen = provider or stored.provider
    model = model or (stored.model if chosen == stored.provider else None)
    return Turn(
        stored, chosen, model, options, as_parts(content), streaming, again=again, output=output, handle=session
    )


async def run_turn(session: Session, turn: Turn) -> AsyncGenerator[Event, None]:
    """One turn's events: the reply's deltas when it is streamed, then one ``Done`` whose
    ``message`` is the stored reply.

    Whatever ends the turn early (a provider or middleware error, a broken stream, a tool step
    limit, a cancellation, the caller breaking off) is recorded the same way: the reply as far
    as it got is stored ``incomplete``, else the user message is marked ``failed``; a
    :class:`~threadline.ProviderError` also goes to ``threadline_provider_error``.
    """
    manager = session._manager
    message = None if turn.again else _user_message(session, turn)  # refused here: nothing stored
    async with session._live.lock, turn_lease(session):
        await session.refresh()  # another process may have edited, archived or changed the session
        session._refuse_if_archived()
        user = await _answer_again(session) if message is None else await _store_user(session, message)
        partial = StreamAssembler()
        usage: Usage | None = None
        session._live.turn_id = turn.id
        try:
            if message is not None:
                await _title(session, user)
                await session._announce([user])
            for _ in range(manager.config.defaults.max_tool_steps):
                call = await _call(session, turn)
                result: Response | Done
                if turn.streaming:
                    events = manager._chain.stream(call)
                    try:
                        async for event in events:
                            partial.add(event)
                            if not isinstance(event, Done):
                                yield event
                    finally:
                        await _close(events)
                    result, parts = partial.done or Done(), partial.parts()
                    partial = StreamAssembler()  # whole now: a failure from here on is not a cut-off reply
                else:
                    result = await manager._chain.complete(call)
                    parts = result.parts
                reply = await _store_reply(session, parts, result, turn)
                usage = result.usage if usage is None else usage + result.usage
                if not reply.tool_calls:
                    final = Done(
                        usage=usage,
                        finish_reason=result.finish_reason,
                        model=result.model,
                        provider_state=result.provider_state,
                        message=reply,
                    )
                    break
                await _run_tools(session, turn, _as_returned(reply.tool_calls, parts))
            else:
                steps = manager.config.defaults.max_tool_steps
                raise ToolError(f"the model was still calling tools after {steps} steps ([defaults] max_tool_steps)")
        except BaseException as exc:
            await asyncio.shield(_fail(session, user, exc, partial))
            raise
        finally:
            session._live.turn_id = None
    yield final


def _user_message(session: Session, turn: Turn) -> Message:
    """The user's message, checked against what the model takes (and the session against
    being archived)."""
    session._refuse_if_archived()
    message = Message(session.id, session._next_seq, Role.USER, turn.content)
    capabilities = session._manager.provider(turn.provider).capabilities(turn.model)
    check_attachments(capabilities, [message], model=turn.model, provider=turn.provider)
    return message


async def _answer_again(session: Session) -> Message:
    """The last user message, to be answered again (``Session.regenerate``): what followed it
    is replaced by nothing (and kept, as a revision), and a ``failed`` mark is taken off."""
    await replace_after(session, _answer_again_plan)  # nothing after it: nothing replaced
    user = last_user(await session._current_history())
    if user.status is not MessageStatus.OK:
        await _mark(session, user.seq, MessageStatus.OK, None)
        user = attrs.evolve(user, status=MessageStatus.OK, error=None)
    return user


async def _answer_again_plan(history: list[Message]) -> tuple[int, list[Message]]:
    return last_user(history).seq, []


async def _store_user(session: Session, message: Message) -> Message:
    """Stage and store the user's message; a refusal here stores nothing. It was numbered
    before the turn waited for the one before: the stage sees the ``seq`` it will have, as
    far as this process knows (another's appends show as a conflict, which renumbers it)."""
    if message.seq != session._next_seq:
        message = attrs.evolve(message, seq=session._next_seq)
    staged = await session._staged(message)
    try:
        (user,) = await session._store([staged])
    except asyncio.CancelledError:
        await asyncio.shield(_fail_if_stored(session, staged.id))
        raise
    return user


async def _fail_if_stored(session: Session, message_id: str) -> None:
    """A user message stored as its turn was cancelled is marked failed: it got no reply."""
    try:
        await _fail_if_last(session, message_id, "cancelled")
    except Exception:
        log.exception("session %s: could not mark a cancelled turn's message failed", session.id)


async def _fail_if_last(session: Session, message_id: str, error: str) -> None:
    """Mark the user message ``message_id`` failed if nothing came after it. Found by id: an
    edit during the turn (a summary of older turns) may have renumbered it."""
    live = session._live
    history = live.history
    if history is not None and len(history) == live.message_count:
        last = history[-1:]
    else:
        last = await session._storage.get_messages(live.stored.tenant, session.id, last=1)
    if last and last[0].id == message_id:
        await _mark(session, last[0].seq, MessageStatus.FAILED, error)


async def _title(session: Session, user: Message) -> None:
    """An untitled session takes its title from its first stored user message."""
    if session._live.stored.title is None and (text := user.text.strip()):
        await session.update(title=_title_from(text))


async def _call(session: Session, turn: Turn) -> Call:
    live = session._live
    history = await session._current_history()
    state = live.stored.provider_state if turn.provider == live.stored.provider else {}
    tools = session._manager.registry.tools
    specs = tuple(tools[name].spec for name in live.stored.tools if name in tools)
    request = Request(turn.model, tuple(_replayable(history)), live.stored.system_prompt, specs, turn.options, state)
    if turn.output is not None:
        request = _asking_for(request, turn.output, session._manager.provider(turn.provider).capabilities(turn.model))
    return Call(session.record, turn.provider, request, turn)


def _asking_for(request: Request, output: OutputSchema, capabilities: Capabilities) -> Request:
    """``request`` asking for a reply that matches ``output``: the provider's own way, else
    in the system prompt."""
    if capabilities.structured_output:
        return attrs.evolve(request, output=output)
    system_prompt = "\n\n".join(filter(None, [request.system_prompt, output_instruction(output)]))
    return attrs.evolve(request, system_prompt=system_prompt)


async def _store_reply(session: Session, parts: tuple[Part, ...], result: Response | Done, turn: Turn) -> Message:
    message = Message(
        session.id,
        session._next_seq,
        Role.ASSISTANT,
        parts,
        usage=result.usage,
        provider=turn.provider,
        model=result.model or turn.model,
    )
    (stored,) = await session._append([await session._staged(message)])
    if result.provider_state is not None and turn.provider == session._live.stored.provider:
        await session.update(provider_state=result.provider_state)
    return stored


def _as_returned(stored: list[ToolCall], parts: tuple[Part, ...]) -> list[ToolCall]:
    """The stored reply's tool calls as the chain returned them: the message stage decides
    what is stored and which calls there are, not what a tool is given (a redacted or
    encrypted argument is for the disk, the tool needs the value)."""
    returned = {part.id: part for part in parts if isinstance(part, ToolCall)}
    return [returned.get(call.id, call) for call in stored]


async def _run_tools(session: Session, turn: Turn, calls: list[ToolCall]) -> None:
    results = await asyncio.gather(*(_run_tool(session, turn, call) for call in calls))
    message = Message(session.id, session._next_seq, Role.TOOL, results)
    await session._append([await session._staged(message)])


async def _run_tool(session: Session, turn: Turn, call: ToolCall) -> ToolResult:
    """``call``'s result through the middleware's tool stage; what raises there is the
    result, as an error the model reads."""
    try:
        return await session._manager._chain.run_tool(call, turn, functools.partial(_call_tool, session))
    except Exception as exc:
        return ToolResult(call.id, f"{type(exc).__name__}: {exc}", is_error=True)


async def _call_tool(session: Session, call: ToolCall) -> ToolResult:
    tools = session._manager.registry.tools
    allowed = session._live.stored.tools
    if call.name not in allowed or call.name not in tools:
        known = ", ".join(allowed) or "none"
        raise ToolError(f"no tool named {call.name!r}; this session's tools: {known}")
    return await tools[call.name].call(call)


async def _fail(session: Session, user: Message, exc: BaseException, partial: StreamAssembler) -> None:
    """Record a failed turn: the reply as far as it got (incomplete), else the user message
    marked failed; tell the ``threadline_provider_error`` hook about provider errors. What
    goes wrong while recording is logged: the caller raises the turn's own error."""
    error = "cancelled" if isinstance(exc, asyncio.CancelledError | GeneratorExit) else str(exc) or type(exc).__name__
    try:
        await _record_failure(session, user, error, partial)
        if isinstance(exc, ProviderError):
            manager = session._manager
            await manager.plugin_manager.notify(
                "threadline_provider_error", session=session.record, error=exc, manager=manager
            )
    except Exception:
        log.exception("session %s: could not record its failed turn (%s)", session.id, error)


async def _record_failure(session: Session, user: Message, error: str, partial: StreamAssembler) -> None:
    if partial.started:
        message = Message(
            session.id,
            session._next_seq,
            Role.ASSISTANT,
            partial.parts(complete=False),
            status=MessageStatus.INCOMPLETE,
            error=error,
        )
        await session._append([await session._staged(message)])
    else:
        await _fail_if_last(session, user.id, error)


async def _mark(session: Session, seq: int, status: MessageStatus, error: str | None) -> None:
    """Mark the session's last message, the user's of a turn, ``failed`` (its turn failed)
    or ``ok`` again (it is answered again)."""
    live = session._live
    await session._storage.set_message_status(live.stored.tenant, session.id, seq, status.value, error)
    if live.history and live.history[-1].seq == seq:
        live.history[-1] = attrs.evolve(live.history[-1], status=status, error=error)


async def _close(events: AsyncIterator[Any]) -> None:
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
