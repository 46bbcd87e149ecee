"""threadline-metrics: Prometheus metrics, OpenTelemetry spans and the cost of every model call.

This module only registers the middleware ``metrics``, the hooks that serve its ``/metrics``
and the ``threadline usage`` command; the instruments are in
:mod:`threadline_metrics.instruments`, the timing in :mod:`threadline_metrics.middleware`,
the spans in :mod:`threadline_metrics.spans`, the prices in :mod:`threadline_metrics.prices`.
``prometheus_client`` and ``opentelemetry`` are imported only when a manager makes the
middleware: discovering plugins stays light.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, cast

import attrs
from attrs import field, frozen

from threadline.plugin import hookimpl
from threadline_metrics.prices import Price

if TYPE_CHECKING:
    import click

    from threadline import SessionManager
    from threadline.plugin import Register
    from threadline_metrics.middleware import MetricsMiddleware

__all__ = ["MetricsConfig", "Price", "make_middleware"]

Label = Literal["tenant", "user_id"]
log = logging.getLogger("threadline_metrics")


def _each_once(_instance: object, _attribute: object, labels: tuple[str, ...]) -> None:
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels names a label twice: {list(labels)}; name each once")


def _with_prometheus(instance: MetricsConfig, _attribute: object, port: int | None) -> None:
    if port is not None and not instance.prometheus:
        raise ValueError("port serves the Prometheus metrics, which prometheus = false turns off; set one")


def _with_otel(instance: MetricsConfig, _attribute: object, capture: bool) -> None:
    if capture and not instance.otel:
        raise ValueError("capture_content records messages on the spans, which need otel = true; set both")


def _named_models(_instance: object, _attribute: object, prices: dict[str, dict[str, Price]]) -> None:
    for provider, models in prices.items():
        if "" in models:
            raise ValueError(f'prices.{provider} has a model named ""; name the model, or "*" for all of them')


@frozen
class MetricsConfig:
    """``[middleware.metrics]``.

    :param prometheus: record the Prometheus metrics (``false``: only the spans, with
        ``otel``, and each reply's cost).
    :param port: serve ``/metrics`` on ``127.0.0.1:<port>`` from a background thread, with
        this middleware's own registry; unset, the metrics go into ``prometheus_client``'s
        default registry, which the host application serves. When the port is taken (by
        another process on the same config), a warning says so and this manager's metrics
        are not served.
    :param labels: ``"tenant"``, ``"user_id"``: label each call's metrics by its session's
        tenant or user too (off by default: one series per user can be many).
    :param otel: also make OpenTelemetry spans (of each turn, model call and tool run, with
        the GenAI semantic conventions' names and attributes), through the global tracer
        provider, so that the application's exporter receives them.
    :param capture_content: with ``otel``, record the messages too (what each call sent and
        got, tool arguments and results) on the spans. Off by default: they may hold what
        must not leave the application.
    :param prices: prices by provider and model (US dollars per million tokens), added to the
        shipped table or replacing its rows: ``{"openai": {"gpt-x": Price(1.0, 4.0)}}``.
    """

    prometheus: bool = True
    port: int | None = field(
        default=None,
        validator=attrs.validators.optional([attrs.validators.ge(1), attrs.validators.le(65535), _with_prometheus]),
    )
    labels: tuple[Label, ...] = field(default=(), converter=tuple, validator=_each_once)
    otel: bool = False
    capture_content: bool = field(default=False, validator=_with_otel)
    prices: dict[str, dict[str, Price]] = field(factory=dict, validator=_named_models)


def make_middleware(config: MetricsConfig) -> MetricsMiddleware:
    from threadline_metrics.middleware import MetricsMiddleware

    return MetricsMiddleware(config)


@hookimpl
def threadline_register_middleware(register: Register) -> None:
    register("metrics", make_middleware, config=MetricsConfig)


@hookimpl
def threadline_startup(manager: SessionManager) -> None:
    """Serve the ``/metrics`` of the manager's ``metrics`` middleware that has a port, and
    warn of prices for providers no plugin registers (a misspelt name prices nothing)."""
    if (layer := _layer(manager)) is not None:
        layer.serve()
        layer.learn_default_models(manager)
        for provider in sorted(set(layer.config.prices) - set(manager.registry.providers)):
            log.warning(
                "[middleware.metrics.prices.%s]: no provider is called %r (installed: %s); its prices price nothing",
                provider,
                provider,
                ", ".join(sorted(manager.registry.providers)),
            )


@hookimpl
async def threadline_shutdown(manager: SessionManager) -> None:
    if (layer := _layer(manager)) is not None:
        import asyncio  # here: discovering plugins imports no more than it must

        await asyncio.to_thread(layer.stop_serving)  # it waits for the server thread's next poll


@hookimpl
def threadline_register_commands(cli: click.Group) -> None:
    from threadline_metrics.commands import grafana_dashboard, usage

    cli.add_command(usage)
    cli.add_command(grafana_dashboard)


def _layer(manager: SessionManager) -> MetricsMiddleware | None:
    """The manager's ``metrics`` middleware, if its chain names it."""
    return cast("MetricsMiddleware | None", manager.middleware.get("metrics"))
