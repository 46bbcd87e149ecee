"""The Grafana dashboard shipped with the plugin: every query names only metrics the plugin
exports (read from a registry after a run that makes each of them), and it has the panels
the README promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
from scraping import config, scrape

import threadline
from threadline.testing import Reply, ScriptedToolCall
from threadline_metrics.commands import dashboard_json


def metric_names(query: str) -> set[str]:
    """The metric names of a PromQL query: its names that are not functions, labels or ranges."""
    query = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", query)  # label matchers, ranges
    query = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", query)  # the labels grouped by
    return set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", query))


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


async def exported(port: int) -> set[str]:
    """The names of every sample ``/metrics`` serves after a turn with a tool run and a stream."""

    @threadline.tool
    def noop() -> str:
        """Does nothing."""
        return "ok"

    async with threadline.SessionManager(config(port=port), tools=[noop]) as manager:
        session = await manager.create_session(provider="echo", tools=["noop"])
        manager.provider("echo").script([Reply(tool_calls=(ScriptedToolCall("noop", {}),))])  # type: ignore[attr-defined]
        await session.send("go")
        async for _ in session.stream("stream"):
            pass
        return {name for name, _ in await scrape(port)}


async def test_every_query_names_a_metric_the_plugin_exports(port: int) -> None:
    named = [metric_names(query) for query in queries(json.loads(dashboard_json()))]
    assert all(named)  # each query names a metric
    assert set().union(*named) <= await exported(port)
    assert metric_names('sum by (le) (rate(a_bucket{x="y"}[5m])) / sum(b_total)') == {"a_bucket", "b_total"}


def test_it_has_the_panels_the_readme_promises_on_a_chosen_prometheus() -> None:
    dashboard = json.loads(dashboard_json())
    titles = [panel["title"] for panel in dashboard["panels"]]
    for promised in ("Requests", "Errors", "Latency p50 / p95", "Time to first chunk p50 / p95", "Tokens"):
        assert promised in titles
    assert any(title.startswith("Cost") for title in titles)
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {"${datasource}"}
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "datasource" and variable["query"] == "prometheus"


def test_the_command_prints_it() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "threadline", "grafana-dashboard"], capture_output=True, text=True, check=True
    )
    assert json.loads(run.stdout) == json.loads(dashboard_json())


@pytest.mark.parametrize("command", ["usage", "grafana-dashboard"])
def test_each_command_of_the_plugin_ends_its_help_with_examples(command: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "threadline", command, "--help"], capture_output=True, text=True, check=True
    )
    examples = run.stdout.split("Examples:\n", 1)[1].splitlines()
    assert examples and all(line.strip().startswith(f"threadline {command}") for line in examples if line.strip())
