"""The throughput chart's geometry: one stacked bar per minute, a readable axis, a text summary."""

from __future__ import annotations

import pytest

from shepherd.core.throughput import MINUTE_MS, MinuteCounts
from shepherd.web.chart import HEIGHT, throughput_chart

START = 1_795_824_000_000  # 00:00 UTC


def minutes(*counts: tuple[int, int, int]) -> list[MinuteCounts]:
    return [MinuteCounts(START + i * MINUTE_MS, *c) for i, c in enumerate(counts)]


def test_each_minute_is_a_bar_stacked_succeeded_failed_other() -> None:
    chart = throughput_chart(minutes((6, 3, 1), (0, 0, 0), (2, 0, 0)))
    assert len(chart.bars) == 3
    busy, idle, small = chart.bars
    assert [s.kind for s in busy.segments] == ["succeeded", "failed", "other"]
    assert idle.segments == ()
    heights = [s.height for s in busy.segments]
    assert heights[0] == pytest.approx(2 * heights[1]) == pytest.approx(6 * heights[2])
    bottom = busy.segments[0].y + busy.segments[0].height
    assert bottom == pytest.approx(chart.plot_bottom)
    assert busy.segments[1].y + busy.segments[1].height == pytest.approx(busy.segments[0].y)
    assert small.segments[0].height == pytest.approx(heights[0] / 3)
    assert busy.x < idle.x < small.x
    assert "6 succeeded, 3 failed, 1 cancelled or skipped" in busy.title


@pytest.mark.parametrize(("peak", "top"), [(0, 2), (1, 2), (2, 2), (3, 5), (7, 10), (11, 20),
                                           (49, 50), (51, 100), (101, 200)])
def test_the_axis_ends_at_a_round_number_above_the_busiest_minute(peak: int, top: int) -> None:
    chart = throughput_chart(minutes((peak, 0, 0)))
    assert [t.label for t in chart.y_ticks] == ["0", str(top // 2), str(top)]
    assert all(0 <= t.at <= HEIGHT for t in chart.y_ticks)


def test_time_labels_every_quarter_hour_and_a_summary_for_screen_readers() -> None:
    chart = throughput_chart(minutes(*[(1, 0, 0)] * 59, (4, 2, 0)))
    assert [t.label for t in chart.x_ticks] == ["00:00", "00:15", "00:30", "00:45"]
    assert chart.summary == ("65 executions finished in the last hour, 2 of them failed; "
                             "busiest minute 00:59 UTC with 6.")
    assert throughput_chart(minutes((0, 0, 0))).summary == (
        "0 executions finished in the last hour, 0 of them failed.")
