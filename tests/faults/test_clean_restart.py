"""A clean Ctrl-C of ``shepherd up`` gives back every lease it holds (controllers', monitors',
finalizers'), so the next start watches every agent at once instead of waiting out a lease TTL,
and the runs that were in flight settle."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shepherd.stores.redis.connection import connect_redis
from shepherd.stores.redis.keys import DEFAULT_PREFIX, Keys
from tests.faults.recovery import ChildLog, child_log, execution, manifest, submit, wait_running
from tests.fixtures.fleet import kill_everything, settle_and_stop, start_up, stop_up, wait_until

# Well under the monitor lease's TTL (its long-poll wait + 10 s = 30 s by default): a restart
# that had to wait for the old lease to expire could not settle within it.
SETTLE_S = 15.0


async def leases_left(data_dir: Path) -> list[str]:
    """The leases still in the fleet's embedded Redis (which kept its data when it stopped)."""
    redis = await connect_redis(None, data_dir, DEFAULT_PREFIX)
    try:
        pattern = Keys(DEFAULT_PREFIX).lease("*")
        return sorted([str(k) async for k in redis.client.scan_iter(match=pattern)])
    finally:
        await redis.close()


def test_after_a_clean_stop_and_a_restart_the_runs_in_flight_settle_without_waiting(
    tmp_path: Path,
) -> None:
    log = child_log(tmp_path)
    fleet = start_up(tmp_path, manifest(log, {"a": 1}))
    try:
        [eid] = submit(fleet, "a", 1)
        wait_running(fleet, [eid], log)
        stop_up(fleet)  # Ctrl-C: runtimes terminate their children, the plane resigns
        assert fleet.process.returncode == 0
        assert asyncio.run(leases_left(fleet.data_dir)) == []
        fleet.restart()
        settled = wait_until(lambda: execution(fleet, eid)["status"] in ("failed", "success")
                             and execution(fleet, eid), SETTLE_S, "the run to settle")
        assert settled["error_class"] == "terminated"
        assert ChildLog.read(log).started_twice() == []
        settle_and_stop(fleet)
    finally:
        stop_up(fleet)
        kill_everything(fleet.data_dir)
