"""Making the fleet match a manifest.

``apply_manifest`` is idempotent: it creates and updates agents and schedules to match the
manifest, arms new schedules, and deletes schedules of manifest agents that the manifest no longer
lists. It never deletes an agent the manifest does not mention; those are reported as
``unmanaged``. Applying the same manifest twice reports no change the second time.
A local agent (``command``, no ``url``) keeps the URL its runtime registered: the manifest does
not know it, so it must not clear it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shepherd.core.ids import AgentName
from shepherd.core.models import Agent, Schedule
from shepherd.manifest.schema import AgentSpec, Manifest, ScheduleSpec, schedule_key
from shepherd.services.schedules import ScheduleFields, create_schedule, update_schedule
from shepherd.stores.sql.database import Database


@dataclass(slots=True)
class KindChanges:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass(slots=True)
class FleetChanges:
    agents: KindChanges = field(default_factory=KindChanges)
    schedules: KindChanges = field(default_factory=KindChanges)
    unmanaged: list[str] = field(default_factory=list)  # agents the manifest does not mention

    @property
    def changed(self) -> bool:
        return self.agents.changed or self.schedules.changed


async def apply_manifest(db: Database, manifest: Manifest, now_ms: int) -> FleetChanges:
    changes = FleetChanges()
    existing = {a.name: a for a in await db.agents.list()}
    for spec in manifest.agents:
        await _apply_agent(db, spec, existing.get(AgentName(spec.name)), changes.agents)
    listed = {spec.name for spec in manifest.agents}
    changes.unmanaged = sorted(name for name in existing if name not in listed)
    await _apply_schedules(db, manifest, listed, now_ms, changes.schedules)
    return changes


def agent_columns(spec: AgentSpec) -> dict[str, Any]:
    """What the manifest says about an agent, as store columns."""
    columns: dict[str, Any] = {
        "command": spec.command,
        "max_parallel_tasks": spec.max_parallel,
        "execution_timeout_s": spec.timeout_s,
        "max_backlog_depth": spec.max_backlog_depth,
        "enabled": spec.enabled,
        "tags": spec.tags,
        "success_exit_codes": spec.success_exit_codes,
        "max_attempts": spec.max_attempts,
        "retry_on_failure": spec.retry_on_failure,
    }
    if spec.url is not None:
        columns["url"] = spec.url
    return columns


async def _apply_agent(
    db: Database, spec: AgentSpec, current: Agent | None, out: KindChanges
) -> None:
    columns = agent_columns(spec)
    name = AgentName(spec.name)
    if current is None:
        url = columns.pop("url", None)
        await db.agents.create(name=name, url=url, **columns)
        out.created.append(name)
        return
    differing = {k: v for k, v in columns.items() if getattr(current, k) != v}
    if differing:
        await db.agents.update(name, **differing)
        out.updated.append(name)
    else:
        out.unchanged.append(name)


def schedule_fields(spec: ScheduleSpec, key: str) -> ScheduleFields:
    return ScheduleFields(
        agent=AgentName(spec.agent), cron=spec.cron, timezone=spec.timezone, input=spec.input,
        timeout_s=spec.timeout_s, overlap=spec.overlap, enabled=spec.enabled, name=key,
        max_attempts=spec.max_attempts, retry_on_failure=spec.retry_on_failure,
    )


async def _apply_schedules(
    db: Database, manifest: Manifest, agents: set[str], now_ms: int, out: KindChanges
) -> None:
    current: dict[str, Schedule] = {}
    for s in await db.schedules.list():
        if s.agent in agents and s.name is not None:
            current.setdefault(s.name, s)
    wanted = {}
    for index, spec in enumerate(manifest.schedules):
        key = schedule_key(spec, index)
        wanted[key] = schedule_fields(spec, key)
    for key, fields in wanted.items():
        existing = current.get(key)
        if existing is None or existing.agent != fields.agent:
            if existing is not None:
                await db.schedules.delete(existing.id)
            await create_schedule(db, fields, now_ms)
            out.created.append(key)
            continue
        changes = {k: v for k, v in _columns(fields).items() if getattr(existing, k) != v}
        if changes:
            await update_schedule(db, existing.id, changes, now_ms)
            out.updated.append(key)
        else:
            out.unchanged.append(key)
    for s in await db.schedules.list():
        if s.agent in agents and (s.name is None or s.name not in wanted):
            await db.schedules.delete(s.id)
            out.deleted.append(s.name or s.id)


def _columns(fields: ScheduleFields) -> dict[str, Any]:
    return {
        "cron": fields.cron, "timezone": fields.timezone, "input": fields.input,
        "timeout_s": fields.timeout_s, "overlap": fields.overlap, "enabled": fields.enabled,
        "max_attempts": fields.max_attempts, "retry_on_failure": fields.retry_on_failure,
    }
