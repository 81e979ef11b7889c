"""Pure pieces of the API boundary: instant parsing and rendering, the error-to-status table."""

from __future__ import annotations

import pytest

from shepherd.api.errors import describe_request_errors, status_for
from shepherd.api.instants import parse_instant_ms, to_iso
from shepherd.errors import (
    AgentNotFound,
    AgentUnreachable,
    AlreadyExists,
    ConfigError,
    Forbidden,
    InvalidTransition,
    ManifestError,
    SqlStoreError,
    Unauthenticated,
)

T = 1_767_261_600_000  # 2026-01-01T10:00:00Z


@pytest.mark.parametrize("text", [
    "2026-01-01T10:00:00Z", "2026-01-01T10:00:00.000Z", "2026-01-01T11:00:00+01:00",
    "2026-01-01T10:00:00", "1767261600000", T,
])
def test_an_instant_is_read_from_iso_8601_or_epoch_milliseconds(text: object) -> None:
    assert parse_instant_ms(text) == T


@pytest.mark.parametrize("text", ["yesterday", "", "-5", True, 1.5, "99999999999999999999"])
def test_anything_else_is_a_value_error_saying_what_is_accepted(text: object) -> None:
    with pytest.raises(ValueError):
        parse_instant_ms(text)


def test_instants_render_as_iso_8601_with_z() -> None:
    assert to_iso(T + 7) == "2026-01-01T10:00:00.007Z"
    assert to_iso(None) is None


@pytest.mark.parametrize(("error", "status"), [
    (Unauthenticated("x"), 401), (Forbidden("x"), 403), (AgentNotFound("x"), 404),
    (AlreadyExists("x"), 409), (InvalidTransition("x"), 409), (ConfigError("x"), 422),
    (ManifestError("x"), 422), (SqlStoreError("x"), 503), (AgentUnreachable("x"), 503),
])
def test_each_error_family_has_one_status(error: Exception, status: int) -> None:
    assert status_for(error) == status  # type: ignore[arg-type]


def test_request_errors_name_the_path_of_each_problem() -> None:
    errors = [
        {"loc": ("body", "agents", 2, "max_parallel"), "msg": "Input should be >= 1"},
        {"loc": ("query", "since"), "msg": "Value error, not an instant"},
        {"loc": ("body", "colour"), "msg": "Extra inputs", "type": "extra_forbidden"},
    ]
    assert describe_request_errors(errors) == (
        "body.agents[2].max_parallel: Input should be >= 1; query.since: not an instant; "
        "body.colour: unknown field"
    )
