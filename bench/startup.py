"""Start-up time: `threadline --help` and `threadline plugins` against `python -c pass`,
side by side in one run. The target (issue 9) is at most 10x `python -c pass` with every
first-party plugin installed.

Run: python bench/startup.py [--runs 20]   (with threadline and its plugins installed in that python)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import click, pluggy and attrs": [sys.executable, "-c", "import attrs, click, pluggy, tomllib"],
    "python -c 'import threadline'": [sys.executable, "-c", "import threadline"],
    "threadline --help": [sys.executable, "-m", "threadline", "--help"],
    "threadline plugins": [sys.executable, "-m", "threadline", "plugins"],
    "threadline plugins, no cache": [sys.executable, "-m", "threadline", "plugins"],
}
#: the entry-point cache cannot be written here, so that run scans every distribution
NO_CACHE = {"threadline plugins, no cache": {"XDG_CACHE_HOME": os.devnull}}


def median_ms(command: list[str], runs: int, env: dict[str, str]) -> float:
    subprocess.run(command, check=True, capture_output=True, env=env)  # warm-up: writes the .pyc files
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    env = {**os.environ, "XDG_CONFIG_HOME": tempfile.mkdtemp(), "XDG_CACHE_HOME": tempfile.mkdtemp()}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure as installed: bytecode cached, as pip leaves it
    results = {
        name: median_ms(command, args.runs, {**env, **NO_CACHE.get(name, {})}) for name, command in COMMANDS.items()
    }
    baseline = results["python -c pass"]
    print(f"{'command':<32} {'median ms':>10} {'vs python':>10} {'added ms':>9}")
    for name, ms in results.items():
        print(f"{name:<32} {ms:>10.1f} {ms / baseline:>9.2f}x {ms - baseline:>9.1f}")
    worst = max(results["threadline --help"], results["threadline plugins"]) / baseline
    print(f"\nthe slower of --help and plugins: {worst:.2f}x python -c pass (target: at most 10x)")


if __name__ == "__main__":
    main()
