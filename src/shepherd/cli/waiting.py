"""Following an execution until it ends, with a spinner for people."""

from __future__ import annotations

import time
from typing import Any

from shepherd.cli.output import console
from shepherd.cli.remote import Remote

# What `shepherd run --wait` exits with, per final status.
EXIT_CODES = {"success": 0, "failed": 1, "cancelled": 3, "skipped": 3}
ACTIVE = ("queued", "running", "finalizing")
POLL_S = 0.5


def wait_for_execution(remote: Remote, execution_id: str, quiet: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = remote.get(f"/api/executions/{execution_id}")
    if quiet:
        while row["status"] in ACTIVE:
            time.sleep(POLL_S)
            row = remote.get(f"/api/executions/{execution_id}")
        return row
    with console.status(f"{execution_id}: {row['status']}") as spinner:
        while row["status"] in ACTIVE:
            time.sleep(POLL_S)
            row = remote.get(f"/api/executions/{execution_id}")
            spinner.update(f"{execution_id}: {row['status']}")
    return row
