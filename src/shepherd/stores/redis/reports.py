"""Reading what a controller's last pass reported, for status views on any replica.

The controller loop writes ``controller:{c}:last_report`` (JSON: ``tick_at_ms``, ``duration_ms``
and a summary of the report) at the end of every pass; this store reads it back.
Must not: write reports (the loop does) or interpret them (the API does).
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
        async with translated(f"read the last report of {controller}"):
            raw = await self._client.get(self._keys.controller_report(controller))
        if raw is None:
            return None
        try:
            found = json.loads(raw)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None
