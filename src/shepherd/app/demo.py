"""The demo's traffic that cron cannot make: bursts of short runs, and large inputs for the agent
whose child sometimes exits without reading them (an agent with ``require_input_read``, so
``child_exited_early`` shows up)."""

from __future__ import annotations

import asyncio
import logging

from shepherd.core.models import Trigger
from shepherd.errors import ShepherdError
from shepherd.services.executions import submit
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.app.demo")

BURST_SIZE = 8
BURST_EVERY_S = 20.0
# Larger than a pipe buffer, as a real prompt with context may be.
EARLY_EXIT_INPUT = "x" * (256 * 1024)


async def drive_demo_traffic(db: Database) -> None:
    """Forever: a burst for ``burst``, one large input for ``early-exit``, then wait."""
    while True:
        try:
            for i in range(BURST_SIZE):
                await submit(db, agent="burst", input=f"burst item {i}", trigger=Trigger.API,
                             created_by="demo")
            await submit(db, agent="early-exit", input=EARLY_EXIT_INPUT, trigger=Trigger.API,
                         created_by="demo")
        except ShepherdError as exc:
            log.warning("demo traffic: %s", exc)
        await asyncio.sleep(BURST_EVERY_S)
