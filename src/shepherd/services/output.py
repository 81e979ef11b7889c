"""An execution's output as it is now: from its runtime while it runs, from SQL once it ended.

A running (or finalizing) execution's output lives on its runtime, which keeps the tail of what
the child printed so far; once the result is stored, SQL holds the final tail. A runtime that
cannot be reached is not an error here: the stored tail (possibly empty) is answered with its
source, so a client following a run keeps following. Must not: write anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shepherd.core.models import Agent, Execution
from shepherd.core.status import ExecutionStatus
from shepherd.errors import AgentError, NotFound
from shepherd.stores.sql.database import Database

LIVE = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.FINALIZING})


class OutputSource(StrEnum):
    RUNTIME = "runtime"  # read from the runtime now: the child may still be printing
    STORED = "stored"  # the tail stored with the result
    NONE = "none"  # nothing yet (queued), or the runtime could not be reached


class _HasTail(Protocol):
    @property
    def output_tail(self) -> str | None: ...


class _Reading(Protocol):
    async def get(self, execution_id: str, wait_s: float = 0) -> _HasTail: ...


class OutputDirectory(Protocol):
    """Where to find an agent's runtime (``controllers.directory`` provides one)."""

    def client_for(self, agent: Agent) -> _Reading | None: ...


@dataclass(frozen=True, slots=True)
class ExecutionOutput:
    execution: Execution
    output: str
    source: OutputSource


async def read_output(db: Database, directory: OutputDirectory, row: Execution) -> ExecutionOutput:
    if row.status in LIVE:
        live = await _from_runtime(db, directory, row)
        if live is not None:
            return ExecutionOutput(row, live, OutputSource.RUNTIME)
    if row.output_tail is not None:
        return ExecutionOutput(row, row.output_tail, OutputSource.STORED)
    return ExecutionOutput(row, "", OutputSource.NONE)


async def _from_runtime(db: Database, directory: OutputDirectory, row: Execution) -> str | None:
    try:
        client = directory.client_for(await db.agents.get(row.agent))
        if client is None:
            return None
        return (await client.get(row.id)).output_tail or ""
    except (AgentError, NotFound):
        return None
