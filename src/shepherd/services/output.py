"""The output tail of an execution: the stored one once it finished, the runtime's while it runs.

The finalizer stores the tail with the result; until then the only copy is in the agent's
runtime, which keeps the last bytes of the child's output as it writes them. Asking for a
running execution's tail is one call to its runtime, made when someone looks (the dashboard
polls it while the page is open), never on a schedule.

Guarantees: never raises because a runtime is down; says where the text came from.
Must not: write anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from shepherd.agent_client.protocol import ExecutionState
from shepherd.core.models import Agent, Execution
from shepherd.core.status import ExecutionStatus
from shepherd.errors import AgentError, NotFound
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.services.output")


class _TailSource(Protocol):
    async def get(self, execution_id: str, wait_s: float = 0) -> ExecutionState: ...


class RuntimeTails(Protocol):
    """Where the live tail comes from (``controllers.directory`` provides one)."""

    def client_for(self, agent: Agent) -> _TailSource | None: ...


@dataclass(frozen=True, slots=True)
class OutputTail:
    text: str | None
    live: bool  # read from the runtime just now, the child still running
    note: str | None = None  # why there is no live text


async def output_tail(db: Database, directory: RuntimeTails, row: Execution) -> OutputTail:
    if row.status is not ExecutionStatus.RUNNING:
        return OutputTail(row.output_tail, live=False)
    try:
        client = directory.client_for(await db.agents.get(row.agent))
        if client is None:
            return OutputTail(None, False, "the agent has no runtime URL")
        state = await client.get(row.id)
    except (AgentError, NotFound) as exc:
        log.info("output of %s: runtime not asked: %s", row.id, exc)
        return OutputTail(None, False, "the runtime did not answer")
    return OutputTail(state.output_tail, live=True)
