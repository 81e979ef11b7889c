"""Following a table by id: holes are waited for, then given up; the cursor never goes back."""

from __future__ import annotations

import pytest

from shepherd.core.feed import MAX_GAPS, FeedCursor, advance_cursor

NOW = 1_700_000_000_000


def cursor(last: int, **gaps_noticed_at: int) -> FeedCursor:
    return FeedCursor(last, {int(k[1:]): v for k, v in gaps_noticed_at.items()})


@pytest.mark.parametrize(
    ("before", "seen", "now", "last", "gaps"),
    [
        # contiguous ids: no hole
        (cursor(0), [1, 2, 3], NOW, 3, {}),
        # nothing read: nothing changes
        (cursor(5), [], NOW, 5, {}),
        # 4 and 5 were allocated but not committed yet: remembered as holes
        (cursor(3), [6, 7], NOW, 7, {4: NOW, 5: NOW}),
        # order of the read does not matter
        (cursor(3), [7, 6], NOW, 7, {4: NOW, 5: NOW}),
        # a hole that commits later is filled and forgotten
        (cursor(7, g4=NOW, g5=NOW), [5], NOW + 100, 7, {4: NOW}),
        # a hole older than the wait was a rollback: given up
        (cursor(7, g4=NOW), [], NOW + 5_000, 7, {}),
        # ...but not a moment before
        (cursor(7, g4=NOW), [], NOW + 4_999, 7, {4: NOW}),
        # an old id read again never moves the cursor back
        (cursor(9), [2], NOW, 9, {}),
        # holes keep the instant they were first noticed
        (cursor(7, g4=NOW), [9], NOW + 1_000, 9, {4: NOW, 8: NOW + 1_000}),
    ],
)
def test_advancing_the_cursor(
    before: FeedCursor, seen: list[int], now: int, last: int, gaps: dict[int, int]
) -> None:
    after = advance_cursor(before, seen, now)
    assert (after.last_seq, dict(after.gaps)) == (last, gaps)


def test_a_huge_jump_tracks_only_the_newest_holes() -> None:
    after = advance_cursor(FeedCursor(0), [10 * MAX_GAPS], NOW)
    assert len(after.gaps) == MAX_GAPS
    assert min(after.gaps) == 9 * MAX_GAPS


def test_too_many_holes_give_up_the_oldest_first() -> None:
    many = FeedCursor(2 * MAX_GAPS, {i: NOW for i in range(1, MAX_GAPS + 1)})
    after = advance_cursor(many, [2 * MAX_GAPS + 2], NOW)
    assert len(after.gaps) == MAX_GAPS
    assert 2 * MAX_GAPS + 1 in after.gaps and 1 not in after.gaps
