"""The commands the plugin adds to ``threadline``: ``usage`` and ``grafana-dashboard``. This
module is imported whenever the CLI starts, so it holds only the command lines; what they
run is imported when they run."""

from __future__ import annotations

import importlib.resources
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import click

from threadline.plugin import examples_epilog, with_manager

if TYPE_CHECKING:
    from threadline import SessionManager

GROUPS = ("day", "provider", "model", "user")


class Day(click.ParamType[date]):
    """A day as ``YYYY-MM-DD``."""

    name = "day"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return datetime.strptime(str(value), "%Y-%m-%d").date()
        except ValueError:
            self.fail(f"{value!r} is not a day; give one as YYYY-MM-DD, such as 2026-12-01", param, ctx)


class Name(click.ParamType[str]):
    """A name that is not empty (an empty one would quietly mean the configured one, or nobody)."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not str(value).strip():
            self.fail("is empty; give a name, or leave the option out", param, ctx)
        return str(value)


@click.command(
    epilog=examples_epilog(
        "threadline usage",
        "threadline usage --since 2026-12-01 --until 2026-12-31 --by model",
        "threadline usage --user u1 --json",
    )
)
@click.option("--since", type=Day(), metavar="YYYY-MM-DD", help="From this day on (UTC).")
@click.option("--until", type=Day(), metavar="YYYY-MM-DD", help="Up to this day, included (UTC).")
@click.option("--user", "user_id", type=Name(), metavar="ID", help="Only this user's sessions.")
@click.option("--tenant", type=Name(), metavar="NAME", help="This tenant's sessions (default: the configured one).")
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
    since: date | None,
    until: date | None,
    user_id: str | None,
    tenant: str | None,
    by: tuple[str, ...],
    as_json: bool,
) -> None:
    """Tokens and cost of the model calls in the stored sessions, by day, provider, model
    and user. A reply's cost is what it stored (the metrics middleware stores it), else its
    tokens at the price table's prices (threadline-metrics' own, with
    [middleware.metrics.prices] over it); a model with no price costs 0 and is named on
    stderr. Replies cut off before the provider counted their tokens are left out."""
    if since and until and until < since:
        raise click.BadParameter(
            f"{until} is before --since {since}; give a day on or after it, or leave one out", param_hint="--until"
        )
    groups = tuple(group for group in GROUPS if group in by) or GROUPS
    from threadline_metrics.usage import print_report, report

    made = await report(manager, groups, since=since, until=until, user_id=user_id, tenant=tenant)
    if not made.rows and not as_json:
        who = f" of user {user_id!r}" if user_id is not None else ""
        click.echo(f"no model calls stored{who} in tenant {tenant or manager.tenant!r} for these days", err=True)
    print_report(made, as_json)
    for (provider, model), calls in sorted(made.unpriced.items()):
        click.echo(
            f"no price for {provider} model {model!r} ({calls} call{'s' if calls > 1 else ''}, counted as 0); "
            f"add it to [middleware.metrics.prices.{provider}] (with metrics in [middleware] chain)",
            err=True,
        )


@click.command("grafana-dashboard", epilog=examples_epilog("threadline grafana-dashboard > threadline.json"))
def grafana_dashboard() -> None:
    """Print the Grafana dashboard of threadline-metrics' metrics as JSON. Save it
    (`threadline grafana-dashboard > threadline.json`), then in Grafana: Dashboards, New,
    Import, upload it, and choose the Prometheus data source that scrapes /metrics."""
    click.echo(dashboard_json(), nl=False)


def dashboard_json() -> str:
    """The shipped ``grafana-dashboard.json``."""
    return importlib.resources.files(__package__).joinpath("grafana-dashboard.json").read_text("utf-8")
