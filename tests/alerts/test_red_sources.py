"""Which sources are due for an alert evaluation: red ones, ones not yet evaluated here, and
ones that were red when last evaluated; a source green now and then is skipped."""

from __future__ import annotations

from shepherd.alerts.red_sources import RedSources


def test_a_source_is_evaluated_once_then_only_while_or_just_after_red() -> None:
    red = RedSources()
    assert red.due("a", False)  # never evaluated here: an old incident may be open
    red.record("a", False)
    assert not red.due("a", False)
    assert red.due("a", True)
    red.record("a", True)
    assert red.due("a", False)  # red last time: its recovery must be decided
    red.record("a", False)
    assert not red.due("a", False)
    assert red.due("b", False)
