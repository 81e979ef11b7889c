"""Redis faults under a live ``shepherd up`` with real children: its data flushed mid-burst, its
embedded server killed. Nothing is overbooked (children counted from the process table), nothing
is lost, no slot is left held, and the log stays short."""

from __future__ import annotations

import fcntl
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import redis

from shepherd.stores.redis.embedded import EmbeddedRedis, socket_path_for
from shepherd.stores.redis.keys import Keys
from tests.fixtures.fleet import LiveFleet, running_fleet, wait_until

MAX_PARALLEL = 5
BURST = 20
TERMINAL = {"success", "failed", "cancelled", "skipped"}


def manifest(marker: str, sleep_s: float) -> str:
    # The marker is sh's $0, so each child is one process whose command line carries it; the
    # trailing `true` keeps sh from exec'ing sleep and losing it.
    return f"""
agents:
  - name: burst
    command: ["sh", "-c", "cat >/dev/null; sleep {sleep_s}; true", "{marker}"]
    max_parallel: {MAX_PARALLEL}
    timeout_s: 120
    max_backlog_depth: 100
"""


def live_children(marker: str) -> dict[tuple[int, float], float]:
    """The agent's live children, from the process table: (pid, seconds since boot at its
    start) -> seconds since boot when seen alive. Both are on the kernel's boot clock: psutil's
    create times are offset by a boot time rounded to the second, which wall-clock sightings
    could not be compared with. The runtime's own command line also names the marker, so only
    sh processes count, and only those whose parent is not one."""
    marked: dict[int, tuple[int, float, float]] = {}
    boot = psutil.boot_time()
    for proc in psutil.process_iter(["cmdline", "status", "create_time", "ppid"]):
        cmdline = proc.info["cmdline"] or []
        if (len(cmdline) > 3 and Path(cmdline[0]).name == "sh" and cmdline[3] == marker
                and proc.info["status"] != psutil.STATUS_ZOMBIE):
            seen = time.clock_gettime(time.CLOCK_BOOTTIME)
            marked[proc.pid] = (proc.info["ppid"], proc.info["create_time"] - boot, seen)
    # sh forks before it execs cat or sleep: for that instant the fork carries sh's command line
    # too. A marked process whose parent is marked is such a fork, not another child.
    return {(pid, born): seen for pid, (ppid, born, seen) in marked.items() if ppid not in marked}


def children(marker: str) -> int:
    return len(live_children(marker))


class ChildWatch:
    """Children seen over time, and how many were *certainly* alive at once.

    One scan of the process table is not a snapshot: a child that exits early in the scan and
    one that starts late in it would both be counted. So a child counts as concurrent with
    another only if it was created before the other was created and was seen alive after that
    (with a margin for the kernel's tick-rounded create times).
    """

    MARGIN_S = 0.05

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.last_seen: dict[tuple[int, float], float] = {}

    def sample(self) -> None:
        self.last_seen.update(live_children(self.marker))

    def alive_at_birth_of(self, child: tuple[int, float]) -> list[tuple[int, float]]:
        """``child`` and every other child certainly alive when it started."""
        return [child, *(other for other, seen in self.last_seen.items() if other != child
                         and other[1] <= child[1] and seen >= child[1] + self.MARGIN_S)]

    def peak(self) -> int:
        return max((len(self.alive_at_birth_of(c)) for c in self.last_seen), default=0)

    def crowd(self) -> str:
        """The largest group certainly alive at once, with when each was seen: for a failure."""
        if not self.last_seen:
            return "none"
        group = max((self.alive_at_birth_of(c) for c in self.last_seen), key=len)
        return ", ".join(f"pid {pid} born {born:.3f} seen {self.last_seen[(pid, born)]:.3f}"
                         for pid, born in group)


def redis_of(fleet: LiveFleet) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(socket_path_for(fleet.data_dir)),
                       decode_responses=True)


def submit_burst(fleet: LiveFleet, n: int) -> list[str]:
    with fleet.api() as api:
        ids = []
        for i in range(n):
            response = api.post("/api/executions", json={"agent": "burst", "input": str(i)})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


def statuses(fleet: LiveFleet, ids: list[str]) -> dict[str, str]:
    with fleet.api() as api:
        return {eid: api.get(f"/api/executions/{eid}").json()["status"] for eid in ids}


