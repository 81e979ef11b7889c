"""CLI startup benchmark: how long a client command takes from exec to exit, as a user calls it.

Starts a ``shepherd up`` with one small agent in a temporary directory, queues a few executions,
then runs each command N times through the installed ``shepherd`` script and reports the median
and worst wall time and the CPU time (user + system) per call. For reference it also times an
import of the whole control plane, which is what every call used to pay. Prints the figures and
appends them to docs/benchmarks.md. Target: ``shepherd --help`` and ``shepherd executions ls``
under 0.3 s.

    python bench/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SHEPHERD = str(Path(sys.executable).parent / "shepherd")
MANIFEST = 'agents:\n  - name: echo\n    command: ["cat"]\n'
TARGET_S = 0.3
COMMANDS: dict[str, list[str]] = {
    "shepherd --help": [SHEPHERD, "--help"],
    "shepherd executions ls": [SHEPHERD, "executions", "ls"],
    "shepherd agents ls --json": [SHEPHERD, "agents", "ls", "--json"],
    "import of the control plane (reference)": [sys.executable, "-c", "import shepherd.app.up"],
}


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_up(workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    (workdir / "fleet.yaml").write_text(MANIFEST)
    process = subprocess.Popen([SHEPHERD, "up", "fleet.yaml"], cwd=workdir, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    for line in process.stdout:
        if "Shepherd is up" in line:
            return process
    raise SystemExit("shepherd up did not start")


def measure(
    argv: list[str], runs: int, cwd: Path, env: dict[str, str]
) -> tuple[float, float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        cpu0, t0 = children_cpu_s(), time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(children_cpu_s() - cpu0)
    return statistics.median(walls), max(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="shepherd-bench-cli-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")}
    env |= {"SHEPHERD_PORT": str(free_port()), "SHEPHERD_LOG_LEVEL": "WARNING"}
    up = start_up(workdir, env)
    try:
        for i in range(5):
            subprocess.run([SHEPHERD, "run", "echo", f"item {i}"], cwd=workdir, env=env,
                           check=True, capture_output=True)
        results = {name: measure(argv, args.runs, workdir, env) for name, argv in COMMANDS.items()}
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, args.runs)


def report(results: dict[str, tuple[float, float, float]], runs: int) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### cli startup — {stamp} — {platform.machine()}, {platform.python_version()}", "",
        f"`python bench/cli_startup.py --runs {runs}` — each command run {runs} times through "
        "the installed `shepherd` script against a live `shepherd up` (one agent, five "
        "executions).", "",
        "| command | median wall | worst wall | median CPU | target |",
        "|---|---|---|---|---|",
    ]
    for name, (median, worst, cpu) in results.items():
        target = "—" if "reference" in name else f"< {TARGET_S} s"
        lines.append(f"| `{name}` | {median:.3f} s | {worst:.3f} s | {cpu:.3f} s | {target} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with DOCS.open("a", encoding="utf-8") as docs:
        docs.write("\n" + text)


if __name__ == "__main__":
    main()
