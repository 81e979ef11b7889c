"""Settings: one pydantic-settings model, read from ``SHEPHERD_*`` variables, built once in app.py.

``load_settings()`` turns any invalid value into one ``ConfigError`` line naming the variable and
what it accepts; nothing else reads the environment for Shepherd's configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shepherd.core.retry import DEFAULT_RETRY_BACKOFF_BASE_S, DEFAULT_RETRY_BACKOFF_MAX_S
from shepherd.core.timeouts import DEFAULT_EXECUTION_TIMEOUT_S
from shepherd.core.watchdog import (
    DEFAULT_AGENT_LOST_AFTER_S,
    DEFAULT_DISPATCH_GRACE_S,
    DEFAULT_HANDOVER_GRACE_S,
    DEFAULT_PROBE_TIMEOUT_S,
    DEFAULT_TIMEOUT_SLACK_S,
    DEFAULT_WATCHDOG_INTERVAL_S,
)
from shepherd.errors import ConfigError
from shepherd.stores.redis.keys import DEFAULT_PREFIX

ENV_PREFIX = "SHEPHERD_"

# Three concurrent children per agent: enough to overlap I/O-bound LLM runs on a laptop-sized host
# without starving it.
DEFAULT_MAX_PARALLEL = 3
# Fifty waiting runs per agent: a burst of cron misfires or API calls fits, a runaway loop does not.
DEFAULT_MAX_BACKLOG_DEPTH = 50
# A day in the backlog means nobody will want the result any more.
DEFAULT_MAX_QUEUE_AGE_S = 24 * 3600
# A slot without a running row is only reclaimed after this long, so the dispatcher's
# acquire-then-CAS window is never mistaken for a leak (invariant S-01).
DEFAULT_SLOT_RECLAIM_GRACE_S = 3.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path(".shepherd"), description="Where embedded stores live.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default SQLite under the data dir."
    )
    redis_url: str | None = Field(
        default=None, description="External Redis URL; default an embedded redis-server."
    )
    redis_prefix: str = Field(default=DEFAULT_PREFIX, min_length=1, description="Key prefix.")
    host: str = Field(default="127.0.0.1", description="Address the control plane listens on.")
    port: int = Field(default=8765, ge=1, le=65535, description="Port of the control plane.")
    default_execution_timeout_s: int = Field(default=DEFAULT_EXECUTION_TIMEOUT_S, ge=1)
    default_max_parallel: int = Field(default=DEFAULT_MAX_PARALLEL, ge=1)
    default_max_backlog_depth: int = Field(default=DEFAULT_MAX_BACKLOG_DEPTH, ge=0)
    max_queue_age_s: int = Field(default=DEFAULT_MAX_QUEUE_AGE_S, ge=1)
    slot_reclaim_grace_s: float = Field(default=DEFAULT_SLOT_RECLAIM_GRACE_S, ge=0)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    agent_token: str | None = Field(
        default=None,
        min_length=16,
        description="Bearer token for agent runtimes; default one generated in the data dir.",
    )
    scheduler_interval_s: float = Field(default=1.0, gt=0)
    dispatcher_interval_s: float = Field(default=0.5, gt=0)
    monitor_interval_s: float = Field(default=2.0, gt=0)
    finalizer_interval_s: float = Field(default=1.0, gt=0)
    maintenance_interval_s: float = Field(default=5.0, gt=0)
    monitor_poll_wait_s: float = Field(default=20.0, gt=0, le=60)
    watchdog_interval_s: float = Field(default=DEFAULT_WATCHDOG_INTERVAL_S, gt=0)
    watchdog_agent_lost_after_s: float = Field(default=DEFAULT_AGENT_LOST_AFTER_S, gt=0)
    watchdog_dispatch_grace_s: float = Field(default=DEFAULT_DISPATCH_GRACE_S, ge=0)
    watchdog_timeout_slack_s: float = Field(default=DEFAULT_TIMEOUT_SLACK_S, ge=0)
    watchdog_probe_timeout_s: float = Field(default=DEFAULT_PROBE_TIMEOUT_S, gt=0, le=60)
    watchdog_handover_grace_s: float = Field(default=DEFAULT_HANDOVER_GRACE_S, ge=0)
    retry_backoff_base_s: float = Field(default=DEFAULT_RETRY_BACKOFF_BASE_S, ge=0)
    retry_backoff_max_s: float = Field(default=DEFAULT_RETRY_BACKOFF_MAX_S, ge=0)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'shepherd.db').resolve()}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or raise one readable ``ConfigError`` for the first bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    got = first.get("input")
    return f"{ENV_PREFIX}{field.upper()}: {first['msg'].lower()} (got {got!r})"
