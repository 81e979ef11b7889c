"""Which capacity slots may be reclaimed: a slot whose execution is not running any more.

Pure: maintenance reads the slot holders and re-reads each holder's row, then asks this module.
A slot is only reclaimed past a grace, so the dispatcher's acquire-then-claim window is never
mistaken for a leak (invariant S-01).
"""

from __future__ import annotations

from dataclasses import dataclass

from shepherd.core.status import ExecutionStatus


@dataclass(frozen=True, slots=True)
class SlotHolder:
    execution_id: str
    acquired_at_ms: int
    status: ExecutionStatus | None  # None: no such row


def decide_reclaim(holders: list[SlotHolder], now_ms: int, grace_ms: int) -> list[str]:
    """Ids of slots to release: held for a row that is not ``running``, for longer than grace."""
    return [
        h.execution_id
        for h in holders
        if h.status is not ExecutionStatus.RUNNING and now_ms - h.acquired_at_ms > grace_ms
    ]
