"""Following an append-only table by id without missing rows that commit out of order.

A follower reads ``id > last_seq`` again and again. On PostgreSQL, ids come from a sequence when a
row is inserted, not when it commits: a transaction holding id 41 may commit after one holding
id 42, so a follower that saw 42 and moved on would never see 41. ``advance_cursor`` remembers
such holes for ``gap_wait_ms``: the next reads ask for them too (``id > last_seq OR id IN
gaps``). A hole still empty after the wait belonged to a transaction that rolled back, and is
forgotten. SQLite has one writer at a time, so its holes are only rollbacks.

Guarantees: the cursor never moves backwards; a hole is asked for until it is filled or
``gap_wait_ms`` passed since it was noticed; at most ``MAX_GAPS`` holes are tracked (the oldest
are given up first), so a follower's query stays bounded. Pure: the caller passes ``now_ms``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Transactions that write an event are short (a CAS and an insert): a hole older than this
# belonged to one that rolled back.
DEFAULT_GAP_WAIT_MS = 5_000
# Holes appear one per concurrent writer at most; this many means something else is wrong, and
# the query must stay small whatever happens.
MAX_GAPS = 1_000


@dataclass(frozen=True, slots=True)
class FeedCursor:
    last_seq: int = 0
    # seq -> when it was first noticed missing (epoch ms)
    gaps: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))


def advance_cursor(
    cursor: FeedCursor, seen: Iterable[int], now_ms: int, gap_wait_ms: int = DEFAULT_GAP_WAIT_MS
) -> FeedCursor:
    """The cursor after reading ``seen`` (the ids a read returned, in any order)."""
    seen_set = set(seen)
    gaps = {seq: at for seq, at in cursor.gaps.items() if seq not in seen_set}
    last = cursor.last_seq
    for seq in sorted(s for s in seen_set if s > cursor.last_seq):
        gaps.update(dict.fromkeys(range(max(last + 1, seq - MAX_GAPS), seq), now_ms))
        last = seq
    gaps = {seq: at for seq, at in gaps.items() if now_ms - at < gap_wait_ms}
    if len(gaps) > MAX_GAPS:
        gaps = dict(sorted(gaps.items())[-MAX_GAPS:])
    return FeedCursor(last, MappingProxyType(gaps))
