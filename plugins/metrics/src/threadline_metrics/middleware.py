"""The ``metrics`` middleware: each model call timed and counted as it passes, whole or
streamed: its duration, its tokens, its status and error class, and for a stream the time
to its first chunk and between chunks. First in the chain, it sees every call as the
application made it, retries and failovers included."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from threadline.plugin import Call, CompleteNext, ConfigError, Done, Event, Middleware, Response, StreamNext, Usage
from threadline_metrics import MetricsConfig
from threadline_metrics.instruments import Instruments, instruments

OPERATION = "chat"  # gen_ai.operation.name of every call a session makes


class MetricsMiddleware(Middleware):
    def __init__(self, config: MetricsConfig) -> None:
        self.config = config
        #: with a port, a registry of its own, which ``/metrics`` serves
        self.registry = CollectorRegistry() if config.port is not None else None
        self.instruments: Instruments = instruments(self.registry, config.labels)
        self.server: Any = None
        self.spans = Spans() if config.otel else None

    def serve(self) -> None:
        """Serve ``/metrics`` on 127.0.0.1 at the config's port, from a background thread."""
        if self.config.port is not None and self.registry is not None and self.server is None:
            try:
                self.server, _ = start_http_server(self.config.port, addr="127.0.0.1", registry=self.registry)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve /metrics on 127.0.0.1:{self.config.port}: {exc.strerror or exc}; "
                    "name a free port, or none to use prometheus_client's default registry",
                    key="middleware.metrics.port",
                ) from None

    def stop_serving(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def labels(self, call: Call, model: str | None = None) -> dict[str, str]:
        session = call.session
        labels = {"operation": OPERATION, "provider": call.provider, "model": model or call.request.model or ""}
        labels.update({name: str(getattr(session, name) or "") for name in self.config.labels})
        return labels

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
        labels = self.labels(call, model)
        status = "error" if error else "ok"
        self.instruments.duration.labels(**labels, status=status).observe(time.perf_counter() - started)
        self.instruments.requests.labels(**labels, status=status, error=error).inc()
        if usage is not None:
            tokens = self.instruments.tokens
            tokens.labels(**labels, token_type="input").observe(usage.input_tokens)
            tokens.labels(**labels, token_type="output").observe(usage.output_tokens)
        if arrivals:
            self.instruments.first_chunk.labels(**labels).observe(arrivals[0] - started)
            per_chunk = self.instruments.per_chunk.labels(**labels)
            for before, after in itertools.pairwise(arrivals):
                per_chunk.observe(after - before)

    async def complete(self, call: Call, next: CompleteNext) -> Response:
        started = time.perf_counter()
        span = self.spans.start(call) if self.spans else None
        try:
            response = await next(call)
        except BaseException as exc:
            self.ended(call, started, span, None, exc)
            raise
        self.ended(call, started, span, response)
        return response

    async def stream(self, call: Call, next: StreamNext) -> AsyncIterator[Event]:
        """The events as they come; their timings are observed at the end, labelled by the
        model that answered, as the whole call is."""
        started = time.perf_counter()
        span = self.spans.start(call) if self.spans else None
        arrivals: list[float] = []
        done: Done | None = None
        events = next(call)
        try:
            async for event in events:
                if isinstance(event, Done):
                    done = event
                else:
                    arrivals.append(time.perf_counter())
                yield event
        except BaseException as exc:
            self.ended(call, started, span, None, exc, arrivals)
            raise
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        self.ended(call, started, span, done, None, arrivals)

    def ended(
        self,
        call: Call,
        started: float,
        span: Any,
        reply: Response | Done | None,
        exc: BaseException | None = None,
        arrivals: Sequence[float] = (),
    ) -> None:
        """A call ended, with ``reply`` or ``exc``: its metrics, and its span ended."""
        error = "" if exc is None else _error(exc)
        model = reply.model if reply is not None else None
        self.record(call, started, model, reply.usage if reply is not None else None, error, arrivals)
        if span is not None and self.spans is not None:
            self.spans.end(span, reply, error)


def _error(exc: BaseException) -> str:
    """An error's class, or ``cancelled`` for a call the caller left."""
    return "cancelled" if isinstance(exc, asyncio.CancelledError | GeneratorExit) else type(exc).__name__


class Spans:
    """OpenTelemetry spans of model calls, by the GenAI semantic conventions: one per call,
    ``chat {model}``, a client span, through the global tracer provider."""

    def __init__(self) -> None:
        from opentelemetry import trace

        self.trace = trace
        self.tracer = trace.get_tracer("threadline_metrics")

    def start(self, call: Call) -> Any:
        model = call.request.model
        attributes: dict[str, str | int | float] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": call.provider,
            **({"gen_ai.request.model": model} if model else {}),
        }
        options = call.request.options
        if options.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = options.max_tokens
        if options.temperature is not None:
            attributes["gen_ai.request.temperature"] = options.temperature
        name = f"{OPERATION} {model}" if model else OPERATION
        return self.tracer.start_span(name, kind=self.trace.SpanKind.CLIENT, attributes=attributes)

    def end(self, span: Any, reply: Response | Done | None, error: str) -> None:
        if reply is not None:
            if reply.model:
                span.set_attribute("gen_ai.response.model", reply.model)
            span.set_attribute("gen_ai.usage.input_tokens", reply.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", reply.usage.output_tokens)
            span.set_attribute("gen_ai.response.finish_reasons", [reply.finish_reason])
        if error:
            span.set_attribute("error.type", error)
            span.set_status(self.trace.Status(self.trace.StatusCode.ERROR))
        span.end()
