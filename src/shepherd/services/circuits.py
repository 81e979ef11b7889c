"""Operations on agents' circuit breakers behind the API (and, later, the alert engine).

``list_circuits`` reads every live agent's circuit in one round trip, optionally filtered by state
(``dormant`` is what an alert on long-dead agents wants). ``reset_circuit`` is the operator's
override: the circuit closes whatever its state, the change is recorded as an event naming who
did it, and counted like every other transition. A reset that closed a circuit is also a
``circuit.changed`` fleet event.
"""

from __future__ import annotations

from shepherd.agent_client.fleet_breaker import count_transition
from shepherd.core.circuit import Circuit, CircuitState, TransitionKind
from shepherd.core.fleet_events import circuit_changed
from shepherd.stores.redis.circuits import CircuitStore, ResetResult
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry


async def list_circuits(
    db: Database, circuits: CircuitStore, state: CircuitState | None = None
) -> list[Circuit]:
    """The circuits of the fleet's agents, by agent name; only ``state`` ones when given."""
    names = [a.name for a in await db.agents.list()]
    found = await circuits.read_many(names)
    return [found[n] for n in names if state is None or found[n].state is state]


async def reset_for_new_url(
    db: Database, circuits: CircuitStore, agent: str, *, actor: str, now_ms: int
) -> None:
    """An agent moved to another URL (its runtime restarted elsewhere, an operator changed it):
    failures seen at the old address say nothing of the new one, so its circuit starts closed."""
    await _reset(db, circuits, agent, actor, now_ms, "the agent moved to a new URL")


async def reset_circuit(
    db: Database, circuits: CircuitStore, agent: str, *, actor: str, now_ms: int,
    telemetry: Telemetry,
) -> ResetResult:
    await db.agents.get(agent)  # an unknown agent is a 404, not a silent no-op
    result = await _reset(db, circuits, agent, actor, now_ms, f"reset by {actor}")
    if result is ResetResult.CLOSED:
        count_transition(telemetry, agent, TransitionKind.RESET)
    return result


async def _reset(
    db: Database, circuits: CircuitStore, agent: str, actor: str, now_ms: int, reason: str
) -> ResetResult:
    result = await circuits.reset(agent, actor=actor, now_ms=now_ms, reason=reason)
    if result is ResetResult.CLOSED:
        await db.fleet_events.record(circuit_changed(agent, TransitionKind.RESET,
                                                     CircuitState.CLOSED, reason, actor))
    return result
