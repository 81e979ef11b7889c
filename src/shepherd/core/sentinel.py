"""The sentinel's decisions: which processes it watches, and the signal each one raises.

``watch`` picks, from one snapshot of the process table, the processes left behind by an
execution that already finished (``core.footprints``) and those whose command line matches a
configured pattern. ``build_signals`` turns each into exactly one signal keyed
``(source, "long_lived_process", "<pid>@<create_time_ms>")`` — so a reused pid is a new incident
— active when the process is older than the threshold (strictly). The signal carries the pid, the
age, the CPU time and the command line with anything that looks like a secret redacted
(``core.redaction``): it leaves the host. The alert engine decides what to send
(``sentinel_policy``: alert at once, re-alert after the cooldown, one recovery when it is gone).

Pure: no I/O, no clock (``now_ms`` is given).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from shepherd.core.alerting import AlertPolicy
from shepherd.core.footprints import Escape, Left, Trace
from shepherd.core.process_table import ProcessRow, matched_pattern
from shepherd.core.redaction import redact_argv
from shepherd.core.signals import Severity, Signal, SignalKey

KIND = "long_lived_process"
SEVERITY = Severity.MAJOR
# The summary carries a glimpse of the command; the forensic rows carry the rest.
SUMMARY_COMMAND_CHARS = 160
# A key part holds 100 characters; "sentinel:" takes nine of them.
SOURCE_HOST_CHARS = 90


class Finding(StrEnum):
    MATCHED = "matched"  # its command line matches a configured pattern
    LEFTOVER = "leftover"  # left behind by an execution that already finished


@dataclass(frozen=True, slots=True)
class Watched:
    row: ProcessRow
    finding: Finding
    pattern: str | None = None
    left: Left | None = None


@dataclass(frozen=True, slots=True)
class ProcessSignal:
    signal: Signal
    active: bool  # older than the threshold: the alert engine hears about it
    age_s: float


def sentinel_policy(cooldown_s: float) -> AlertPolicy:
    """Alert at once (the age threshold is the pending period), remind after the cooldown, and
    say once when the process is gone."""
    return AlertPolicy(pending_s=0.0, realert_s=cooldown_s, send_recovery=True)


def watch(
    rows: Sequence[ProcessRow], patterns: Sequence[str], trace: Trace,
    exclude: frozenset[int] = frozenset(),
) -> list[Watched]:
    """The processes worth a signal, in pid order: leftovers first in kind, then matches."""
    watched: list[Watched] = []
    for row in sorted(rows, key=lambda r: r.pid):
        if row.zombie or row.pid in exclude:
            continue
        pattern = matched_pattern(row, patterns)
        left = trace.left.get(row.pid)
        if left is not None:
            watched.append(Watched(row, Finding.LEFTOVER, pattern, left))
        elif pattern is not None:
            watched.append(Watched(row, Finding.MATCHED, pattern))
    return watched


def source_for(hostname: str) -> str:
    """``sentinel:<host>``: the alert source of one host's sentinel, in the key alphabet."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", hostname)[:SOURCE_HOST_CHARS].strip("-.") or "host"
    return f"sentinel:{host}"


def entity_of(row: ProcessRow) -> str:
    return f"{row.pid}@{row.create_time_ms}"


def build_signals(
    watched: Sequence[Watched], age_min_s: float, now_ms: int, source: str
) -> list[ProcessSignal]:
    """One signal per watched process; active when its age is strictly over ``age_min_s``."""
    built = []
    for item in watched:
        age_s = max(0.0, (now_ms - item.row.create_time_ms) / 1000)
        key = SignalKey(source, KIND, entity_of(item.row))
        command = redact_argv(item.row.argv)
        signal = Signal(key, SEVERITY, _summary(item, age_s, command),
                        _forensics(item, age_s, command), _runbook(item.row))
        built.append(ProcessSignal(signal, age_s > age_min_s, age_s))
    return built


def _summary(item: Watched, age_s: float, command: str) -> str:
    row = item.row
    glimpse = command if len(command) <= SUMMARY_COMMAND_CHARS else \
        command[: SUMMARY_COMMAND_CHARS - 1] + "…"
    if item.left is not None:
        what = f"left by finished execution {item.left.footprint.execution_id}"
    else:
        what = f"matching {item.pattern!r}"
    return f"process {row.pid} {what} alive for {duration(age_s)}: {glimpse or row.name}"


def _forensics(item: Watched, age_s: float, command: str) -> tuple[str, ...]:
    row = item.row
    cpu = f"{row.cpu_s:.1f} s" if row.cpu_s is not None else "unreadable"
    rows = [
        f"pid {row.pid} ({row.name}), parent {_or_unknown(row.ppid)}, "
        f"group {_or_unknown(row.pgid)}, user {row.username or 'unknown'}",
        f"age {duration(age_s)} ({age_s:.0f} s), started {_iso(row.create_time_ms)}",
        f"CPU time {cpu}",
        f"command: {command or '(unreadable)'}",
    ]
    if item.left is not None:
        rows.append(_provenance(item.left))
    if item.pattern is not None:
        rows.append(f"command line matches the pattern {item.pattern!r}")
    return tuple(rows)


def _provenance(left: Left) -> str:
    footprint = left.footprint
    how = ("still in its process group" if left.escape is Escape.GROUP
           else "escaped its process group (reported by the runtime)")
    ended = (f"finished {_iso(footprint.finished_at_ms)}" if footprint.finished_at_ms
             else "its child is gone")
    return (f"execution {footprint.execution_id} on runtime {footprint.runtime} "
            f"(child pid {footprint.pid}, {ended}): {how}")


def _runbook(row: ProcessRow) -> str:
    return (f"The sentinel only watches; it never signals a process. Look: `ps -o "
            f"pid,ppid,pgid,etime,time,args -p {row.pid}`. If nothing owns it, stop it: `kill "
            f"{row.pid}` (then `kill -9 {row.pid}`). If it is legitimately long, raise "
            f"SHEPHERD_SENTINEL_AGE_MIN_S or narrow SHEPHERD_SENTINEL_PATTERNS.")


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``: an age a person reads at a glance."""
    total = int(seconds)
    if total < 60:
        return f"{total} s"
    minutes, hours, days = total // 60, total // 3600, total // 86_400
    if hours == 0:
        return f"{minutes} min"
    if days == 0:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{days} d {hours % 24} h"


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _or_unknown(value: int | None) -> str:
    return str(value) if value is not None else "unknown"
