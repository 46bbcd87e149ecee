"""The Prometheus instruments, named as the OpenTelemetry GenAI semantic conventions name
them where they name one (v1.41: ``gen_ai.client.operation.duration`` is
``gen_ai_client_operation_duration_seconds`` here), with the conventions' bucket
boundaries. One set per registry: a second manager in a process counts into the first's."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from attrs import field, frozen
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from threadline.plugin import ConfigError

#: the semantic conventions' advice for durations (seconds) and token counts
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = tuple(float(4**power) for power in range(14))  # 1, 4, 16, ... 67,108,864
#: a storage operation takes from tens of microseconds (in memory) to a network round trip
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

#: the labels of every call's series, then the config's ``labels``, then what sets a series apart
CALL_LABELS = ("operation", "provider", "model")


@frozen
class Series:
    """The children of the instruments for one label set: what a call that went well observes."""

    duration: Any
    requests: Any
    input_tokens: Any
    output_tokens: Any
    cost: Any
    first_chunk: Any
    per_chunk: Any


@frozen
class Instruments:
    duration: Histogram
    tokens: Histogram
    requests: Counter
    first_chunk: Histogram
    per_chunk: Histogram
    cost: Counter
    sessions: Gauge
    storage: Histogram
    #: the series of a call that went well, by its labels' values, bound once
    _series: dict[tuple[str, ...], Series] = field(factory=dict)

    def series(self, values: tuple[str, ...]) -> Series:
        """The series a call that went well observes, for its :data:`CALL_LABELS` and extra
        labels' ``values``."""
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = Series(
                self.duration.labels(*values, "ok"),
                self.requests.labels(*values, "ok", ""),
                self.tokens.labels(*values, "input"),
                self.tokens.labels(*values, "output"),
                self.cost.labels(*values),
                self.first_chunk.labels(*values),
                self.per_chunk.labels(*values),
            )
        return series

    @classmethod
    def make(cls, registry: CollectorRegistry, extra: Sequence[str]) -> Instruments:
        stream_labels = (*CALL_LABELS, *extra)
        labels = (*stream_labels, "status")
        return cls(
            Histogram(
                "gen_ai_client_operation_duration_seconds",
                "Duration of a model call (gen_ai.client.operation.duration)",
                labels,
                registry=registry,
                buckets=DURATION_BUCKETS,
            ),
            Histogram(
                "gen_ai_client_token_usage",
                "Tokens a model call used, by token_type input or output (gen_ai.client.token.usage)",
                (*stream_labels, "token_type"),
                registry=registry,
                buckets=TOKEN_BUCKETS,
            ),
            Counter(
                "threadline_requests",
                "Model calls, by status ok or error and the error's class",
                (*labels, "error"),
                registry=registry,
            ),
            Histogram(
                "gen_ai_client_operation_time_to_first_chunk_seconds",
                "Time from a streamed call to its first chunk (gen_ai.client.operation.time_to_first_chunk)",
                stream_labels,
                registry=registry,
                buckets=DURATION_BUCKETS,
            ),
            Histogram(
                "gen_ai_client_operation_time_per_output_chunk_seconds",
                "Time between the chunks of a streamed reply (gen_ai.client.operation.time_per_output_chunk)",
                stream_labels,
                registry=registry,
                buckets=DURATION_BUCKETS,
            ),
            Counter(
                "threadline_cost_usd",
                "What model calls cost in US dollars, by the plugin's price table (0 for a model it has no price for)",
                stream_labels,
                registry=registry,
            ),
            Gauge("threadline_sessions_active", "Sessions with a turn under way in this process", registry=registry),
            Histogram(
                "threadline_storage_operation_duration_seconds",
                "Duration of a storage operation, by backend and operation (append_messages, get_messages, ...)",
                ("backend", "operation"),
                registry=registry,
                buckets=STORAGE_BUCKETS,
            ),
        )


#: the instruments made in each registry, and the extra labels they were made with; a
#: registry of a manager with a port goes when its manager does
_MADE: weakref.WeakKeyDictionary[CollectorRegistry, tuple[tuple[str, ...], Instruments]] = weakref.WeakKeyDictionary()


def instruments(registry: CollectorRegistry | None, extra: Sequence[str]) -> Instruments:
    """The instruments in ``registry`` (``None``: the default one), made once: every
    manager of a process that counts into it must label alike."""
    registry = REGISTRY if registry is None else registry
    made = _MADE.get(registry)
    if made is None:
        made = _MADE[registry] = (tuple(extra), Instruments.make(registry, extra))
    elif made[0] != tuple(extra):
        raise ConfigError(
            f"labels {list(extra)} differ from {list(made[0])}, which another manager of this process "
            "counts into the same registry with; give both the same labels, or this one a port",
            key="middleware.metrics.labels",
        )
    return made[1]
