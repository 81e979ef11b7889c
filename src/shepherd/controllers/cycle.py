"""Carrying out a reconciler's per-item work side by side, each item's faults isolated.

A reconciler (watchdog, reaper) probes agents and applies row decisions concurrently. ``run_each``
runs ``work(item)`` for every item under a concurrency bound; an exception from one item is
logged with that item's key and returned as a ``core.cycle.Fault`` (the controller counts it), and
the other items go on. The decisions themselves are judged with ``core.cycle.judge_each``.

Must not: swallow ``asyncio.CancelledError`` (it is not an ``Exception``), retry, or order the
items' side effects (each item's work is independent by construction: one row, one agent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from shepherd.core.cycle import Fault, describe

T = TypeVar("T")
R = TypeVar("R")

# Enough to finish a burst of a few hundred rows in seconds without flooding SQL or a runtime.
DEFAULT_CONCURRENCY = 16


async def run_each(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    key: Callable[[T], str],
    *,
    stage: str,
    log: logging.Logger,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> tuple[dict[str, R], list[Fault]]:
    """``work(item)`` for every item; results by key, and the faults of the items that raised."""
    limit = asyncio.Semaphore(concurrency)
    results: dict[str, R] = {}
    faults: list[Fault] = []

    async def one(item: T) -> None:
        async with limit:
            try:
                results[key(item)] = await work(item)
            except Exception as exc:  # isolate the item: the cycle goes on for the others
                log.warning("%s of %s failed: %s", stage, key(item), describe(exc),
                            exc_info=exc)
                faults.append(Fault(key(item), stage, describe(exc)))

    await asyncio.gather(*(one(item) for item in items))
    return results, faults
