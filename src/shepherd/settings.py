"""Settings: one pydantic-settings model, read from ``SHEPHERD_*`` variables, built once in app.py.

``load_settings()`` turns any invalid value into one ``ConfigError`` line naming the variable and
what it accepts; nothing else reads the environment for Shepherd's configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shepherd.core.circuit import (
    DEFAULT_COOLDOWN_MAX_S,
    DEFAULT_COOLDOWN_S,
    DEFAULT_DORMANT_AFTER_PROBES,
    DEFAULT_DORMANT_PROBE_INTERVAL_S,
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_QUORUM_WINDOW_S,
)
from shepherd.core.finalization import (
    DEFAULT_ACK_BUDGET_S,
    DEFAULT_FETCH_BUDGET_S,
    DEFAULT_FINALIZE_LEASE_TTL_S,
    DEFAULT_STORE_BUDGET_S,
)
from shepherd.core.reaper import DEFAULT_FINALIZE_GRACE_S, DEFAULT_REAPER_INTERVAL_S
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
# A receiver gets ten seconds to answer one delivery: generous for a webhook, and a hung one
# holds only its own destination's slots meanwhile.
DEFAULT_OUTBOX_SEND_TIMEOUT_S = 10.0
# Completion webhooks in flight per agent's receiver.
DEFAULT_OUTBOX_CONCURRENCY = 4
# Systemic outages and dormant agents are minutes-scale incidents: a 15 s look costs two small
# reads and tells an operator within one watchdog cycle.
DEFAULT_FLEET_ALERTS_INTERVAL_S = 15.0
# A canary cycle a minute: drift is found within a minute or two, at ~0.1 % of a core.
DEFAULT_CANARY_INTERVAL_S = 60.0
# Retries back off to five minutes: the pace of a receiver's outage, not a hammering.
DEFAULT_OUTBOX_RETRY_MAX_S = 300.0
# A completion webhook still undelivered after a day is given up and shown as dead.
DEFAULT_WEBHOOK_MAX_AGE_S = 86_400
# An alert undelivered for six hours is given up: the incident stays in the API, and a re-alert
# carries it again.
DEFAULT_ALERT_MAX_AGE_S = 6 * 3600
# Alertmanager resolves an alert nobody refreshes at its endsAt: a day outlasts any re-alert.
DEFAULT_ALERT_ALERTMANAGER_HOLD_S = 86_400
# Settings whose value is a secret: a validation error names the variable, never the value.
SECRET_FIELDS = frozenset({
    "agent_token", "alert_slack_webhook_url", "alert_alertmanager_url", "alert_webhook_url",
})
_URL = r"^https?://\S+$"
# A due probe waits at most a second for the prober; its pass is a few Redis reads.
DEFAULT_BREAKER_PROBE_INTERVAL_S = 1.0
# Three heartbeats (one every 5 s) may be missed before a replica stops counting for the quorum.
DEFAULT_BREAKER_PRESENCE_TTL_S = 15.0
# A working day: a dashboard signed in in the morning asks again the next morning.
DEFAULT_SESSION_TTL_S = 12 * 3600
# Long enough to read ``shepherd up``'s banner and click; short enough that a sign-in link left in
# a terminal's scrollback is soon worthless.
DEFAULT_SIGNIN_LINK_TTL_S = 600
# Live updates reach viewers within this; each replica pays one indexed query per interval while
# anyone listens, whatever the number of viewers.
DEFAULT_EVENTS_POLL_INTERVAL_S = 0.2
# Room for the largest execution input (10 MiB of text) sent as JSON with escapes, while bounding
# what one request can make the control plane hold in memory.
DEFAULT_MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024


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
    results_from_events: bool = Field(
        default=True,
        description="Store a result carried by its exit event at once (off: every exit goes "
                    "running -> finalizing and the finalizer reads the result back).",
    )
    outbox_interval_s: float = Field(default=1.0, gt=0)
    outbox_send_timeout_s: float = Field(default=DEFAULT_OUTBOX_SEND_TIMEOUT_S, gt=0, le=300)
    outbox_concurrency: int = Field(default=DEFAULT_OUTBOX_CONCURRENCY, ge=1, le=100)
    outbox_retry_max_s: float = Field(default=DEFAULT_OUTBOX_RETRY_MAX_S, ge=1)
    webhook_max_age_s: int = Field(default=DEFAULT_WEBHOOK_MAX_AGE_S, ge=1)
    alert_slack_webhook_url: str | None = Field(default=None, pattern=_URL, repr=False)
    alert_alertmanager_url: str | None = Field(default=None, pattern=_URL, repr=False)
    alert_webhook_url: str | None = Field(default=None, pattern=_URL, repr=False)
    alert_max_age_s: int = Field(default=DEFAULT_ALERT_MAX_AGE_S, ge=1)
    alert_alertmanager_hold_s: int = Field(default=DEFAULT_ALERT_ALERTMANAGER_HOLD_S, ge=60)
    breaker_failure_threshold: int = Field(default=DEFAULT_FAILURE_THRESHOLD, ge=1)
    breaker_cooldown_s: float = Field(default=DEFAULT_COOLDOWN_S, gt=0)
    breaker_cooldown_max_s: float = Field(default=DEFAULT_COOLDOWN_MAX_S, gt=0)
    breaker_dormant_after_probes: int = Field(default=DEFAULT_DORMANT_AFTER_PROBES, ge=1)
    breaker_dormant_probe_interval_s: float = Field(
        default=DEFAULT_DORMANT_PROBE_INTERVAL_S, gt=0
    )
    breaker_quorum_window_s: float = Field(default=DEFAULT_QUORUM_WINDOW_S, gt=0)
    breaker_probe_interval_s: float = Field(default=DEFAULT_BREAKER_PROBE_INTERVAL_S, gt=0)
    breaker_presence_ttl_s: float = Field(default=DEFAULT_BREAKER_PRESENCE_TTL_S, gt=0)
    session_ttl_s: int = Field(default=DEFAULT_SESSION_TTL_S, ge=60)
    signin_link_ttl_s: int = Field(default=DEFAULT_SIGNIN_LINK_TTL_S, ge=10)
    events_poll_interval_s: float = Field(default=DEFAULT_EVENTS_POLL_INTERVAL_S, gt=0, le=10)
    max_request_body_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BODY_BYTES, ge=1024)
    watchdog_interval_s: float = Field(default=DEFAULT_WATCHDOG_INTERVAL_S, gt=0)
    watchdog_agent_lost_after_s: float = Field(default=DEFAULT_AGENT_LOST_AFTER_S, gt=0)
    watchdog_dispatch_grace_s: float = Field(default=DEFAULT_DISPATCH_GRACE_S, ge=0)
    watchdog_timeout_slack_s: float = Field(default=DEFAULT_TIMEOUT_SLACK_S, ge=0)
    watchdog_probe_timeout_s: float = Field(default=DEFAULT_PROBE_TIMEOUT_S, gt=0, le=60)
    watchdog_handover_grace_s: float = Field(default=DEFAULT_HANDOVER_GRACE_S, ge=0)
    retry_backoff_base_s: float = Field(default=DEFAULT_RETRY_BACKOFF_BASE_S, ge=0)
    retry_backoff_max_s: float = Field(default=DEFAULT_RETRY_BACKOFF_MAX_S, ge=0)
    reaper_interval_s: float = Field(default=DEFAULT_REAPER_INTERVAL_S, gt=0)
    fleet_alerts_interval_s: float = Field(default=DEFAULT_FLEET_ALERTS_INTERVAL_S, gt=0)
    canary_enabled: bool = False  # off unless asked: ``shepherd demo`` turns it on
    canary_interval_s: float = Field(default=DEFAULT_CANARY_INTERVAL_S, gt=0)
    reaper_finalize_grace_s: float = Field(default=DEFAULT_FINALIZE_GRACE_S, gt=0)
    reaper_max_running_s: float | None = Field(
        default=None, gt=0,
        description="Backstop age of any running or finalizing row; default its timeout + 2 x "
                    "the finalize grace.",
    )
    reaper_finalizer_liveness: bool = Field(
        default=True,
        description="Tier 2 defers to a live finalize lease; off is unsafe (kill switch only).",
    )
    finalize_lease_ttl_s: float = Field(default=DEFAULT_FINALIZE_LEASE_TTL_S, gt=0)
    finalize_fetch_budget_s: float = Field(default=DEFAULT_FETCH_BUDGET_S, gt=0)
    finalize_store_budget_s: float = Field(default=DEFAULT_STORE_BUDGET_S, gt=0)
    finalize_ack_budget_s: float = Field(default=DEFAULT_ACK_BUDGET_S, gt=0)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("alert_slack_webhook_url", "alert_alertmanager_url", "alert_webhook_url",
                     "reaper_max_running_s", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

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
        error = ConfigError(describe_validation_error(exc))
        loc = exc.errors()[0]["loc"]
        if loc and str(loc[0]) in SECRET_FIELDS:
            # pydantic's own text quotes the input: keep it out of any traceback too.
            raise error from None
        raise error from exc


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    if field in SECRET_FIELDS:
        return f"{ENV_PREFIX}{field.upper()}: {first['msg'].lower()} (value not shown: a secret)"
    got = first.get("input")
    return f"{ENV_PREFIX}{field.upper()}: {first['msg'].lower()} (got {got!r})"
