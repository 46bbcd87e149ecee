"""What the ``metrics`` middleware adds to a model call: a 100-chunk stream (time to first
token, whole stream) and a whole call through a ``Session``, with the middleware (Prometheus
alone, and with OpenTelemetry spans through the SDK) and without it, in the same process and
run, taking turns call by call (``bench/middleware_streams.py``). The spans go through the
SDK's ``SimpleSpanProcessor`` to an exporter that counts them and keeps none, as one that
sends them away would (the SDK's in-memory exporter keeps every span, and the collector's
walks over them grow with the run).

Run: python bench/metrics.py [--calls 300] [--stall 0.25] [--gap 0.01]
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from middleware_streams import main
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

CONTENDERS = {
    "no middleware": {},
    "metrics": {"metrics": {}},
    "metrics, otel": {"metrics": {"otel": True}},
}


class Counting(SpanExporter):
    """Counts the spans it is given and keeps none."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


if __name__ == "__main__":
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Counting()))
    trace.set_tracer_provider(provider)
    asyncio.run(main(CONTENDERS, __doc__ or "", sends=True))
