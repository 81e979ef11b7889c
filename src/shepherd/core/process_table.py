"""A row of the host's process table as the sentinel reads it, and the command-line patterns.

The sentinel's collector fills ``ProcessRow`` values from an explicit list of attributes (never the
environment); everything that decides about them is pure and works on these rows. Identity is
``pid`` + ``create_time_ms``: a pid alone is reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProcessRow:
    pid: int
    create_time_ms: int  # when the process started (epoch ms): its age, and half its identity
    name: str
    argv: tuple[str, ...]  # empty for kernel threads and processes we may not read
    ppid: int | None = None
    pgid: int | None = None  # read only when a finished execution's group is looked for
    username: str | None = None
    cpu_s: float | None = None  # user + system CPU time; None when not readable
    zombie: bool = False

    @property
    def command_line(self) -> str:
        return " ".join(self.argv)


def matched_pattern(row: ProcessRow, patterns: Sequence[str]) -> str | None:
    """The first pattern found (as a plain substring) in the command line, or None.

    Only the command line counts: a process whose arguments we cannot read (another user's, a
    kernel thread) never matches on its name alone.
    """
    line = row.command_line
    if not line:
        return None
    return next((p for p in patterns if p and p in line), None)
