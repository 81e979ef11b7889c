"""Fleet events: every change ``/api/events`` carries besides execution transitions, and the
fields of each.

A producer builds a ``FleetChange`` with one of the functions below (so each type's fields are
written in one place) and hands it to the store's fleet event log, which stamps its instant and
its position (``seq``) in the ``fleet`` source. What each type says:

================  ===========  ============================  =====================================
type              subject      agent                         data
================  ===========  ============================  =====================================
agent.changed     agent name   the agent                     ``change`` (``AgentChange``),
                                                             ``actor``, and per change: ``fields``
                                                             (updated), ``generation`` (created),
                                                             ``cancelled`` (deleted), ``since_ms``
                                                             (runtime_down), ``down_since_ms``
                                                             (runtime_up), ``boot_id`` and
                                                             ``previous_boot_id``
                                                             (runtime_restarted)
circuit.changed   agent name   the agent                     ``kind`` (``TransitionKind``),
                                                             ``state`` (after it), ``reason``,
                                                             ``by`` (the replica or operator)
recovery.action   agent name   the agent                     ``action`` (``RecoveryAction``),
                                                             ``actor`` (watchdog, reaper),
                                                             ``reason``
canary.changed    invariant    None (fleet-wide)             ``invariant_id``, ``state`` (red,
                  id                                         green), ``severity``, ``tier``,
                                                             ``title``, ``violations``,
                                                             ``message`` (the first, when red)
alert.changed     alert key    the agent for the breaker's   ``change`` (``AlertChange``),
                  label        alerts, else None             ``source``, ``kind``, ``entity``,
                                                             ``severity``, ``summary``,
                                                             ``incident``, ``opened_at_ms``
================  ===========  ============================  =====================================

Fleet-wide events (``agent`` None) are seen by unscoped tokens only (``Event.visible_to``).
Free text that may come from a runtime (a probe's detail, a reason) is made storable and cut to
``MAX_TEXT_CHARS``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shepherd.core.circuit import CircuitState, TransitionKind
from shepherd.core.events import EventType
from shepherd.core.fleet_signals import BREAKER_SOURCE
from shepherd.core.signals import Severity, SignalKey
from shepherd.core.text import storable_or_none, storable_text

# A reason or a summary is a line for a person; the full story is in the logs and the API.
MAX_TEXT_CHARS = 500


class AgentChange(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    RUNTIME_DOWN = "runtime_down"  # the watchdog's first miss of an outage
    RUNTIME_UP = "runtime_up"  # the first answer after one
    RUNTIME_RESTARTED = "runtime_restarted"  # the monitor saw a new boot id


class RecoveryAction(StrEnum):
    """What a watchdog or reaper did that no execution transition shows."""

    FENCED = "fenced"  # watchdog: agent declared lost, nothing dispatched to it
    UNFENCED = "unfenced"  # watchdog: its registry reconciled, dispatching again
    ATTACHED = "attached"  # reaper tier 1: running rows nobody watched are watched again


class CanaryState(StrEnum):
    RED = "red"
    GREEN = "green"


class AlertChange(StrEnum):
    OPENED = "opened"
    REPEATED = "repeated"  # a re-alert of an incident still open
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class FleetChange:
    """A fleet event before it is stored: the log adds its instant and its ``seq``."""

    type: EventType
    agent: str | None
    subject: str
    data: Mapping[str, Any]


def agent_changed(agent: str, change: AgentChange, actor: str | None,
                  **detail: int | str | Sequence[str] | None) -> FleetChange:
    data: dict[str, Any] = {"change": change.value, "actor": actor}
    for name, value in detail.items():
        data[name] = (_text(value) if isinstance(value, str)
                      else list(value) if isinstance(value, (list, tuple)) else value)
    return FleetChange(EventType.AGENT_CHANGED, agent, agent, data)


def circuit_changed(agent: str, kind: TransitionKind, state: CircuitState, reason: str,
                    by: str) -> FleetChange:
    return FleetChange(EventType.CIRCUIT_CHANGED, agent, agent, {
        "kind": kind.value, "state": state.value, "reason": _text(reason), "by": by,
    })


def recovery_action(agent: str, action: RecoveryAction, actor: str, reason: str) -> FleetChange:
    return FleetChange(EventType.RECOVERY_ACTION, agent, agent, {
        "action": action.value, "actor": actor, "reason": _text(reason),
    })


def canary_changed(invariant_id: str, red: bool, *, severity: str, tier: str, title: str,
                   violations: int, message: str | None) -> FleetChange:
    state = CanaryState.RED if red else CanaryState.GREEN
    return FleetChange(EventType.CANARY_CHANGED, None, invariant_id, {
        "invariant_id": invariant_id, "state": state.value, "severity": severity, "tier": tier,
        "title": title, "violations": violations,
        "message": storable_or_none(message, MAX_TEXT_CHARS),
    })


def alert_changed(change: AlertChange, key: SignalKey, *, severity: Severity, summary: str,
                  incident: int, opened_at_ms: int) -> FleetChange:
    return FleetChange(EventType.ALERT_CHANGED, alert_agent(key), key.label, {
        "change": change.value, "source": key.source, "kind": key.kind, "entity": key.entity,
        "severity": severity.value, "summary": _text(summary), "incident": incident,
        "opened_at_ms": opened_at_ms,
    })


def alert_agent(key: SignalKey) -> str | None:
    """The agent an alert concerns: the breaker's keys name one; every other alert (systemic,
    canary, sentinel, posted by a client) is fleet-wide, so a scoped token never sees it."""
    return key.entity if key.source == BREAKER_SOURCE else None


def _text(value: str) -> str:
    return storable_text(value, MAX_TEXT_CHARS)
