"""Live events: the one envelope every producer publishes and every ``/api/events`` client reads.

An event says that something changed, who it concerns and where it sits in its feed:

- ``type``: dotted, ``<subject kind>.<what happened>`` (``EventType``): ``execution.transition``
  from the ``executions`` source; ``agent.changed``, ``circuit.changed``, ``recovery.action``,
  ``canary.changed`` and ``alert.changed`` from the ``fleet`` source (``core.fleet_events`` says
  what each carries). A feature that produces events adds its type here.
- ``source`` and ``seq``: the feed the event was read from and its position there. ``seq`` grows
  within a source (not across sources); a client resumes with the last ``seq`` of each source.
- ``agent``: the agent it concerns, or None for a fleet-wide event. A token scoped to an agent
  receives that agent's events only, never fleet-wide ones.
- ``subject``: the id of the thing that changed (an execution id, an agent name, an invariant id).
- ``data``: the type's own fields, JSON-safe.

Guarantees: frozen and JSON-safe; nothing here reads a clock or a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shepherd.core.models import ExecutionEvent


class EventType(StrEnum):
    EXECUTION_TRANSITION = "execution.transition"
    AGENT_CHANGED = "agent.changed"
    CIRCUIT_CHANGED = "circuit.changed"
    RECOVERY_ACTION = "recovery.action"
    CANARY_CHANGED = "canary.changed"
    ALERT_CHANGED = "alert.changed"


# The source of execution transitions: the ``execution_events`` table, followed by id.
EXECUTIONS_SOURCE = "executions"
# The source of every other change of the fleet: the ``fleet_events`` table, followed by id.
FLEET_SOURCE = "fleet"


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    source: str
    seq: int
    at_ms: int
    agent: str | None
    subject: str
    data: Mapping[str, Any]

    def visible_to(self, agent_scope: str | None) -> bool:
        """Whether a token scoped to ``agent_scope`` (None: the whole fleet) may see it."""
        return agent_scope is None or self.agent == agent_scope


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One ``execution_events`` row with the execution fields a viewer filters on."""

    event: ExecutionEvent
    agent: str
    schedule_id: str | None


def transition_event(record: TransitionRecord) -> Event:
    ev = record.event
    return Event(
        type=EventType.EXECUTION_TRANSITION, source=EXECUTIONS_SOURCE, seq=ev.seq,
        at_ms=ev.at_ms, agent=record.agent, subject=ev.execution_id,
        data={
            "execution_id": ev.execution_id,
            "schedule_id": record.schedule_id,
            "from": ev.from_status.value if ev.from_status else None,
            "to": ev.to_status.value,
            "cause": ev.cause.value if ev.cause else None,
            "actor": ev.actor,
            "reason": ev.reason,
        },
    )
