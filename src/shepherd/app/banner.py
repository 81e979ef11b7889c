"""What ``shepherd up`` and ``shepherd demo`` print once the fleet is up.

Every command in it works as printed from the directory ``up`` was started in: it is spelled the
way this process was invoked (``shepherd`` when that is what ``PATH`` finds, else the script's
path, such as ``.venv/bin/shepherd`` under ``make demo``, else ``python -m shepherd``), and client
commands find the control plane through its endpoint file (``endpoint.py``), so no URL, port or
token has to be typed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

DEMO_HINTS = (
    ("agents ls", "slots in use and backlog per agent"),
    ("executions ls", "echo succeeds, flaky fails now and then, slow takes ~75 s"),
    ("executions ls --status failed", "early-exit's child_exited_early, flaky's exit codes"),
    ('run echo "hi" --wait', "a run of your own, followed to its end"),
)
UP_HINTS = (
    ("agents ls", "slots in use and backlog per agent"),
    ("executions ls", "newest executions first"),
    ("run AGENT INPUT --wait", "a run, followed to its end"),
)


def cli_invocation(argv0: str | None = None, cwd: Path | None = None) -> str:
    """How a person in ``cwd`` calls this same ``shepherd``."""
    argv0 = argv0 if argv0 is not None else sys.argv[0]
    cwd = cwd or Path.cwd()
    script = Path(argv0)
    if script.name in ("__main__.py", "-m") or not script.name.startswith("shepherd"):
        return f"{shlex.quote(_shorten(Path(sys.executable), cwd))} -m shepherd"
    on_path = shutil.which("shepherd")
    if on_path and _same_file(Path(on_path), script):
        return "shepherd"
    return shlex.quote(_shorten(script, cwd))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _shorten(path: Path, cwd: Path) -> str:
    """``.venv/bin/shepherd`` inside the working directory, the absolute path elsewhere."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(cwd))
    except ValueError:
        return str(absolute)


def banner(
    *, agents: int, manifest: Path, url: str, data_dir: Path, token_path: Path, demo: bool,
    signin_link: str | None = None,
) -> str:
    cli = cli_invocation()
    lines = [
        f"Shepherd is up: {agents} agent(s) from {manifest}",
        f"  API        {url}/api   (OpenAPI: {url}/docs)",
        f"  dashboard  {url}/",
        *([f"             one-time sign-in: {signin_link}"] if signin_link else []),
        f"  token      {token_path}",
        f"  data dir   {data_dir}",
        "From this directory:",
    ]
    hints = DEMO_HINTS if demo else UP_HINTS
    width = max(len(f"{cli} {command}") for command, _ in hints) + 2
    lines += [f"  {f'{cli} {command}':<{width}} {why}" for command, why in hints]
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)
