"""What each controller did last, as any replica can read it: the loop's summary of its last
pass (``controller:{c}:last_report``) and who holds its lease (``lease:controller:{c}``).

One pipelined round trip for every controller. Must not: write anything.
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
