"""What every controller offers the generic loop, and the wake-up signal between them."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

# A lease renewed this recently (monotonic time: a process frozen meanwhile renews on waking) is
# not renewed again before the next pass. Passes woken by events can come hundreds of times a
# second; the leases last seconds, and between two idle passes leadership already goes unchecked
# for a whole interval.
LEASE_RECHECK_S = 0.25
# The agents as a pass reads them: at most this old, and never older than this process's own last
# change to any (``AgentRepository.recent``). A change on another replica shows within it, as a
# lease change does within LEASE_RECHECK_S.
AGENTS_REREAD_S = 0.25


class Controller(Protocol):
    """A controller: one idempotent pass at a time. ``run_once`` returns a report for tests/logs."""

    name: str

    async def run_once(self) -> object: ...


class Wakeup:
    """A level-triggered nudge: ``poke()`` makes the next ``wait()`` return at once.

    Lets the monitor tell the finalizer, or an API call tell the dispatcher, that there is work,
    without either importing the other; ``app.py`` hands the same ``Wakeup`` to both.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def poke(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s``; True when poked. Clears the signal either way."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()


class RecentRenewals:
    """When this process last renewed (asked to renew) each lease it holds, so a pass within
    ``LEASE_RECHECK_S`` of it need not renew again."""

    def __init__(self) -> None:
        self._asked_at: dict[str, float] = {}

    def fresh(self, lease: str) -> bool:
        return time.monotonic() - self._asked_at.get(lease, float("-inf")) < LEASE_RECHECK_S

    def held(self, lease: str, asked_at: float) -> None:
        """Renewed or taken: counted from when it was asked, the lease runs from before that."""
        self._asked_at[lease] = asked_at

    def lost(self, lease: str) -> None:
        self._asked_at.pop(lease, None)
