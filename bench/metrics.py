"""What the ``metrics`` middleware adds to a model call: a 100-chunk stream (time to first
token, whole stream) and a whole call through a ``Session``, with the middleware (Prometheus
alone, and with OpenTelemetry spans into the SDK's in-memory exporter) and without it, in the
same process and run, taking turns call by call (``bench/middleware_streams.py``).

Run: python bench/metrics.py [--calls 300] [--stall 0.25] [--gap 0.01]
"""

from __future__ import annotations

import asyncio

from middleware_streams import main
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

CONTENDERS = {
    "no middleware": {},
    "metrics": {"metrics": {}},
    "metrics, otel": {"metrics": {"otel": True}},
}

if __name__ == "__main__":
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)
    asyncio.run(main(CONTENDERS, __doc__ or "", sends=True))
