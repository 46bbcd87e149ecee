"""The ``metrics`` middleware: each model call timed, counted and priced as it passes, whole
or streamed (its duration, tokens, cost, status and error class; for a stream the time to
its first chunk and between chunks); each turn and tool run a span when ``otel`` is on; the
sessions in a turn; and, through its storage stage, every storage operation timed. First in
the chain, it sees every call as the application made it, retries and failovers included."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from prometheus_client import CollectorRegistry, start_http_server

from threadline import StreamAssembler
from threadline.plugin import (
    Call,
    CompleteNext,
    Done,
    Event,
    Middleware,
    Part,
    Response,
    Storage,
    StreamNext,
    ToolCall,
    ToolNext,
    ToolResult,
    Turn,
    TurnNext,
    Usage,
)
from threadline_metrics import MetricsConfig
from threadline_metrics.instruments import instruments
from threadline_metrics.prices import shipped
from threadline_metrics.spans import OPERATION, Spans
from threadline_metrics.storage import TimedStorage

if TYPE_CHECKING:
    from threadline import SessionManager

log = logging.getLogger("threadline_metrics")


class MetricsMiddleware(Middleware):
    def __init__(self, config: MetricsConfig) -> None:
        self.config = config
        #: with a port, a registry of its own, which ``/metrics`` serves
        self.registry = CollectorRegistry() if config.port is not None else None
        #: none with ``prometheus = false``
        self.instruments = instruments(self.registry, config.labels) if config.prometheus else None
        self.prices = shipped().extended(config.prices)
        #: the providers and models the price table has no price for, each warned of once
        self.unpriced: set[tuple[str, str]] = set()
        self.server: Any = None
        self.spans = Spans(config.capture_content) if config.otel else None
        #: the span of each turn under way, by the turn's id: the parent of its calls' and
        #: tool runs' spans
        self.turn_spans: dict[str, Any] = {}
        #: the model each provider answers calls that name none with: its default model
        #: (given at startup), then the one that last answered such a call; what a failed
        #: call is labelled by, as its successes are
        self.answering: dict[str, str] = {}
        #: how many turns of each session in a turn are under way (one, or more queued)
        self.in_turn: dict[str, int] = {}

    def serve(self) -> None:
        """Serve ``/metrics`` on 127.0.0.1 at the config's port, from a background thread; a
        port another process holds (a second worker, the CLI beside the application) is
        warned of, and the manager goes on without serving."""
        if self.config.port is not None and self.registry is not None and self.server is None:
            try:
                self.server, _ = start_http_server(self.config.port, addr="127.0.0.1", registry=self.registry)
            except OSError as exc:
                log.warning(
                    "cannot serve /metrics on 127.0.0.1:%s ([middleware.metrics] port): %s; this manager's "
                    "metrics are not served. Give each process its own port, or none and serve "
                    "prometheus_client's default registry from the application",
                    self.config.port,
                    exc.strerror or exc,
                )

    def learn_default_models(self, manager: SessionManager) -> None:
        """Each provider's default model, to label a call that names none and fails before
        any has answered."""
        for provider in manager.registry.providers:
            if (model := manager.provider_default_model(provider)) is not None:
                self.answering.setdefault(provider, model)

    def stop_serving(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- the storage and turns ------------------------------------------------------------

    def wrap_storage(self, storage: Storage, backend: str) -> Storage:
        return storage if self.instruments is None else TimedStorage(storage, backend, self.instruments.storage)

    async def turn(self, turn: Turn, next: TurnNext) -> AsyncGenerator[Event, None]:
        """The turn counted among the sessions in one while it runs, and its span."""
        session_id, spans = turn.session.id, self.spans
        span = spans.start_turn(turn) if spans is not None else None
        if span is not None:
            self.turn_spans[turn.id] = span
        self.entered(session_id)
        done: Done | None = None
        error = ""
        try:
            async for event in next(turn):
                if type(event) is Done:
                    done = event
                yield event
        except BaseException as exc:
            error = _error(exc)
            raise
        finally:
            self.left(session_id)
            if spans is not None and span is not None:
                if self.turn_spans.get(turn.id) is span:  # a stage before may run the turn again
                    del self.turn_spans[turn.id]
                spans.end_call(span, done, error, done.message.parts if done and done.message else ())

    def entered(self, session_id: str) -> None:
        turns = self.in_turn.get(session_id, 0)
        self.in_turn[session_id] = turns + 1
        if not turns and self.instruments is not None:
            self.instruments.sessions.inc()

    def left(self, session_id: str) -> None:
        turns = self.in_turn.pop(session_id) - 1
        if turns:
            self.in_turn[session_id] = turns
        elif self.instruments is not None:
            self.instruments.sessions.dec()

    async def tool(self, call: ToolCall, turn: Turn, next: ToolNext) -> ToolResult:
        if self.spans is None:
            return await next(call)
        span = self.spans.start_tool(call, turn, self.turn_spans.get(turn.id))
        try:
            with _current(span):
                result = await next(call)
        except BaseException as exc:
            self.spans.end_tool(span, None, _error(exc))
            raise
        self.spans.end_tool(span, result, "")
        return result

    # -- model calls ----------------------------------------------------------------------

    def values(self, call: Call, model: str | None) -> tuple[str, ...]:
        """The values of a call's labels: operation, provider, model (the one that answered,
        else the one asked for, else the one that answered the last call that named none),
        then the config's."""
        session, provider = call.session, call.provider
        if model and call.request.model is None:
            self.answering[provider] = model
        model = model or call.request.model or self.answering.get(provider, "")
        extra = (str(getattr(session, name) or "") for name in self.config.labels)
        return (OPERATION, provider, model, *extra)

    def record(
        self,
        call: Call,
        started: float,
        model: str | None,
        usage: Usage | None,
        error: str,
        arrivals: Sequence[float] = (),
    ) -> None:
        """One call's metrics; ``arrivals``: when each chunk of a stream came."""
        instruments = self.instruments
        if instruments is None:
            return
        values, elapsed = self.values(call, model), time.perf_counter() - started
        if error:  # a series of its own, and no tokens
            instruments.duration.labels(*values, "error").observe(elapsed)
            instruments.requests.labels(*values, "error", error).inc()
            first_chunk, per_chunk = instruments.first_chunk.labels(*values), instruments.per_chunk.labels(*values)
        else:
            series = instruments.series(values)
            series.duration.observe(elapsed)
            series.requests.inc()
            if usage is not None:
                series.input_tokens.observe(usage.input_tokens)
                series.output_tokens.observe(usage.output_tokens)
                series.cost.inc(usage.cost or 0.0)
            first_chunk, per_chunk = series.first_chunk, series.per_chunk
        if arrivals:
            first_chunk.observe(arrivals[0] - started)
            for before, after in itertools.pairwise(arrivals):
                per_chunk.observe(after - before)

    def priced(self, call: Call, reply: Response | Done) -> Response | Done:
        """``reply`` with its cost in its usage, when the provider did not say and the price
        table knows the model: the stored reply keeps what it cost when it was made."""
        usage = reply.usage
        if usage.cost is not None:
            return reply
        model = reply.model or call.request.model  # the one that answered is the one to pay
        cost = self.prices.cost(call.provider, usage, model)
        if cost is None or not math.isfinite(cost):
            self.warn_unpriced(call.provider, model or "")
            return reply
        return attrs.evolve(reply, usage=Usage(usage.input_tokens, usage.output_tokens, usage.cached_tokens, cost))

    def warn_unpriced(self, provider: str, model: str) -> None:
        if (provider, model) not in self.unpriced:
            self.unpriced.add((provider, model))
            log.warning(
                "no price for %s model %r in the price table (taken %s): its calls cost 0 in "
                "threadline_cost_usd_total; add it to [middleware.metrics.prices.%s]",
                provider,
                model,
                self.prices.taken,
                provider,
            )

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        started = time.perf_counter()
        span = self.start_span(call)
        try:
            with _current(span):
                response = self.priced(call, await next(call))
        except BaseException as exc:
            self.ended(call, started, span, None, exc)
            raise
        self.ended(call, started, span, response)
        return response  # type: ignore[return-value]

    async def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        """The events as they come; their timings are observed at the end, labelled by the
        model that answered, as the whole call is."""
        started = time.perf_counter()
        span = self.start_span(call)
        output = StreamAssembler() if span is not None and self.config.capture_content else None
        arrivals: list[float] = []
        done: Done | None = None
        events = next(call)
        try:
            async for event in events:
                if isinstance(event, Done):
                    done = event = self.priced(call, event)  # type: ignore[assignment]
                else:
                    arrivals.append(time.perf_counter())
                if output is not None:
                    output.add(event)
                yield event
        except BaseException as exc:
            self.ended(call, started, span, None, exc, arrivals)
            raise
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        self.ended(call, started, span, done, None, arrivals, output.parts() if output is not None else ())

    def start_span(self, call: Call) -> Any:
        if self.spans is None:
            return None
        return self.spans.start_call(call, self.turn_spans.get(call.turn.id) if call.turn is not None else None)

    def ended(
        self,
        call: Call,
        started: float,
        span: Any,
        reply: Response | Done | None,
        exc: BaseException | None = None,
        arrivals: Sequence[float] = (),
        parts: Sequence[Part] = (),
    ) -> None:
        """A call ended, with ``reply`` or ``exc``: its metrics, and its span ended."""
        error = "" if exc is None else _error(exc)
        model = reply.model if reply is not None else None
        self.record(call, started, model, reply.usage if reply is not None else None, error, arrivals)
        if span is not None and self.spans is not None:
            self.spans.end_call(span, reply, error, parts)


def _error(exc: BaseException) -> str:
    """An error's class, or ``cancelled`` for a call the caller left."""
    return "cancelled" if isinstance(exc, asyncio.CancelledError | GeneratorExit) else type(exc).__name__


def _current(span: Any) -> Any:
    """Make ``span`` the current span while a call or tool runs (no yield in between), so that
    what it calls (an HTTP client's instrumentation, a tool's own spans) nests under it."""
    if span is None:
        return contextlib.nullcontext()
    from opentelemetry import trace

    return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)
