"""The breaker classification table, exhaustively, against DESIGN.md section 7."""

from __future__ import annotations

import itertools

import pytest

from shepherd.core.classification import (
    CLASSIFICATION,
    TransportKind,
    Verdict,
    classify,
    surfaces_as_dropped,
)

K, V = TransportKind, Verdict


def expected(kind: TransportKind, probe: bool, grace: bool) -> Verdict:
    if kind is K.RESPONSE:
        return V.SUCCESS
    if kind in (K.CONNECT_FAILED, K.CONNECT_TIMEOUT):
        return V.NEUTRAL if grace else V.FAILURE
    if kind is K.RESET:
        return V.NEUTRAL
    return V.FAILURE if probe else V.NEUTRAL  # DROPPED, OTHER_TIMEOUT


@pytest.mark.parametrize(
    ("kind", "probe", "grace"), list(itertools.product(TransportKind, (False, True), (False, True)))
)
def test_every_outcome_has_the_designed_verdict(
    kind: TransportKind, probe: bool, grace: bool
) -> None:
    assert classify(kind, probe, grace) is expected(kind, probe, grace)


def test_the_table_is_complete() -> None:
    assert len(CLASSIFICATION) == len(TransportKind) * 4


@pytest.mark.parametrize(
    ("kind", "grace", "dropped"),
    [(K.DROPPED, False, True), (K.RESET, False, True), (K.CONNECT_FAILED, True, True),
     (K.CONNECT_FAILED, False, False), (K.OTHER_TIMEOUT, True, False), (K.RESPONSE, True, False)],
)
def test_which_outcomes_surface_as_a_dropped_connection(
    kind: TransportKind, grace: bool, dropped: bool
) -> None:
    assert surfaces_as_dropped(kind, grace) is dropped
