"""Finalizing one row: what an attempt can come to, and how long each of its steps may take.

A finalization is three completion steps, each bounded by its budget: read the result from the
runtime (``fetch``), store it with the status CAS and its completion webhook enqueued in the same
transaction (``store``), and tell the runtime it may forget the result (``ack``). The webhook
itself is delivered later by the outbox and never holds a finalization up. The finalizer runs the
steps under ``lease:finalize:{eid}``; the reaper runs the same steps on a silent finalizer's
behalf (``Completion`` says how it went) and relies on the budgets: a healthy finalization ends
within ``CompletionBudget.total_s``, so one still unfinished well past it has an owner that is
stuck or gone (``core.reaper`` checks the grace and the backstop against the budget).

Pure: values and constants only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# A runtime answers a result read in milliseconds; fifteen seconds carries a 10 MiB output tail
# over a slow link, and bounds how long a runtime that accepts and never answers holds a row.
DEFAULT_FETCH_BUDGET_S = 15.0
# One SQL transaction, cut short by cancelling it. A SQLite writer waiting for the lock cannot
# be interrupted and returns within SQLite's busy timeout (15 s): this stays above that.
DEFAULT_STORE_BUDGET_S = 30.0
# An ack is a DELETE answered in milliseconds; a lost one costs nothing (results are retained
# until acked, and a later registry pass acks terminal rows), so it gets little time.
DEFAULT_ACK_BUDGET_S = 10.0
# A finalizer's lease outlives a missed heartbeat (one every third of it); a finalizer that died
# holding one blocks its row this long before another may take it over.
DEFAULT_FINALIZE_LEASE_TTL_S = 30.0
# The result a runtime no longer has is said to be lost under this error class.
RESULT_LOST = "result_lost"


class Completion(StrEnum):
    """How one attempt to finalize a row went."""

    FINALIZED = "finalized"  # this attempt's CAS won: the row is terminal
    LOST = "lost"  # the CAS found the row already moved on: someone else ended it
    UNREACHABLE = "unreachable"  # the result could not be read now (agent error, budget): later
    RESULT_GONE = "result_gone"  # the runtime no longer has the result (asked for a required one)
    UNSTORABLE = "unstorable"  # the store refused the result too often: the row ended failed


@dataclass(frozen=True, slots=True)
class CompletionBudget:
    """The most each completion step may take, in seconds (each is enforced on its own)."""

    fetch_s: float = DEFAULT_FETCH_BUDGET_S
    store_s: float = DEFAULT_STORE_BUDGET_S
    ack_s: float = DEFAULT_ACK_BUDGET_S

    @property
    def total_s(self) -> float:
        """The longest a finalization that takes every step to its budget can last."""
        return self.fetch_s + self.store_s + self.ack_s

    @property
    def largest_s(self) -> float:
        return max(self.fetch_s, self.store_s, self.ack_s)

    def describe(self) -> str:
        return (f"{self.total_s:g} s (fetch {self.fetch_s:g} + store {self.store_s:g} "
                f"+ ack {self.ack_s:g})")
