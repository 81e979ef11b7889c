"""Admission: does new work join the backlog, or is it recorded as skipped, and why.

Pure: the caller reads the backlog depth and the schedule's runs in flight in the same
transaction that inserts the row, so the bound holds under concurrent submitters.
"""

from __future__ import annotations

from dataclasses import dataclass

from shepherd.core.models import OverlapPolicy
from shepherd.core.status import ExecutionStatus


@dataclass(frozen=True, slots=True)
class Admission:
    status: ExecutionStatus
    reason: str | None


def decide_admission(
    *,
    backlog_depth: int,
    max_backlog_depth: int,
    overlap: OverlapPolicy | None,
    active_for_schedule: int,
    agent_enabled: bool = True,
) -> Admission:
    """``queued``, or ``skipped`` with a reason a person can act on."""
    if not agent_enabled:
        return Admission(ExecutionStatus.SKIPPED, "agent is disabled")
    if overlap is OverlapPolicy.SKIP and active_for_schedule > 0:
        return Admission(
            ExecutionStatus.SKIPPED,
            f"overlap policy 'skip': {active_for_schedule} earlier run(s) still active",
        )
    if backlog_depth >= max_backlog_depth:
        return Admission(
            ExecutionStatus.SKIPPED,
            f"backlog full: {backlog_depth} queued, max_backlog_depth is {max_backlog_depth}",
        )
    return Admission(ExecutionStatus.QUEUED, None)
