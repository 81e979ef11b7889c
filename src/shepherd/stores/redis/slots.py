"""Capacity slots: a per-agent ZSET of execution ids plus one hash per slot (DESIGN.md section 4).

Guarantees: an agent never holds more than ``max_parallel`` slots (the check and the add are one
script); a release removes only the named member and reports whether it did, so only a real
removal can trigger a drain; slot hashes expire ``timeout_s + 300`` s after acquisition.
Must not: decide which slots are stale or missing — maintenance re-reads SQL and asks
``core.reclaim``; ``restore`` and ``release_orphan_hash`` only carry out its decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import cast

from redis.asyncio import Redis

from shepherd.core.timeouts import slot_ttl_s
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.scripts import Scripts


class AcquireResult(IntEnum):
    FULL = 0
    ACQUIRED = 1
    ALREADY_HELD = 2
    STALE_EPOCH = 3  # Redis lost or changed its data since the caller's epoch: nothing done


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """One execution a dispatcher pass wants a slot for."""

    execution_id: str
    timeout_s: int


class ReleaseResult(IntEnum):
    NOT_HELD = 0
    RELEASED = 1


class OrphanResult(IntEnum):
    """Return codes of slot_orphan_release.lua."""

    NOT_ORPHAN = 0
    REMOVED = 1


class RestoreResult(IntEnum):
    """Return codes of slot_restore.lua."""

    PRESENT = 0
    RESTORED = 1


class SlotStore:
    def __init__(self, client: Redis, keys: Keys, scripts: Scripts) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts

    async def acquire(
        self, agent: str, execution_id: str, *, max_parallel: int, timeout_s: int, now_ms: int,
        holder: str, epoch: str,
    ) -> AcquireResult:
        """Take a slot, only while Redis still carries ``epoch`` (the one the caller verified
        against SQL): a flush between the check and this call can never overbook the agent."""
        [result] = await self.acquire_many(agent, [SlotRequest(execution_id, timeout_s)],
                                           max_parallel=max_parallel, now_ms=now_ms,
                                           holder=holder, epoch=epoch)
        return result

    async def acquire_many(
        self, agent: str, requests: Sequence[SlotRequest], *, max_parallel: int, now_ms: int,
        holder: str, epoch: str,
    ) -> list[AcquireResult]:
        """``acquire`` for each of ``requests`` in order, in one script; one result each."""
        if not requests:
            return []
        args: list[object] = [max_parallel, now_ms, holder, epoch]
        for r in requests:
            args += [r.execution_id, r.timeout_s, slot_ttl_s(r.timeout_s)]
        async with translated("acquire slot"):
            codes = await self._scripts.run(
                "slot_acquire",
                [self._keys.slots(agent), self._keys.epoch(),
                 *(self._keys.slot(agent, r.execution_id) for r in requests)],
                args,
            )
        return [AcquireResult(int(code)) for code in codes]

    async def release(self, agent: str, execution_id: str) -> bool:
        """True only when this call removed the slot."""
        [released] = await self.release_many(agent, [execution_id])
        return released

    async def release_many(self, agent: str, execution_ids: Sequence[str]) -> list[bool]:
        """``release`` for each of ``execution_ids``, in one script; True per slot removed."""
        if not execution_ids:
            return []
        async with translated("release slot"):
            codes = await self._scripts.run(
                "slot_release",
                [self._keys.slots(agent), *(self._keys.slot(agent, e) for e in execution_ids)],
                list(execution_ids),
            )
        return [ReleaseResult(int(code)) is ReleaseResult.RELEASED for code in codes]

    async def holders(self, agent: str) -> dict[str, int]:
        """Execution id -> acquired_at_ms, for every slot of ``agent``."""
        async with translated("read slots"):
            pairs = cast(
                "list[tuple[str, float]]",
                await self._client.zrange(self._keys.slots(agent), 0, -1, withscores=True),
            )
        return {str(member): int(score) for member, score in pairs}

    async def count(self, agent: str) -> int:
        async with translated("count slots"):
            return int(await self._client.zcard(self._keys.slots(agent)))

    async def reclaim_candidates(
        self, agent: str, older_than_ms: int, newer_than_ms: int
    ) -> list[str]:
        """Members whose hash expired, or acquired before ``older_than_ms`` or after
        ``newer_than_ms`` (a score in the future never ages into a candidate otherwise).

        Removes nothing: maintenance re-reads each row before releasing. The member list is read
        first so the script can be handed every hash key it looks at.
        """
        members = list(await self.holders(agent))
        if not members:
            return []
        async with translated("find stale slots"):
            found = await self._scripts.run(
                "slot_reclaim_candidates",
                [self._keys.slots(agent), *(self._keys.slot(agent, eid) for eid in members)],
                [older_than_ms, newer_than_ms, *members],
            )
        return [str(eid) for eid in found]

    async def hashes(self) -> list[tuple[str, str]]:
        """``(agent, execution_id)`` of every slot hash in Redis, whichever agent it names."""
        async with translated("scan slot hashes"):
            found = [k async for k in self._client.scan_iter(
                match=self._keys.all_slots_pattern(), count=1000)]
        return [parsed for k in found if (parsed := self._keys.parse_slot(str(k))) is not None]

    async def release_orphan_hash(self, agent: str, execution_id: str) -> bool:
        """Delete the slot hash of ``execution_id`` if its member is gone; True if deleted."""
        async with translated("release orphan slot hash"):
            code = await self._scripts.run(
                "slot_orphan_release",
                [self._keys.slots(agent), self._keys.slot(agent, execution_id)], [execution_id],
            )
        return OrphanResult(int(code)) is OrphanResult.REMOVED

    async def restore(
        self, agent: str, execution_id: str, *, acquired_at_ms: int, timeout_s: int, holder: str
    ) -> bool:
        """Give a running execution back the slot Redis lost; True if this call restored it."""
        async with translated("restore slot"):
            code = await self._scripts.run(
                "slot_restore",
                [self._keys.slots(agent), self._keys.slot(agent, execution_id)],
                [execution_id, acquired_at_ms, timeout_s, slot_ttl_s(timeout_s), holder],
            )
        return RestoreResult(int(code)) is RestoreResult.RESTORED

    async def forget_agent(self, agent: str) -> None:
        """Delete every key of a deleted agent: slots, slot hashes, breaker, cursor, lease."""
        async with translated("forget agent"):
            doomed = [k async for k in self._client.scan_iter(match=self._keys.slot_pattern(agent))]
            doomed.extend(self._keys.agent_keys(agent))
            await self._client.delete(*doomed)
