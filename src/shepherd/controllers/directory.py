"""Which runtime client talks to which agent: the one place controllers get an ``AgentClient``.

An agent without a URL (a local agent whose runtime has not started yet) has no client; callers
skip it rather than fail.
"""

from __future__ import annotations

from typing import Protocol

from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.pool import AgentClientPool
from shepherd.core.models import Agent


class AgentDirectory(Protocol):
    def client_for(self, agent: Agent) -> AgentClient | None: ...


class PooledDirectory:
    """Clients from one shared pool, authenticated with the fleet's agent token."""

    def __init__(self, pool: AgentClientPool, token: str) -> None:
        self._pool = pool
        self._token = token

    def client_for(self, agent: Agent) -> AgentClient | None:
        if not agent.url:
            return None
        return self._pool.client_for(agent.name, agent.url, self._token)
