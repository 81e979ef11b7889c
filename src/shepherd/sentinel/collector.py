"""Reading the host's process table: one ``ProcessRow`` per live process, read-only.

Two passes keep a scan cheap: ``collect_process_table`` reads every process through the short
list ``ATTRS`` (enough to match a pattern, find a group and tell a zombie); ``read_details`` then
reads ``DETAIL_ATTRS`` (user, CPU time) and the group of the few processes worth a signal,
checking each is still the same process (pid and create time).

Guarantees: only explicit attribute lists are read — never a process's environment, its open
files or its memory; a process that vanishes mid-scan (or between the passes, or whose pid is
gone when its group is read) is skipped, never an error; one we may not fully read keeps what
could be read (its command line then is empty and matches no pattern).
Must not: signal, spawn, wait for or change any process. It imports nothing that could — no
``signal``, ``subprocess``, ``multiprocessing``, ``asyncio``, nor ``os`` beyond ``getpgid`` — and
``tests/sentinel/test_collector.py`` proves it by parsing this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from os import getpgid

import psutil

from shepherd.core.process_table import ProcessRow

# What is read of every process, and nothing more.
ATTRS = ("pid", "ppid", "name", "cmdline", "create_time", "status")
# What is read of a process worth a signal (the user costs a passwd lookup: not for every row).
DETAIL_ATTRS = ("create_time", "username", "cpu_times")


def collect_process_table(with_groups: bool) -> list[ProcessRow]:
    """Every readable process now; ``with_groups`` also reads each one's process group id (only
    needed when a finished execution's group is looked for)."""
    rows = []
    for process in psutil.process_iter():
        row = read_process(process, with_groups)
        if row is not None:
            rows.append(row)
    return rows


def read_process(process: psutil.Process, with_group: bool) -> ProcessRow | None:
    """One row, or None when the process is gone (or its start time cannot be read: without it
    there is neither an age nor an identity)."""
    try:
        info = process.as_dict(attrs=list(ATTRS), ad_value=None)
        pgid = getpgid(process.pid) if with_group else None
    except (psutil.Error, OSError):
        return None
    create_time = info["create_time"]
    if create_time is None:
        return None
    return ProcessRow(
        pid=process.pid, create_time_ms=round(create_time * 1000), name=info["name"] or "?",
        argv=tuple(info["cmdline"] or ()), ppid=info["ppid"], pgid=pgid,
        zombie=info["status"] == psutil.STATUS_ZOMBIE,
    )


def read_details(rows: Iterable[ProcessRow]) -> dict[int, ProcessRow]:
    """``rows`` with their user, CPU time and group, by pid; a process gone since it was read
    (or whose pid now belongs to another process) is left out."""
    detailed = {}
    for row in rows:
        try:
            info = psutil.Process(row.pid).as_dict(attrs=list(DETAIL_ATTRS), ad_value=None)
            pgid = row.pgid if row.pgid is not None else getpgid(row.pid)
        except (psutil.Error, OSError):
            continue
        if info["create_time"] is None or round(info["create_time"] * 1000) != \
                row.create_time_ms:
            continue
        times = info["cpu_times"]
        detailed[row.pid] = replace(
            row, pgid=pgid, username=info["username"],
            cpu_s=times.user + times.system if times is not None else None,
        )
    return detailed
