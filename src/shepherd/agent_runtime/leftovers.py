"""Finding what an execution left outside its process group: processes that still hold its
output pipe after the child exited and its group was emptied.

Such a process left the group on purpose (``setsid``, a daemon): the runtime's authority ends at
the group, so it reports these processes on the result and never kills them, and it never waits
for them either. Only processes that still hold the output are found: one that also closed or
redirected its output holds nothing of the execution's, and is the host sentinel's to notice.

Guarantees: the scan runs only when the output did not reach end of file once the group was gone
(never on the ordinary path); it reads ``/proc/<pid>/fd`` links and ``comm`` names only — never
command lines or environments — and skips processes it may not read.
Must not: signal anything.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from shepherd.agent_client.protocol import Leftover

PROC = Path("/proc")
# Enough to name what was left; a fork bomb's worth of pids is not worth carrying in a result.
MAX_REPORTED = 20


def find_pipe_holders(inode: int, exclude: int | None = None) -> list[Leftover]:
    """Processes (other than ``exclude``) with an fd open on the pipe ``inode``, by pid."""
    target = f"pipe:[{inode}]"
    found: list[Leftover] = []
    for entry in _pids():
        if entry == exclude:
            continue
        if _holds(entry, target):
            found.append(Leftover(pid=entry, name=_name(entry)))
            if len(found) >= MAX_REPORTED:
                break
    return found


def _pids() -> list[int]:
    with contextlib.suppress(OSError):
        return sorted(int(name) for name in os.listdir(PROC) if name.isdigit())
    return []


def _holds(pid: int, target: str) -> bool:
    fd_dir = PROC / str(pid) / "fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:  # gone, or not ours to read
        return False
    for name in names:
        with contextlib.suppress(OSError):
            if os.readlink(fd_dir / name) == target:
                return True
    return False


def _name(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "?"
