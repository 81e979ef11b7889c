"""Footprints: what the sentinel remembers of a local runtime's executions, and which live
processes an execution that already finished left behind.

A runtime runs each child as the leader of its own process group (pgid = the child's pid) and, at
the child's exit, empties that group; what escaped the group while still holding the output it
reports as ``leftovers`` (pid and name). Its records are forgotten once the control plane acks a
result, usually within a second, so the sentinel keeps its own memory of every execution it saw
(``merge_footprints``) until nothing of it is alive (``keep_footprints``).

An execution counts as finished when its record says so, when its record vanished (acked), or
when its child is gone (pid and create time no longer match: the runtime died, its child exited,
and nobody settled the record). Of a finished execution, ``trace_leftovers`` finds:

- **group members**: processes still in its process group, started after the execution began,
  unless the group id now belongs to another process (a live leader with another create time);
- **escaped leftovers**: the processes the runtime reported, still alive with the same name and
  a create time inside the run.

Pure: no I/O, no clock. Process identity is pid + create time throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from shepherd.core.process_table import ProcessRow

# psutil's create times are floats; two readings of the same process agree to well within 10 ms.
SAME_PROCESS_MS = 10
# A leftover's create time is compared to the run's start and end, both taken by the runtime a
# little apart from the fork itself.
RUN_WINDOW_SLACK_MS = 1_000
# The kernel keeps 15 characters of a process name; psutil may show the full one.
COMM_CHARS = 15
# Finished executions remembered at most: the oldest are forgotten first beyond this.
MAX_FOOTPRINTS = 5_000


class Escape(StrEnum):
    GROUP = "group"  # still in the execution's process group
    ESCAPED = "escaped"  # left the group; reported by the runtime as a leftover


@dataclass(frozen=True, slots=True)
class Footprint:
    execution_id: str
    runtime: str  # the runtime's data dir name, for the reader of an alert
    pid: int  # the child's pid, also its process group id
    pid_create_ms: int | None
    started_at_ms: int | None
    finished_at_ms: int | None = None  # None: running, as far as its record says
    leftovers: tuple[tuple[int, str], ...] = ()  # (pid, name) the runtime reported

    @property
    def finished(self) -> bool:
        return self.finished_at_ms is not None


@dataclass(frozen=True, slots=True)
class Left:
    """One live process an execution that finished left behind."""

    footprint: Footprint
    escape: Escape


@dataclass(frozen=True, slots=True)
class Trace:
    left: Mapping[int, Left]  # by pid
    live: frozenset[str]  # executions with a live process: a running child or a leftover


def merge_footprints(
    remembered: Mapping[str, Footprint], records: Iterable[Footprint], now_ms: int
) -> dict[str, Footprint]:
    """Records read now win; a remembered execution whose record vanished unfinished was acked
    (or its runtime's data dir removed): finished now."""
    merged = dict(remembered)
    seen = set()
    for record in records:
        merged[record.execution_id] = record
        seen.add(record.execution_id)
    for execution_id, footprint in merged.items():
        if execution_id not in seen and not footprint.finished:
            merged[execution_id] = replace(footprint, finished_at_ms=now_ms)
    return merged


def trace_leftovers(rows: Sequence[ProcessRow], footprints: Mapping[str, Footprint]) -> Trace:
    by_pid = {row.pid: row for row in rows}
    live: set[str] = set()
    over: list[Footprint] = []
    for footprint in footprints.values():
        if _child_alive(footprint, by_pid.get(footprint.pid)):
            live.add(footprint.execution_id)
        else:
            over.append(footprint)
    groups = {f.pid: f for f in over if _group_still_theirs(f, by_pid.get(f.pid))}
    escaped = {pid: (f, name) for f in over for pid, name in f.leftovers}
    left: dict[int, Left] = {}
    for row in rows:
        found = _left_by(row, groups, escaped)
        if found is not None:
            left[row.pid] = found
            live.add(found.footprint.execution_id)
    return Trace(left, frozenset(live))


def keep_footprints(
    footprints: Mapping[str, Footprint], live: frozenset[str], recorded: frozenset[str],
    cap: int = MAX_FOOTPRINTS,
) -> dict[str, Footprint]:
    """What to remember: executions still on record, and those with a live process; beyond
    ``cap``, the ones that finished longest ago are dropped."""
    kept = {k: f for k, f in footprints.items() if k in recorded or k in live}
    if len(kept) <= cap:
        return kept
    newest = sorted(kept.values(), key=lambda f: f.finished_at_ms or 2**62, reverse=True)
    return {f.execution_id: f for f in newest[:cap]}


def _child_alive(footprint: Footprint, row: ProcessRow | None) -> bool:
    if footprint.finished or row is None or row.zombie:
        return False
    return footprint.pid_create_ms is None or _same_start(row, footprint.pid_create_ms)


def _group_still_theirs(footprint: Footprint, leader: ProcessRow | None) -> bool:
    """The group id is the child's pid: a live process holding that pid with another create
    time means the number was reused, and the group is someone else's."""
    if leader is None or footprint.pid_create_ms is None:
        return True
    return _same_start(leader, footprint.pid_create_ms)


def _left_by(
    row: ProcessRow, groups: Mapping[int, Footprint],
    escaped: Mapping[int, tuple[Footprint, str]],
) -> Left | None:
    if row.zombie:
        return None
    footprint = groups.get(row.pgid) if row.pgid is not None else None
    if footprint is not None and row.pid != footprint.pid and _after_start(row, footprint):
        return Left(footprint, Escape.GROUP)
    reported = escaped.get(row.pid)
    if reported is not None:
        footprint, name = reported
        inside = _after_start(row, footprint) and _before_end(row, footprint)
        if inside and _same_name(row.name, name):
            return Left(footprint, Escape.ESCAPED)
    return None


def _same_name(seen: str, reported: str) -> bool:
    return seen == reported or (len(reported) >= COMM_CHARS and seen.startswith(reported))


def _same_start(row: ProcessRow, create_ms: int) -> bool:
    return abs(row.create_time_ms - create_ms) <= SAME_PROCESS_MS


def _after_start(row: ProcessRow, footprint: Footprint) -> bool:
    start = footprint.pid_create_ms or footprint.started_at_ms
    return start is None or row.create_time_ms >= start - RUN_WINDOW_SLACK_MS


def _before_end(row: ProcessRow, footprint: Footprint) -> bool:
    end = footprint.finished_at_ms
    return end is None or row.create_time_ms <= end + RUN_WINDOW_SLACK_MS
