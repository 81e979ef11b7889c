"""The seam for the fleet-wide circuit breaker: every agent call asks ``before`` and reports a
verdict to ``record``. Until the breaker exists, ``NullBreaker`` lets everything through."""

from __future__ import annotations

from typing import Protocol

from shepherd.core.classification import Verdict


class BreakerHook(Protocol):
    async def before(self, agent: str) -> None:
        """Raise ``AgentUnreachable`` to refuse a call while the agent's circuit is open."""
        ...

    async def record(self, agent: str, verdict: Verdict) -> None: ...


class NullBreaker:
    async def before(self, agent: str) -> None:
        return None

    async def record(self, agent: str, verdict: Verdict) -> None:
        return None
