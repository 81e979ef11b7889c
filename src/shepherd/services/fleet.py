"""Making the fleet match a manifest.

``apply_manifest`` is idempotent: it creates and updates agents and schedules to match the
manifest, arms new schedules, and deletes schedules of manifest agents that the manifest no longer
lists. It never deletes an agent the manifest does not mention; those are reported as
``unmanaged``. A created agent starts with a closed circuit, whatever was left under its name.
Applying the same manifest twice reports no change the second time. With ``dry_run`` it reports
the same changes and writes nothing.
A local agent (``command``, no ``url``) keeps the URL its runtime registered: the manifest does
not know it, so it must not clear it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shepherd.core.ids import AgentName
from shepherd.core.models import Agent, Schedule
from shepherd.manifest.schema import AgentSpec, Manifest, ScheduleSpec, schedule_key
from shepherd.services.circuits import reset_for_new_url
from shepherd.services.schedules import ScheduleFields, create_schedule, update_schedule
from shepherd.stores.redis.circuits import CircuitStore
from shepherd.stores.sql.database import Database

APPLY_ACTOR = "fleet apply"  # who the fleet's events name for a manifest's changes

# Store column -> the manifest's (and the API's) name for it.
MANIFEST_NAMES = {"max_parallel_tasks": "max_parallel", "execution_timeout_s": "timeout_s"}


@dataclass(slots=True)
class KindChanges:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # Updated name -> each changed field as ``field: old -> new``, in the manifest's words.
    details: dict[str, list[str]] = field(default_factory=dict)

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


async def apply_manifest(
    db: Database, manifest: Manifest, now_ms: int, circuits: CircuitStore | None = None, *,
    dry_run: bool = False
) -> FleetChanges:
    changes = FleetChanges()
    existing = {a.name: a for a in await db.agents.list()}
    write = not dry_run
    for spec in manifest.agents:
        await _apply_agent(db, spec, existing.get(AgentName(spec.name)), changes.agents, write,
                           circuits, now_ms)
    if circuits is not None and write:
        for name in changes.agents.created:
            await circuits.clear(name)
    listed = {spec.name for spec in manifest.agents}
    changes.unmanaged = sorted(name for name in existing if name not in listed)
    await _apply_schedules(db, manifest, listed, now_ms, changes.schedules, write)
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
        "require_input_read": spec.require_input_read,
        "max_attempts": spec.max_attempts,
        "retry_on_failure": spec.retry_on_failure,
    }
    if spec.url is not None:
        columns["url"] = spec.url
    return columns


async def _apply_agent(
    db: Database, spec: AgentSpec, current: Agent | None, out: KindChanges, write: bool,
    circuits: CircuitStore | None, now_ms: int,
) -> None:
    columns = agent_columns(spec)
    name = AgentName(spec.name)
    if current is None:
        url = columns.pop("url", None)
        if write:
            await db.agents.create(name=name, url=url, actor=APPLY_ACTOR, **columns)
        out.created.append(name)
        return
    differing = {k: v for k, v in columns.items() if getattr(current, k) != v}
    if differing:
        if write:
            await db.agents.update(name, actor=APPLY_ACTOR, **differing)
            if "url" in differing and circuits is not None:
                await reset_for_new_url(db, circuits, name, actor=APPLY_ACTOR, now_ms=now_ms)
        out.updated.append(name)
        out.details[name] = describe_changes(current, differing)
    else:
        out.unchanged.append(name)


def schedule_fields(spec: ScheduleSpec, key: str) -> ScheduleFields:
    return ScheduleFields(
        agent=AgentName(spec.agent), cron=spec.cron, timezone=spec.timezone, input=spec.input,
        timeout_s=spec.timeout_s, overlap=spec.overlap, enabled=spec.enabled, name=key,
        max_attempts=spec.max_attempts, retry_on_failure=spec.retry_on_failure,
    )


async def _apply_schedules(
    db: Database, manifest: Manifest, agents: set[str], now_ms: int, out: KindChanges,
    write: bool,
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
        await _apply_schedule(db, key, fields, current.get(key), now_ms, out, write)
    for s in await db.schedules.list():
        if s.agent in agents and (s.name is None or s.name not in wanted):
            if write:
                await db.schedules.delete(s.id)
            out.deleted.append(s.name or s.id)


async def _apply_schedule(
    db: Database, key: str, fields: ScheduleFields, existing: Schedule | None, now_ms: int,
    out: KindChanges, write: bool,
) -> None:
    if existing is None or existing.agent != fields.agent:
        if write:
            if existing is not None:
                await db.schedules.delete(existing.id)
            await create_schedule(db, fields, now_ms)
        out.created.append(key)
        return
    changes = {k: v for k, v in _columns(fields).items() if getattr(existing, k) != v}
    if not changes:
        out.unchanged.append(key)
        return
    if write:
        await update_schedule(db, existing.id, changes, now_ms)
    out.updated.append(key)
    out.details[key] = describe_changes(existing, changes)


def describe_changes(current: object, changes: dict[str, Any]) -> list[str]:
    """``max_parallel: 2 -> 4`` for each changed column, named as the manifest names it."""
    return [
        f"{MANIFEST_NAMES.get(column, column)}: {_shown(getattr(current, column))} -> "
        f"{_shown(value)}"
        for column, value in sorted(changes.items())
    ]


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "null" if value is None else str(value)


def _columns(fields: ScheduleFields) -> dict[str, Any]:
    return {
        "cron": fields.cron, "timezone": fields.timezone, "input": fields.input,
        "timeout_s": fields.timeout_s, "overlap": fields.overlap, "enabled": fields.enabled,
        "max_attempts": fields.max_attempts, "retry_on_failure": fields.retry_on_failure,
    }
