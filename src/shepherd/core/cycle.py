"""Judging a cycle's rows one at a time, so that one bad row never stops the others.

A reconciler (watchdog, reaper) decides per row from a frozen snapshot. ``judge_each`` runs the
per-row decision for every item and turns an exception raised while judging one of them into a
``Fault`` naming that item, instead of letting it end the whole cycle; the controller logs and
counts faults, and the row is judged again next cycle.

Pure: no I/O, no clock. It must not catch ``BaseException`` (cancellation and interpreter exit
pass through).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class Fault:
    """One item that could not be handled: which, at which stage, and the error as text."""

    key: str
    stage: str  # "judge", "apply", "collect"
    error: str


@dataclass(frozen=True, slots=True)
class Judged(Generic[D]):
    decisions: tuple[D, ...] = ()
    faults: tuple[Fault, ...] = field(default_factory=tuple)


def judge_each(
    items: Iterable[T], judge: Callable[[T], D | None], key: Callable[[T], str]
) -> Judged[D]:
    """``judge(item)`` for each item; None means nothing to do; a raise becomes a ``Fault``."""
    decisions: list[D] = []
    faults: list[Fault] = []
    for item in items:
        try:
            decision = judge(item)
        except Exception as exc:  # isolate the row; the caller logs and counts the fault
            faults.append(Fault(key(item), "judge", describe(exc)))
            continue
        if decision is not None:
            decisions.append(decision)
    return Judged(tuple(decisions), tuple(faults))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
