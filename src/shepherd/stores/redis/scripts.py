"""The Lua scripts, loaded from the package's ``lua/`` directory and registered once per client.

Each ``.lua`` file is one atomic operation with a KEYS/ARGV/returns header; callers pass every
key it touches in KEYS (built by ``keys.Keys``) and map its integer return code to an enum
(``slots.AcquireResult``, ``slots.ReleaseResult``, ``leases.LeaseResult``...).

Must not: build keys, interpret return codes, or catch redis errors; the stores do that.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

SCRIPT_NAMES = (
    "slot_acquire", "slot_release", "slot_reclaim_candidates", "slot_orphan_release",
    "slot_restore",
    "lease_acquire", "lease_renew", "lease_release",
    "circuit_failure", "circuit_success", "circuit_probe_begin", "circuit_probe_end",
    "circuit_reset",
    "health_unreachable", "health_reachable", "reconcile_request", "reconcile_take",
)


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua``, read from the installed package (works from a wheel)."""
    return resources.files("shepherd.stores.redis").joinpath("lua", f"{name}.lua").read_text(
        encoding="utf-8"
    )


class Scripts:
    """The registered scripts of one client: ``await scripts.run(name, keys, args)``.

    ``register_script`` sends EVALSHA and falls back to loading the script on NOSCRIPT, so a
    server restart (the embedded one after a crash) needs no re-registration here.
    """

    def __init__(self, client: Redis) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(script_source(name)) for name in SCRIPT_NAMES
        }

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)
