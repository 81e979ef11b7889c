"""A status write a caller asks for: one CAS target with what its winner also writes.

``StatusWrite`` lets a caller hand several executions' writes to the store at once (the monitor
settling and finalizing a page of exits in one transaction); each execution's writes form a
chain applied in order, stopping at the first one lost. Pure values: the store applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shepherd.core.models import TransitionFields
from shepherd.core.outbox import OutboxMessage
from shepherd.core.retry import RetryPlan
from shepherd.core.status import Cause, ExecutionStatus


@dataclass(frozen=True, slots=True)
class StatusWrite:
    to: ExecutionStatus
    cause: Cause
    reason: str | None = None
    fields: TransitionFields = field(default_factory=TransitionFields)
    outbox: Sequence[OutboxMessage] = ()
    retry: RetryPlan | None = None


@dataclass(frozen=True, slots=True)
class WriteChain:
    """One execution's writes, in order. ``seen`` is the status its writer last read, if it
    read one: a hint, never trusted (on PostgreSQL a chain whose every write is allowed from it
    is tried in one statement written from that status, and goes the reading way if the row is
    no longer in it)."""

    execution_id: str
    writes: Sequence[StatusWrite]
    seen: ExecutionStatus | None = None