def drain_counting(fleet: LiveFleet, ids: list[str], marker: str, timeout_s: float,
                   during: Any = None) -> int:
    """Sample the process table until every execution is terminal; the most children certainly
    alive at once. ``during()`` is called on every sample to inject faults."""
    deadline = time.monotonic() + timeout_s
    watch, last_poll = ChildWatch(marker), 0.0
    while time.monotonic() < deadline:
        watch.sample()
        if during is not None:
            during()
        if time.monotonic() - last_poll > 0.5:
            last_poll = time.monotonic()
            if set(statuses(fleet, ids).values()) <= TERMINAL:
                if watch.peak() > MAX_PARALLEL:
                    print("children certainly alive at once:", watch.crowd())
                return watch.peak()
    raise AssertionError(f"burst not drained in {timeout_s} s: {statuses(fleet, ids)}")


def test_a_flushall_mid_burst_never_overbooks_and_loses_nothing(tmp_path: Path) -> None:
    marker = f"flushmark-{uuid.uuid4().hex[:8]}"
    keys = Keys()
    with running_fleet(tmp_path, manifest(marker, 1.5)) as fleet:
        ids = submit_burst(fleet, BURST)
        wait_until(lambda: children(marker) >= 3, 30, "the first children")
        client = redis_of(fleet)
        flushes: list[float] = []

        def flush() -> None:
            # Twice: once with the first wave running, once well into the burst.
            if not flushes or (len(flushes) == 1 and time.monotonic() - flushes[0] > 3):
                client.flushall()
                flushes.append(time.monotonic())

        peak = drain_counting(fleet, ids, marker, 90, flush)
        assert len(flushes) == 2
        assert peak <= MAX_PARALLEL, f"{peak} children at once on max_parallel {MAX_PARALLEL}"
        done = statuses(fleet, ids)
        assert set(done.values()) == {"success"}, done
        wait_until(lambda: client.zcard(keys.slots("burst")) == 0, 15, "no slot held")
        assert list(client.scan_iter(match=keys.all_slots_pattern())) == []
        with fleet.api() as api:
            for eid in ids:
                events = api.get(f"/api/executions/{eid}").json()["events"]
                assert [e["to_status"] for e in events].count("success") == 1
        client.close()


@contextmanager
def held(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def log_lines(fleet: LiveFleet, after: int) -> list[str]:
    """What the control plane wrote since line ``after`` (its log, at WARNING in fault tests)."""
    return [line for line in list(fleet.output)[after:] if line.strip()]


def test_a_killed_embedded_redis_server_comes_back_and_work_goes_on_with_a_short_log(
    tmp_path: Path,
) -> None:
    marker = f"killmark-{uuid.uuid4().hex[:8]}"
    with running_fleet(tmp_path, manifest(marker, 0.5)) as fleet:
        before = submit_burst(fleet, 6)
        embedded = EmbeddedRedis(fleet.data_dir)
        old_pid = embedded.pid()
        assert old_pid is not None
        wait_until(lambda: children(marker) >= 1, 30, "work in flight")
        start = len(fleet.output)
        with fleet.api() as api, held(embedded.dir / "redis.lock"):
            # Holding the server's start lock keeps it down for as long as this block lasts.
            os.kill(old_pid, signal.SIGKILL)
            psutil.wait_procs([psutil.Process(old_pid)], timeout=5)
            for _ in range(3):  # the supervisor (1 s period) has tried by the last one
                assert api.get("/readyz").status_code == 503
                time.sleep(0.6)
            during = submit_burst(fleet, 4)  # still accepted: queued in SQL
        with fleet.api() as api:
            wait_until(lambda: api.get("/readyz").status_code == 200, 30, "/readyz 200 again")
        assert embedded.pid() not in (None, old_pid)
        peak = drain_counting(fleet, before + during, marker, 60)
        assert peak <= MAX_PARALLEL
        assert set(statuses(fleet, before + during).values()) == {"success"}
        after = submit_burst(fleet, 1)  # and new work runs on the restarted server
        drain_counting(fleet, after, marker, 30)
        assert statuses(fleet, after) == {after[0]: "success"}
        lines = log_lines(fleet, start)
        assert not any("Traceback" in line for line in lines), "".join(lines)
        assert len(lines) <= 12, "".join(lines)
        said = [line for line in lines if "embedded redis-server" in line]
        assert len(said) == 2, "".join(lines)  # stopped answering; back
