"""What every controller offers the generic loop, and the wake-up signal between them."""

from __future__ import annotations

import asyncio
from typing import Protocol


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
