"""What each controller did last, as any replica can read it.

The controller loop writes ``controller:{c}:last_report`` (JSON: ``tick_at_ms``, ``duration_ms``
and a summary of the report) at the end of every pass: ``read`` gives every named controller's
summary with its lease holder in one pipelined round trip, ``last`` one controller's summary. A
controller whose status view needs more than counts (which agents were skipped, and why) saves its
own JSON detail at ``controller:{c}:last_detail`` (``save_detail`` / ``detail``).
Must not: interpret reports (the API and the dashboard do).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    name: str
    tick_at_ms: int | None
    duration_ms: float | None
    report: dict[str, Any] = field(default_factory=dict)
    leader: str | None = None  # the lease holder of a singleton; None for per-replica loops


class ControllerReports:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def read(self, names: Sequence[str]) -> list[ControllerStatus]:
        if not names:
            return []
        async with translated("read controller reports"), \
                self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(self._keys.controller_report(name))
                pipe.get(self._keys.controller_lease(name))
            replies = await pipe.execute()
        return [_status(name, replies[2 * i], replies[2 * i + 1]) for i, name in enumerate(names)]

    async def last(self, controller: str) -> dict[str, Any] | None:
        """The last pass's summary, or None before the first (or if it is unreadable)."""
        return await self._read(self._keys.controller_report(controller))

    async def save_detail(self, controller: str, detail: dict[str, Any]) -> None:
        async with translated(f"save the last detail of {controller}"):
            await self._client.set(self._keys.controller_detail(controller),
                                   json.dumps(detail, sort_keys=True))

    async def detail(self, controller: str) -> dict[str, Any] | None:
        return await self._read(self._keys.controller_detail(controller))

    async def _read(self, key: str) -> dict[str, Any] | None:
        async with translated(f"read {key}"):
            raw = await self._client.get(key)
        if raw is None:
            return None
        try:
            found = json.loads(raw)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None


def _status(name: str, raw: str | None, leader: str | None) -> ControllerStatus:
    try:
        summary = json.loads(raw) if raw else {}
    except ValueError:
        summary = {}
    if not isinstance(summary, dict):
        summary = {}
    tick = summary.get("tick_at_ms")
    duration = summary.get("duration_ms")
    report = summary.get("report")
    return ControllerStatus(
        name=name,
        tick_at_ms=int(tick) if isinstance(tick, int | float) else None,
        duration_ms=float(duration) if isinstance(duration, int | float) else None,
        report=report if isinstance(report, dict) else {},
        leader=leader,
    )
