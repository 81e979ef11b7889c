"""Client commands load only what they use: no server framework, ORM or migration tool, so a
``shepherd`` call starts fast (figures in docs/benchmarks.md, from bench/cli_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_ONLY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "redis", "asyncpg",
               "aiosqlite", "pydantic_settings", "prometheus_client")
PROBE = """
import json, sys
from shepherd.app import main
main(sys.argv[1:])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("executions", "ls", "--url", "http://127.0.0.1:9"),
        ("agents", "ls", "--url", "http://127.0.0.1:9", "--json"),
        ("run", "echo", "hi", "--url", "http://127.0.0.1:9"),
        ("executions", "--help"),
    ],
)
def test_a_client_command_imports_no_server_library(args: tuple[str, ...]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert loaded.isdisjoint(SERVER_ONLY), sorted(loaded & set(SERVER_ONLY))
