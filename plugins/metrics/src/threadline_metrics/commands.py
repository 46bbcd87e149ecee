"""The commands the plugin adds to ``threadline``: ``usage`` and ``grafana-dashboard``. This
module is imported whenever the CLI starts, so it holds only the command lines; what they
run is imported when they run."""

from __future__ import annotations

import importlib.resources
from datetime import datetime
from typing import TYPE_CHECKING

import click

from threadline.plugin import with_manager

if TYPE_CHECKING:
    from threadline import SessionManager

GROUPS = ("day", "provider", "model", "user")


@click.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="From this day on (UTC).")
@click.option(
    "--until", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="Up to this day, included (UTC)."
)
@click.option("--user", "user_id", metavar="ID", help="Only this user's sessions.")
@click.option("--tenant", metavar="NAME", help="This tenant's sessions (default: the configured one).")
@click.option(
    "--by",
    type=click.Choice(GROUPS),
    multiple=True,
    help="Group by these (repeat the option); default: day, provider, model and user.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@with_manager
async def usage(
    manager: SessionManager,
    since: datetime | None,
    until: datetime | None,
    user_id: str | None,
    tenant: str | None,
    by: tuple[str, ...],
    as_json: bool,
) -> None:
    """Tokens and cost of the model calls in the stored sessions, by day, provider, model
    and user. A reply's cost is what it stored (the metrics middleware stores it), else its
    tokens at the price table's prices (threadline-metrics' own, with
    [middleware.metrics.prices] over it); a model with no price costs 0 and is named on
    stderr."""
    if since and until and until < since:
        raise click.BadParameter(f"{until:%Y-%m-%d} is before --since {since:%Y-%m-%d}", param_hint="--until")
    groups = tuple(group for group in GROUPS if group in by) or GROUPS
    first, last = (when.date() if when else None for when in (since, until))
    from threadline_metrics.usage import print_report, report

    made = await report(manager, groups, since=first, until=last, user_id=user_id, tenant=tenant)
    print_report(made, as_json)
    for (provider, model), calls in sorted(made.unpriced.items()):
        click.echo(
            f"no price for {provider} model {model!r} ({calls} calls, counted as 0); "
            f"add it to [middleware.metrics.prices.{provider}]",
            err=True,
        )


@click.command("grafana-dashboard")
def grafana_dashboard() -> None:
    """Print the Grafana dashboard of threadline-metrics' metrics as JSON. Save it
    (`threadline grafana-dashboard > threadline.json`), then in Grafana: Dashboards, New,
    Import, upload it, and choose the Prometheus data source that scrapes /metrics."""
    click.echo(dashboard_json(), nl=False)


def dashboard_json() -> str:
    """The shipped ``grafana-dashboard.json``."""
    return importlib.resources.files(__package__).joinpath("grafana-dashboard.json").read_text("utf-8")
