"""The sentinel's lenient settings: defaults, overrides, and malformed values that fall back to
their defaults with a warning instead of stopping the observer."""

from __future__ import annotations

import logging

import pytest

from shepherd.app.sentinel import read_sentinel_config
from shepherd.sentinel.config import SentinelConfig, parse_sentinel_config


def test_the_defaults_are_off_a_minute_pytest_half_an_hour_and_thirty_seconds() -> None:
    config, warnings = parse_sentinel_config({})
    assert config == SentinelConfig(enabled=False, age_min_s=60, patterns=("pytest",),
                                    cooldown_s=1800, interval_s=30)
    assert warnings == ()


def test_every_variable_overrides_its_default() -> None:
    config, warnings = parse_sentinel_config({
        "SHEPHERD_SENTINEL_ENABLED": "true", "SHEPHERD_SENTINEL_AGE_MIN_S": "900",
        "SHEPHERD_SENTINEL_PATTERNS": " pytest , coverage run,,", "SHEPHERD_SENTINEL_COOLDOWN_S":
        "600", "SHEPHERD_SENTINEL_INTERVAL_S": "5",
    })
    assert config == SentinelConfig(True, 900, ("pytest", "coverage run"), 600, 5)
    assert warnings == ()


@pytest.mark.parametrize(("word", "enabled"), [
    ("1", True), ("on", True), ("YES", True), ("0", False), ("off", False), ("", False),
])
def test_enabled_takes_the_usual_boolean_words(word: str, enabled: bool) -> None:
    assert parse_sentinel_config({"SHEPHERD_SENTINEL_ENABLED": word})[0].enabled is enabled


@pytest.mark.parametrize(("name", "value"), [
    ("ENABLED", "maybe"), ("AGE_MIN_S", "abc"), ("AGE_MIN_S", "-1"), ("AGE_MIN_S", "nan"),
    ("PATTERNS", " , ,"), ("COOLDOWN_S", ""), ("COOLDOWN_S", "0"), ("COOLDOWN_S", "inf"),
    ("INTERVAL_S", "0"), ("INTERVAL_S", "30s"),
])
def test_a_malformed_value_falls_back_to_its_default_with_a_warning_naming_it(
    name: str, value: str
) -> None:
    config, warnings = parse_sentinel_config({f"SHEPHERD_SENTINEL_{name}": value})
    assert config == SentinelConfig()
    [warning] = warnings
    assert f"SHEPHERD_SENTINEL_{name}={value!r}" in warning and "using the default" in warning


def test_several_malformed_values_each_warn_and_the_good_ones_still_apply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="shepherd.sentinel"):
        config = read_sentinel_config({
            "SHEPHERD_SENTINEL_ENABLED": "yes", "SHEPHERD_SENTINEL_AGE_MIN_S": "ten",
            "SHEPHERD_SENTINEL_COOLDOWN_S": "-5", "SHEPHERD_SENTINEL_PATTERNS": "vitest",
        })
    assert config == SentinelConfig(enabled=True, patterns=("vitest",))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert any("AGE_MIN_S='ten'" in line and "default 60" in line for line in lines)
    assert any("COOLDOWN_S='-5'" in line and "default 1800" in line for line in lines)
