"""Agents: create, read, update, and a delete that leaves nothing referencing the agent.

Delete is one transaction: schedules, tags and tokens scoped to the agent are deleted, queued
executions cancelled through the CAS (each with its event), and the agent row soft-deleted
(history keeps its name). It refuses, changing nothing, while the agent has running or
finalizing work. Creating an agent under a deleted name revives that row as the next
``generation``: executions record the generation they were submitted to, so the new agent's
views never show the old agent's history (which stays readable by id).

Reads (``get``, ``list``) are one statement outside any transaction (``engine.one_statement``).
``recent``/``recent_one`` serve the controllers' passes, which can come hundreds of times a
second: the list as read at most ``max_age_s`` ago, and never older than this process's last
change to any agent (every create, update and delete here counts one). A change another process
made (a second replica) shows within ``max_age_s``.
Each create, update and delete is recorded in the fleet event log once it has committed
(``agent.changed``, naming the actor when the caller says who it is); a log that cannot take it
never fails the change.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import RowMapping, Select, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.clock import Clock
from shepherd.core.fleet_events import AgentChange, agent_changed
from shepherd.core.ids import AgentName
from shepherd.core.models import Agent
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.writes import StatusWrite, WriteChain
from shepherd.errors import AgentNotFound, AlreadyExists, Conflict
from shepherd.stores.sql.engine import one_statement
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.fleet_events import FleetEventLog
from shepherd.stores.sql.rows import agent_values, to_agent
from shepherd.stores.sql.tables import agent_tags, agents, api_tokens, executions, schedules
from shepherd.stores.sql.transitions import TransitionResult, apply_chains

TAG = "agent_tag"  # the joined tag's label: apart from every column of ``agents``
DEFAULTS: dict[str, Any] = {
    "max_parallel_tasks": 3, "execution_timeout_s": 900, "max_backlog_depth": 50,
    "enabled": True, "success_exit_codes": (0,), "completion_webhook_url": None,
    "require_input_read": False,
    "max_attempts": 1, "retry_on_failure": False,
}
UPDATABLE = frozenset({"url", "command", "tags", *DEFAULTS})


@dataclass(frozen=True, slots=True)
class AgentDeletion:
    agent: str
    cancelled: list[str] = field(default_factory=list)
    schedules_deleted: int = 0
    tokens_deleted: int = 0


class AgentRepository:
    def __init__(self, engine: AsyncEngine, clock: Clock, events: FleetEventLog) -> None:
        self._engine = engine
        self._clock = clock
        self._events = events
        self._changes = 0  # creates, updates and deletes committed through this repository
        # (changes, monotonic time of the read, the agents read)
        self._recent: tuple[int, float, builtins.list[Agent]] | None = None

    async def create(
        self, *, name: AgentName, url: str | None, command: tuple[str, ...] | None,
        tags: tuple[str, ...] = (), actor: str | None = None, **fields: Any,
    ) -> Agent:
        unknown = set(fields) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown agent fields: {sorted(unknown)}")
        values = agent_values({**DEFAULTS, **fields, "url": url, "command": command})
        async with translated(f"create agent {name!r}"), self._engine.begin() as conn:
            existing = (await conn.execute(select(agents.c.deleted_at_ms, agents.c.generation)
                                           .where(agents.c.name == name))).first()
            if existing is not None and existing[0] is None:
                raise AlreadyExists(f"agent {name!r} already exists")
            values.update(created_at_ms=self._clock.now_ms(), deleted_at_ms=None)
            if existing is None:
                await conn.execute(insert(agents).values(name=name, **values))
            else:  # a new agent under an old name: the next generation, with its own history
                await conn.execute(update(agents).where(agents.c.name == name)
                                   .values(generation=existing[1] + 1, **values))
            await _replace_tags(conn, name, tags)
        self._changes += 1
        agent = await self.get(name)
        await self._events.record(agent_changed(name, AgentChange.CREATED, actor,
                                                generation=agent.generation))
        return agent

    async def get(self, name: str) -> Agent:
        found = await _read(self._engine, f"read agent {name!r}", _ONE_LIVE, {"name": name})
        if not found:
            raise AgentNotFound(f"agent {name!r} does not exist")
        return found[0]

    async def list(self, include_deleted: bool = False) -> list[Agent]:
        return await _read(self._engine, "list agents", _ALL if include_deleted else _LIVE)

    async def recent(self, max_age_s: float) -> builtins.list[Agent]:
        """The live agents, as read at most ``max_age_s`` ago and after this process's last
        change to any of them."""
        cached = self._recent
        now = time.monotonic()
        if cached is not None and cached[0] == self._changes and now - cached[1] < max_age_s:
            return list(cached[2])
        changes = self._changes  # a change committed during the read makes this one stale
        found = await self.list()
        self._recent = (changes, now, found)
        return list(found)

    async def recent_one(self, name: str, max_age_s: float) -> Agent:
        """``get`` as ``recent`` sees it: an agent it does not list is read again."""
        for agent in await self.recent(max_age_s):
            if agent.name == name:
                return agent
        return await self.get(name)

    async def update(self, name: str, *, actor: str | None = None, **changes: Any) -> Agent:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise TypeError(f"unknown agent fields: {sorted(unknown)}")
        await self.get(name)
        changed = sorted(changes)
        tags = changes.pop("tags", None)
        async with translated(f"update agent {name!r}"), self._engine.begin() as conn:
            if changes:
                await conn.execute(update(agents).where(agents.c.name == name)
                                   .values(**agent_values(changes)))
            if tags is not None:
                await _replace_tags(conn, name, tuple(tags))
        self._changes += 1
        if changed:
            await self._events.record(agent_changed(name, AgentChange.UPDATED, actor,
                                                    fields=changed))
        return await self.get(name)

    async def delete(self, name: str, *, actor: str, now_ms: int) -> AgentDeletion:
        await self.get(name)
        async with translated(f"delete agent {name!r}"), self._engine.begin() as conn:
            busy = (await conn.execute(select(executions.c.id).where(
                executions.c.agent == name,
                executions.c.status.in_((ExecutionStatus.RUNNING.value,
                                         ExecutionStatus.FINALIZING.value)),
            ))).scalars().all()
            if busy:
                raise Conflict(f"agent {name!r} has {len(busy)} execution(s) running or "
                               "finalizing; cancel them or let them finish first")
            deletion = await _close_references(conn, name, actor, now_ms)
        self._changes += 1
        await self._events.record(agent_changed(name, AgentChange.DELETED, actor,
                                                cancelled=len(deletion.cancelled)))
        return deletion


async def _close_references(
    conn: AsyncConnection, name: str, actor: str, now_ms: int
) -> AgentDeletion:
    queued = (await conn.execute(select(executions.c.id).where(
        executions.c.agent == name, executions.c.status == ExecutionStatus.QUEUED.value,
    ))).scalars().all()
    cancel = StatusWrite(ExecutionStatus.CANCELLED, Cause.AGENT_DELETED,
                         reason=f"agent {name} deleted")
    outcomes = await apply_chains(conn, [WriteChain(eid, [cancel]) for eid in queued],
                                  actor=actor, now_ms=now_ms)
    cancelled = [eid for eid, [outcome] in zip(queued, outcomes, strict=True)
                 if outcome is TransitionResult.WON]
    removed = await conn.execute(delete(schedules).where(schedules.c.agent == name))
    await conn.execute(delete(agent_tags).where(agent_tags.c.agent == name))
    tokens = await conn.execute(delete(api_tokens).where(api_tokens.c.agent_scope == name))
    await conn.execute(update(agents).where(agents.c.name == name)
                       .values(deleted_at_ms=now_ms, enabled=False, url=None))
    return AgentDeletion(name, cancelled, int(removed.rowcount), int(tokens.rowcount))


async def _replace_tags(conn: AsyncConnection, name: str, tags: tuple[str, ...]) -> None:
    await conn.execute(delete(agent_tags).where(agent_tags.c.agent == name))
    for tag in sorted(set(tags)):
        await conn.execute(insert(agent_tags).values(agent=name, tag=tag))


# Agents with their tags in one statement (a row per tag; an untagged agent's tag is NULL),
# ordered by name; built once, they are read on every dispatcher pass and page of exits.
_ALL = (select(agents, agent_tags.c.tag.label(TAG))
        .outerjoin(agent_tags, agent_tags.c.agent == agents.c.name).order_by(agents.c.name))
_LIVE = _ALL.where(agents.c.deleted_at_ms.is_(None))
_ONE_LIVE = _LIVE.where(agents.c.name == bindparam("name"))


async def _read(
    engine: AsyncEngine, what: str, query: Select[Any], params: dict[str, Any] | None = None
) -> list[Agent]:
    async with translated(what), one_statement(engine) as conn:
        rows = (await conn.execute(query, params)).mappings().all()
    found: dict[str, tuple[RowMapping, list[str]]] = {}
    for row in rows:
        _, tags = found.setdefault(row["name"], (row, []))
        if row[TAG] is not None:
            tags.append(row[TAG])
    return [to_agent(row, tags) for row, tags in found.values()]
