"""Which capacity slots are wrong, and which running executions lack one: pure decisions.

Maintenance reads the slot holders of an agent and re-reads each holder's row, then asks this
module. A slot is held *rightly* only by a ``running`` row of the agent whose slot it is: a slot
of a finished or unknown row is a leak, and a member naming another agent's execution is a
phantom that would otherwise count against this agent forever. Wrong slots are released only past
a grace, so the dispatcher's acquire-then-claim window is never mistaken for a leak (invariant
S-01). The age of a slot is taken in absolute value: a score in the future (a bug, or a replica
whose clock runs ahead) is as old as its distance from now, so it cannot escape reclaim by never
aging.

The other direction (``decide_restore``): a ``running`` row with no slot is capacity that the
dispatcher would hand out twice, which is how a Redis that lost its data overbooks an agent. Its
slot is restored, with no capacity check: the work is running whatever Redis says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shepherd.core.status import ExecutionStatus


@dataclass(frozen=True, slots=True)
class SlotHolder:
    execution_id: str
    acquired_at_ms: int
    status: ExecutionStatus | None  # None: no such row
    agent: str | None = None  # the row's agent; None: no such row


@dataclass(frozen=True, slots=True)
class RunningRow:
    execution_id: str
    agent: str
    dispatched_at_ms: int | None
    timeout_s: int


@dataclass(frozen=True, slots=True)
class SlotRestore:
    agent: str
    execution_id: str
    acquired_at_ms: int
    timeout_s: int


def holds_rightly(holder: SlotHolder, slot_agent: str) -> bool:
    return holder.status is ExecutionStatus.RUNNING and holder.agent == slot_agent


def decide_reclaim(
    holders: list[SlotHolder], slot_agent: str, now_ms: int, grace_ms: int
) -> list[str]:
    """Ids of ``slot_agent``'s slots to release: held wrongly, for longer than the grace."""
    return [
        h.execution_id
        for h in holders
        if not holds_rightly(h, slot_agent) and abs(now_ms - h.acquired_at_ms) > grace_ms
    ]


def decide_restore(
    running: Iterable[RunningRow], members: dict[str, set[str]], now_ms: int
) -> list[SlotRestore]:
    """Slots to put back: one per running row that is not a member of its agent's slots."""
    return [
        SlotRestore(row.agent, row.execution_id, row.dispatched_at_ms or now_ms, row.timeout_s)
        for row in running
        if row.execution_id not in members.get(row.agent, set())
    ]
