"""The shape of an invariant and of what it reports; the registry every family adds to.

An invariant is a pure function of a ``Snapshot`` returning the violations it sees now, with
its catalog facts (DESIGN.md section 9): tier (A holds always, B converges within its window),
severity, the grace or dwell it allows, a runbook hint. A violation names the entity it is about
(an agent, an execution, ``fleet``), a message an operator can act on, and the observed state
that proves it. Pure: no I/O, no clock (``snapshot.now_ms`` is the instant).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shepherd.canary.snapshot import Snapshot
from shepherd.core.signals import Severity

FLEET = "fleet"


class Tier(StrEnum):
    A = "A"  # always holds: any sighting is a violation
    B = "B"  # converges: a violation only once its window has passed


@dataclass(frozen=True, slots=True)
class Violation:
    invariant_id: str
    entity: str
    message: str
    observed: Mapping[str, Any] = field(default_factory=dict)


Check = Callable[[Snapshot], list[Violation]]


@dataclass(frozen=True, slots=True)
class Invariant:
    id: str
    title: str
    tier: Tier
    severity: Severity
    runbook: str
    check: Check
    # Seconds a violation must persist before it alerts (the alert engine's pending period):
    # races the snapshot cannot rule out settle within it.
    dwell_s: float = 0.0


REGISTRY: dict[str, Invariant] = {}


def invariant(
    id: str, title: str, tier: Tier, severity: Severity, runbook: str, dwell_s: float = 0.0
) -> Callable[[Check], Check]:
    """Register ``check`` under ``id`` (ids are unique; a duplicate is a programming error)."""
    def register(check: Check) -> Check:
        assert id not in REGISTRY, f"invariant {id} registered twice"
        REGISTRY[id] = Invariant(id, title, tier, severity, runbook, check, dwell_s)
        return check
    return register


def seconds(ms: int) -> str:
    return f"{ms / 1000:.0f} s"
