"""When Redis is trusted with the slots: the epoch verdict, every case."""

from __future__ import annotations

import pytest

from shepherd.core.epoch import EpochReading, EpochVerdict, decide_epoch

OURS = "sql-1"


@pytest.mark.parametrize(
    ("epoch", "run_id", "instance", "verdict"),
    [
        ("r1", "r1", OURS, EpochVerdict.SEALED),
        (None, "r1", OURS, EpochVerdict.REBUILD),  # the epoch key is gone
        (None, "r1", None, EpochVerdict.REBUILD),  # FLUSHALL, or a fresh server: all gone
        ("r1", "r2", OURS, EpochVerdict.REBUILD),  # restarted (AOF) or failed over
        ("r1", "r1", None, EpochVerdict.REBUILD),  # the instance mirror is gone
        ("r1", "r1", "sql-2", EpochVerdict.FOREIGN),  # another store's Redis
        (None, "r1", "sql-2", EpochVerdict.FOREIGN),
    ],
)
def test_the_epoch_verdict(
    epoch: str | None, run_id: str, instance: str | None, verdict: EpochVerdict
) -> None:
    assert decide_epoch(EpochReading(epoch, run_id, instance), OURS) is verdict
