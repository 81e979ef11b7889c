"""The seam for the fleet-wide circuit breaker: every agent call asks ``before`` and reports a
verdict to ``record``; controllers ask ``admits`` before committing work to an agent and
``retry_after_s`` after a failed call. ``NullBreaker`` lets everything through; the real breaker is
``agent_client.fleet_breaker.RedisBreaker``.
"""

from __future__ import annotations

from typing import Protocol

from shepherd.core.classification import Verdict


class BreakerHook(Protocol):
    async def before(self, agent: str) -> None:
        """Raise ``CircuitOpen`` (an ``AgentUnreachable``) to refuse a call while the agent's
        circuit is not closed."""
        ...

    async def record(self, agent: str, verdict: Verdict, detail: str = "") -> None:
        """The outcome of a call; ``detail`` (route and outcome) explains a state change."""
        ...

    async def admits(self, agent: str) -> bool:
        """Whether a call to ``agent`` would go through now. Reads only."""
        ...

    async def retry_after_s(self, agent: str, floor_s: float) -> float:
        """How long to wait before calling ``agent`` again after a failed call."""
        ...


class NullBreaker:
    async def before(self, agent: str) -> None:
        return None

    async def record(self, agent: str, verdict: Verdict, detail: str = "") -> None:
        return None

    async def admits(self, agent: str) -> bool:
        return True

    async def retry_after_s(self, agent: str, floor_s: float) -> float:
        return floor_s
