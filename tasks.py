"""One-command set-up for threadline: `python tasks.py chat` or `python tasks.py test`.

Needs only Python 3.11+ and pip. Creates .venv/ in this folder on first use, installs what
the command needs into it, then runs the command. Run `python tasks.py --help` for more.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
TOOLS = ["uv>=0.4", "tox>=4.20", "tox-uv>=1.11"]
#: what builds the documentation site, as in tox.ini's docs env (ruff lays out the API reference's signatures)
DOCS_TOOLS = ["mkdocs>=1.6", "mkdocstrings[python]>=1.0", "mkdocstrings-python>=2.0", "ruff>=0.6"]
MUTATED = ["core", "plugins/sqlite"]  # each names what to mutate in [tool.mutmut] of its pyproject.toml


def run(*command: str | os.PathLike[str]) -> None:
    result = subprocess.run([str(part) for part in command], cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if not (BIN / "python").exists():
        print(f"creating {VENV} ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip", *TOOLS)


def packages() -> list[str]:
    """The kernel and every plugin in this checkout, installed editable."""
    plugins = sorted(str(p.parent) for p in (ROOT / "plugins").glob("*/pyproject.toml"))
    return ["-e", str(ROOT / "core"), *(arg for path in plugins for arg in ("-e", path))]


def install() -> None:
    ensure_venv()
    run(BIN / "uv", "pip", "install", "--quiet", "--python", BIN / "python", *packages())


# Processes the tests start import the mutants too (PYTHONPATH), but mutmut's coverage pass can
# neither hear from them nor find its config from their working directory: there they run unmutated.
NO_STATS_IN_CHILDREN = """import os
if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
"""


def mutate(rest: list[str]) -> None:
    """Mutation-test each package in MUTATED from scratch, side by side, then print each module's score."""
    ensure_venv()
    tested = [arg for name in MUTATED for arg in ("-e", f"{ROOT / name}[test]")]
    run(BIN / "uv", "pip", "install", "--quiet", "--python", BIN / "python", "mutmut>=3.8,<4", *tested)
    runs = [start_mutmut(ROOT / name, rest) for name in MUTATED]
    seen: dict[tuple[int, str], tuple[int, float]] = {}
    while any(process.poll() is None for process in runs):
        stop_hung_mutants(seen)
        time.sleep(10)
    if any(process.returncode for process in runs):
        sys.exit("mutmut failed: see its output above")
    print_scores()


# mutmut stops a mutant's tests after a CPU-time limit, which a deadlocked test (a write that
# never completes) never reaches: it sleeps for ever. A worker whose processes have used no CPU
# for this many seconds is deadlocked (no test idles that long):
IDLE_AFTER = 30


