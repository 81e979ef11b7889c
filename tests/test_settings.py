"""Settings: defaults, environment, and one readable line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from shepherd.errors import ConfigError
from shepherd.settings import load_settings


def test_defaults_are_embedded_stores_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHEPHERD_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'shepherd.db'}"
    assert settings.default_max_parallel == 3
    assert settings.default_execution_timeout_s == 900
    assert settings.default_max_backlog_depth == 50


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEPHERD_DEFAULT_MAX_PARALLEL", "7")
    monkeypatch.setenv("SHEPHERD_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    settings = load_settings()
    assert settings.default_max_parallel == 7
    assert settings.resolved_database_url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("SHEPHERD_DEFAULT_MAX_PARALLEL", "lots", ": input should be a valid integer"),
        ("SHEPHERD_DEFAULT_MAX_PARALLEL", "0", ": input should be greater than or equal to 1"),
        ("SHEPHERD_PORT", "70000", ": input should be less than or equal to 65535"),
        ("SHEPHERD_LOG_LEVEL", "chatty", ": string should match pattern"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.message.startswith(var + needle)
    assert "\n" not in info.value.message


def test_a_bad_secret_setting_names_the_variable_but_never_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHEPHERD_ALERT_SLACK_WEBHOOK_URL", "hooks.slack.test/T0/B0/secret-part")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "SHEPHERD_ALERT_SLACK_WEBHOOK_URL" in caught.value.message
    assert "secret-part" not in caught.value.message and "secret-part" not in repr(caught.value)
    assert caught.value.__cause__ is None


def test_alert_sinks_are_off_unless_set_and_blank_means_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHEPHERD_ALERT_WEBHOOK_URL", " ")
    monkeypatch.setenv("SHEPHERD_ALERT_ALERTMANAGER_URL", "http://am:9093")
    settings = load_settings()
    assert (settings.alert_slack_webhook_url, settings.alert_webhook_url) == (None, None)
    assert settings.alert_alertmanager_url == "http://am:9093"
    assert "am:9093" not in repr(settings)
