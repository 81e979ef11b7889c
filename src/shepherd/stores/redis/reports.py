"""What a controller's last pass reported, for status views on any replica.

The controller loop writes ``controller:{c}:last_report`` (JSON: ``tick_at_ms``, ``duration_ms``
and a summary of the report) at the end of every pass; ``last`` reads it back. A controller whose
status view needs more than counts (which agents were skipped, and why) saves its own JSON detail
at ``controller:{c}:last_detail`` (``save_detail`` / ``detail``).
Must not: interpret reports (the API does).
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys


class ControllerReports:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

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
