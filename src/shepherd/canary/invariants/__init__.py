"""The invariant catalog (DESIGN.md section 9): every id registered, each a pure check.

``evaluate`` runs the chosen checks over one snapshot; a check that raises is reported in
``failed`` (and logged by the caller) and the others still run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shepherd.canary.invariants import backlog, executions, fleet, slots
from shepherd.canary.invariants.base import REGISTRY, Invariant, Tier, Violation
from shepherd.canary.invariants.fleet import UNCHECKED
from shepherd.canary.snapshot import Snapshot

__all__ = [
    "REGISTRY",
    "UNCHECKED",
    "CheckRun",
    "Invariant",
    "Tier",
    "Violation",
    "backlog",
    "evaluate",
    "executions",
    "fleet",
    "slots",
]


@dataclass(frozen=True, slots=True)
class CheckRun:
    violations: tuple[Violation, ...] = ()
    checked: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)  # id -> the error it raised


def evaluate(snapshot: Snapshot, ids: Iterable[str] | None = None) -> CheckRun:
    chosen = sorted(REGISTRY) if ids is None else sorted(set(ids))
    found: list[Violation] = []
    failed: dict[str, str] = {}
    for iid in chosen:
        try:
            found.extend(REGISTRY[iid].check(snapshot))
        except Exception as exc:
            failed[iid] = f"{type(exc).__name__}: {exc}"
    return CheckRun(tuple(found), tuple(chosen), failed)
