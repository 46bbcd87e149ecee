"""threadline-metrics with the openai plugin on its fake API and the sqlite storage: calls
counted, timed and priced from the usage the API reported, the cost stored with each reply,
storage operations timed by backend; then ``threadline usage`` reads the same costs back
from the file, and prices replies stored without the middleware too."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import threadline
from threadline.testing import Reply
from threadline_metrics.prices import shipped
from threadline_openai.testing import FakeOpenAI

MODEL = "gpt-4.1-mini-2025-04-14"  # a dated snapshot, priced as gpt-4.1-mini
MINI = shipped().prices["openai"]["gpt-4.1-mini"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(path: Path, api: FakeOpenAI, database: Path, metrics_port: int | None) -> Path:
    text = (
        f'[storage]\nbackend = "sqlite"\npath = "{database}"\n'
        f'[providers.openai]\napi_key = "sk-test"\nbase_url = "{api.url}"\nmax_retries = 0\n'
    )
    if metrics_port is not None:
        text += f'[middleware]\nchain = ["metrics"]\n[middleware.metrics]\nport = {metrics_port}\n'
    path.write_text(text)
    return path


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


async def usage_command(config: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config.parent), "XDG_DATA_HOME": str(config.parent)}
    env.pop("THREADLINE_PLUGINS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "threadline", "--config", str(config), "usage", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_openai_calls_are_counted_priced_stored_and_reported(tmp_path: Path) -> None:
    port, database = free_port(), tmp_path / "chats.db"
    async with FakeOpenAI() as api:
        api.script([Reply(text="one two three"), Reply(text="four five"), Reply(text="six seven eight nine")])
        config = write_config(tmp_path / "metered.toml", api, database, port)
        async with threadline.SessionManager.from_config(config) as manager:
            session = await manager.create_session(provider="openai", model=MODEL, user_id="ann")
            await session.send("hello")
            await session.send("again")
            async for _ in session.stream("and a stream"):
                pass
            replies = [m for m in await session.history() if m.role is threadline.Role.ASSISTANT]
            samples = await asyncio.to_thread(scrape, port)
        unmetered = write_config(tmp_path / "plain.toml", api, database, None)
        async with threadline.SessionManager.from_config(unmetered) as manager:
            later = await manager.create_session(provider="openai", model=MODEL, user_id="bob")
            unpriced = await later.send("no middleware here")

    usages = [reply.usage for reply in replies if reply.usage is not None]
    assert len(usages) == 3 and all(u.input_tokens > 0 and u.output_tokens > 0 for u in usages)
    assert [u.cost for u in usages] == pytest.approx([MINI.cost(u) for u in usages])  # stored with each reply
    labels = {"provider": "openai", "model": MODEL}
    assert total(samples, "threadline_requests_total", **labels, status="ok") == 3
    assert total(samples, "gen_ai_client_token_usage_sum", **labels, token_type="output") == sum(
        u.output_tokens for u in usages
    )
    assert total(samples, "threadline_cost_usd_total", **labels) == pytest.approx(sum(MINI.cost(u) for u in usages))
    assert total(samples, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **labels) == 1
    sqlite = "threadline_storage_operation_duration_seconds_count"
    assert total(samples, sqlite, backend="sqlite", operation="append_messages") == 6

    assert unpriced.usage is not None and unpriced.usage.cost is None  # stored without a cost
    code, out, err = await usage_command(config, "--by", "user", "--json")
    assert code == 0, err
    rows = {row["user"]: row for row in map(json.loads, out.splitlines())}
    assert rows["ann"]["calls"] == 3 and rows["ann"]["cost_usd"] == pytest.approx(sum(MINI.cost(u) for u in usages))
    assert rows["bob"]["calls"] == 1 and rows["bob"]["cost_usd"] == pytest.approx(MINI.cost(unpriced.usage))

    code, out, _ = await usage_command(config, "--by", "model")
    lines = out.splitlines()
    assert lines[0].split() == ["model", "calls", "input", "output", "cached", "cost_usd"]
    assert lines[1].split()[:2] == [MODEL, "4"] and lines[-1].split()[:2] == ["total", "4"]


async def test_a_bad_date_range_is_a_clear_error(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        config = write_config(tmp_path / "threadline.toml", api, tmp_path / "chats.db", None)
        code, out, err = await usage_command(config, "--since", "2026-12-02", "--until", "2026-12-01")
        assert code == 2 and out == ""
        assert "Invalid value for --until: 2026-12-01 is before --since 2026-12-02; give a day on or after it" in err
        assert "Traceback" not in err
        code, _, err = await usage_command(config, "--since", "2026-13-01")
        assert code == 2 and "'2026-13-01' is not a day; give one as YYYY-MM-DD, such as 2026-12-01" in err
        code, _, err = await usage_command(config, "--tenant", "")
        assert code == 2 and "Invalid value for '--tenant': is empty; give a name, or leave the option out" in err
        code, out, err = await usage_command(config, "--user", "nobody")
        assert code == 0 and out == ""
        assert "no model calls stored of user 'nobody' in tenant 'default' for these days" in err