def stop_hung_mutants(seen: dict[tuple[int, str], tuple[int, float]]) -> None:
    """Kill mutmut's workers (titled ``mutmut: <mutant>``), and what they started, once they have
    used no CPU for IDLE_AFTER seconds: their tests did not pass, which mutmut counts as the mutant
    caught. ``seen`` maps each worker (pid and start time) to its CPU seconds and when they last grew."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,times=,lstart=,args="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    cpu_seconds: dict[int, int] = {}
    workers = []
    for line in rows.splitlines():
        number, parent, seconds, *started, title = line.split(maxsplit=8)
        children.setdefault(int(parent), []).append(int(number))
        cpu_seconds[int(number)] = int(seconds)
        if title.startswith("mutmut: "):
            workers.append((int(number), " ".join(started)))  # with its start time: a pid may be reused

    def tree(pid: int) -> list[int]:
        return [pid, *(descendant for child in children.get(pid, []) for descendant in tree(child))]

    now = time.monotonic()
    for worker in workers:
        used = sum(cpu_seconds.get(pid, 0) for pid in tree(worker[0]))
        last_used, since = seen.get(worker, (-1, now))
        seen[worker] = (used, since if used == last_used else now)
        if now - seen[worker][1] > IDLE_AFTER:
            for pid in tree(worker[0]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def print_scores() -> None:
    """Each mutated module's score, from the verdicts mutmut keeps in each package's mutants/."""
    scores: dict[str, Counter[str]] = {}
    for package in (ROOT / name for name in MUTATED):
        results = subprocess.run(
            [BIN / "mutmut", "results", "--all", "true"], cwd=package, capture_output=True, text=True, check=True
        )
        for line in results.stdout.splitlines():  # "    threadline.model.x_load__mutmut_3: survived"
            name, _, status = line.strip().rpartition(": ")
            scores.setdefault(name.rsplit(".", 1)[0], Counter())[status] += 1
    for module, counts in [*sorted(scores.items()), ("overall", sum(scores.values(), Counter()))]:
        caught = sum(counts[status] for status in CAUGHT)
        others = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()) if status != "killed")
        score = 100 * caught / max(counts.total(), 1)
        print(f"{module:40} {caught:5}/{counts.total():<5} caught {score:5.1f}%  {others}")


# A mutant is caught when its tests did not pass: one failed (killed), ran out of CPU time
# (timeout), or hung and was killed by stop_hung_mutants (which mutmut reports as a segfault).
CAUGHT = ("killed", "timeout", "segfault")


def mutate_rest(package: Path, tests: list[str]) -> None:
    """Check the mutants of ``package`` that a stopped ``mutmut run`` left unchecked, each
    against ``tests`` only (quicker than every test that reaches it, so a survivor here may
    be one the whole suite catches: the score is a lower bound), two at a time, with the
    package's current tests; write each verdict where mutmut keeps its own, then print the
    scores. A mutant's tests that stop using CPU (REST_IDLE_AFTER) hung: caught."""
    shutil.copytree(package / "tests", package / "mutants" / "tests", dirs_exist_ok=True)
    metas = sorted((package / "mutants" / "src").rglob("*.py.meta"))
    verdicts = {path: json.loads(path.read_text()) for path in metas}
    todo = [(path, name) for path, data in verdicts.items() for name, code in data["exit_code_by_key"].items()]
    todo = [(path, name) for path, name in todo if verdicts[path]["exit_code_by_key"][name] is None]
    env = {**os.environ, "PYTHONPATH": str(package / "mutants" / "src")}

    def check(name: str) -> int:
        command = [str(BIN / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--rootdir=.", *tests]
        process = subprocess.Popen(
            command, cwd=package / "mutants", env={**env, "MUTANT_UNDER_TEST": name},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        started = since = time.monotonic()
        used = 0.0
        while process.poll() is None:
            time.sleep(1)
            if (now_used := _cpu_seconds(process.pid)) - used >= 0.1:  # working (a hung loop's timers use less)
                used, since = now_used, time.monotonic()
            if time.monotonic() - since > REST_IDLE_AFTER or time.monotonic() - started > 600:
                process.kill()  # hung: mutmut's verdict for that is "segfault", caught
        return process.wait()

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for done, ((path, name), code) in enumerate(zip(todo, pool.map(check, (n for _, n in todo)), strict=True), 1):
            verdicts[path]["exit_code_by_key"][name] = code
            path.write_text(json.dumps(verdicts[path]))
            print(f"{done}/{len(todo)} {name}: {'survived' if code == 0 else 'caught'}", flush=True)
    print_scores()


REST_IDLE_AFTER = 15  # seconds with under 0.1 s of CPU: a hung run (none of the tests given idles so long)


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by process ``pid`` and the processes it started, those still
    running and those it waited for (Linux's /proc): a test's subprocess works for it."""
    children: dict[int, list[int]] = {}
    used: dict[int, int] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        number = int(stat_file.parent.name)
        children.setdefault(int(fields[1]), []).append(number)
        used[number] = sum(int(ticks) for ticks in fields[11:15])  # utime, stime, cutime, cstime

    def tree(number: int) -> int:
        return used.get(number, 0) + sum(tree(child) for child in children.get(number, []))

    return tree(pid) / os.sysconf("SC_CLK_TCK")


def start_mutmut(package: Path, rest: list[str]) -> subprocess.Popen[bytes]:
    shutil.rmtree(package / "mutants", ignore_errors=True)  # cached verdicts would outlive changed tests
    # mutmut puts mutants/src first on its own sys.path; PYTHONPATH does it for the processes tests start.
    # The folder must exist before Python starts, or Python skips it for good.
    (package / "mutants" / "src").mkdir(parents=True)
    (package / "mutants" / "src" / "sitecustomize.py").write_text(NO_STATS_IN_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(package / "mutants" / "src")}
    return subprocess.Popen([BIN / "mutmut", "run", *rest], cwd=package, env=env)


def docs(rest: list[str]) -> None:
    """Run mkdocs from .venv/ on this checkout's site: `serve` unless other arguments are given."""
    ensure_venv()
    run(BIN / "uv", "pip", "install", "--quiet", "--python", BIN / "python", *DOCS_TOOLS)
    os.chdir(ROOT)
    os.execv(BIN / "mkdocs", [str(BIN / "mkdocs"), *(rest or ["serve"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(  # no -h of its own: `chat --help` is `threadline chat --help`
        "chat", add_help=False, help="chat in the terminal (extra arguments, --help too, go to `threadline chat`)"
    )
    commands.add_parser(
        "test", help="run every test env: each package alone, lint, types, docs (extra arguments go to tox)"
    )
    commands.add_parser("install", help="install threadline and its plugins into .venv/ (editable)")
    commands.add_parser(
        "docs",
        help="serve the documentation site at http://127.0.0.1:8000 with mkdocs from .venv/ "
        "(extra arguments go to mkdocs instead, e.g. build --strict)",
    )
    commands.add_parser(
        "mutate",
        help="mutation-test the kernel and the SQLite plugin with mutmut and print each module's score; "
        "slow, not run in CI (extra arguments go to `mutmut run`, e.g. --max-children 1)",
    )
    commands.add_parser(
        "mutate-rest",
        help="after a stopped `mutate`: check what it left unchecked in one package against the tests given, "
        "e.g. `mutate-rest plugins/sqlite tests/test_contract.py` (a lower bound: see tasks.py)",
    )
    args, rest = parser.parse_known_args()
    if args.command == "test":
        ensure_venv()
        run(BIN / "tox", "run", "--recreate", *rest)  # envs install the packages by path: rebuild them
    elif args.command == "mutate":
        mutate(rest)
    elif args.command == "mutate-rest":
        mutate_rest(ROOT / rest[0], rest[1:])
    elif args.command == "docs":
        docs(rest)
    else:
        install()
        if args.command == "chat":
            os.execv(BIN / "threadline", [str(BIN / "threadline"), "chat", *rest])


if __name__ == "__main__":
    main()
