"""Following an execution until it ends: a spinner for people, or its output as it is printed.

``follow_output`` polls ``/api/executions/{id}/output`` and prints only what is new. The API
answers a bounded tail, so when more was printed between two polls than the tail holds, the
overlap is lost: that is said in one line rather than printing the tail twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shepherd.cli.output import console
from shepherd.cli.remote import Remote

# What `shepherd run --wait` exits with, per final status.
EXIT_CODES = {"success": 0, "failed": 1, "cancelled": 3, "skipped": 3}
ACTIVE = ("queued", "running", "finalizing")
POLL_S = 0.5
SKIPPED = "\n[... output skipped: more was printed than the tail holds ...]\n"


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


def follow_output(remote: Remote, execution_id: str, write: Callable[[str], None]) -> None:
    """Print the execution's output as it grows, until the execution has ended."""
    shown = ""
    while True:
        view: dict[str, Any] = remote.get(f"/api/executions/{execution_id}/output")
        output = view["output"]
        if view["source"] != "none" or view["complete"]:
            fresh = new_text(shown, output)
            if fresh:
                write(fresh)
            shown = output if output else shown
        if view["complete"]:
            return
        time.sleep(POLL_S)


def new_text(shown: str, tail: str) -> str:
    """What ``tail`` (the latest tail of the output) adds to ``shown`` (the tail seen before).

    The tail is a sliding window, so what was shown continues in it from the longest suffix of
    ``shown`` that ``tail`` starts with.
    """
    if tail.startswith(shown):
        return tail[len(shown):]
    overlap = _overlap(shown, tail)
    if overlap == 0:
        return SKIPPED + tail
    return tail[overlap:]


def _overlap(old: str, new: str) -> int:
    """The length of the longest suffix of ``old`` that is a prefix of ``new`` (linear time)."""
    seq: list[str | None] = [*new, None, *old]
    prefix = [0] * len(seq)
    for i in range(1, len(seq)):
        k = prefix[i - 1]
        while k and seq[i] != seq[k]:
            k = prefix[k - 1]
        if seq[i] == seq[k] and seq[i] is not None:
            k += 1
        prefix[i] = k
    return prefix[-1]
