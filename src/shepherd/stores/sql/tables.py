"""The SQL schema as SQLAlchemy Core tables: the source of truth for agents, schedules,
executions and their events, API tokens, and the outbox of outbound deliveries. All instants are
integer epoch milliseconds.

The initial Alembic revision creates exactly these tables; a change here needs a new revision.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("url", Text),
    Column("command", JSON),  # argv list, or NULL for a remote agent
    Column("max_parallel_tasks", Integer, nullable=False, server_default="3"),
    Column("execution_timeout_s", Integer, nullable=False, server_default="900"),
    Column("max_backlog_depth", Integer, nullable=False, server_default="50"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("success_exit_codes", JSON, nullable=False),
    Column("completion_webhook_url", Text),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("deleted_at_ms", BigInteger),
    Column("require_input_read", Boolean, nullable=False, server_default="0"),
    # Retry policy (revision retry_policy): attempts in all, and whether a child's own failure
    # is retried too.
    Column("max_attempts", Integer, nullable=False, server_default="1"),
    Column("retry_on_failure", Boolean, nullable=False, server_default="0"),
    # Identity across name reuse: a deleted agent re-created under its name is generation + 1,
    # so its history (executions of older generations) stays the old agent's.
    Column("generation", Integer, nullable=False, server_default="1"),
)

agent_tags = Table(
    "agent_tags",
    metadata,
    Column("agent", String(63), ForeignKey("agents.name"), primary_key=True),
    Column("tag", String(200), primary_key=True),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200)),
    Column("agent", String(63), ForeignKey("agents.name"), nullable=False, index=True),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("input", Text, nullable=False),
    Column("timeout_s", Integer),
    Column("overlap", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_at_ms", BigInteger),
    Column("last_run_at_ms", BigInteger),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("max_attempts", Integer),  # NULL: the agent's
    Column("retry_on_failure", Boolean),  # NULL: the agent's
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("agent", String(63), nullable=False),
    Column("agent_generation", Integer, nullable=False, server_default="1"),
    Column("schedule_id", String(40)),
    Column("trigger", String(16), nullable=False),
    Column("input", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("retry_of", String(40)),
    Column("timeout_s", Integer, nullable=False),
    Column("queued_at_ms", BigInteger),
    Column("dispatched_at_ms", BigInteger),
    Column("started_at_ms", BigInteger),
    Column("finished_at_ms", BigInteger),
    Column("completed_at_ms", BigInteger),
    Column("exit_code", Integer),
    Column("error_class", String(64)),
    Column("error", Text),
    Column("output_tail", Text),
    Column("runtime_boot_id", String(64)),
    Column("pid", Integer),
    Column("created_by", String(200)),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("input_unread", Boolean),  # NULL until a result is stored
    Column("leftovers", JSON),  # [{"pid", "name"}] left outside the group; NULL when none
    Column("retry_on_failure", Boolean, nullable=False, server_default="0"),
    Column("not_before_ms", BigInteger),  # a queued retry is not dispatched before this
    Index("ix_executions_status", "status"),
    Index("ix_executions_agent_status", "agent", "status"),
    Index("ix_executions_queue_order", "agent", "status", "queued_at_ms", "id"),
    Index("ix_executions_schedule_status", "schedule_id", "status"),
    # The fleet page's hour of throughput: terminal rows by completion minute, index-only.
    Index("ix_executions_completed", "completed_at_ms", "status"),
    # The schedules page's last run of each schedule: max(id) per schedule without a scan.
    Index("ix_executions_schedule_latest", "schedule_id", "id"),
)

execution_events = Table(
    "execution_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(40), ForeignKey("executions.id"), nullable=False, index=True),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("cause", String(32)),
    Column("actor", String(200), nullable=False),
    Column("reason", Text),
    Column("at_ms", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("agent_scope", String(63)),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("revoked_at_ms", BigInteger),
    Column("last_used_at_ms", BigInteger),
)


# Outbound deliveries (completion webhooks, alerts), written in the transaction that caused them.
# No URL is stored: ``destination`` names the receiver and the sender resolves its URL.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # sending order
    Column("destination", String(200), nullable=False),
    Column("sink", String(32), nullable=False),
    Column("topic", String(32), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("idempotency_key", String(300), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("next_attempt_at_ms", BigInteger, nullable=False),
    Column("claimed_by", String(200)),
    Column("claimed_until_ms", BigInteger),
    Column("delivered_at_ms", BigInteger),
    Column("last_error", String(300)),
    Column("last_status_code", Integer),
    Index("ix_outbox_status", "status", "id"),
    Index("ix_outbox_topic", "topic", "id"),
    Index("ux_outbox_destination_key", "destination", "idempotency_key", unique=True),
)

# What a destination said last that outlives one delivery: gone (fatal) or rate-limited.
outbox_destinations = Table(
    "outbox_destinations",
    metadata,
    Column("destination", String(200), primary_key=True),
    Column("fatal_reason", String(300)),
    Column("fatal_fingerprint", String(32)),
    Column("blocked_until_ms", BigInteger, nullable=False, server_default="0"),
    Column("last_delivered_at_ms", BigInteger),
    Column("updated_at_ms", BigInteger, nullable=False),
)

# One row per alert key: where its incident stands, so a restart neither re-alerts nor forgets.
alert_states = Table(
    "alert_states",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("kind", String(100), primary_key=True),
    Column("entity", String(100), primary_key=True),
    Column("phase", String(16), nullable=False),
    Column("since_ms", BigInteger, nullable=False),
    Column("last_sent_ms", BigInteger),
    Column("last_red_ms", BigInteger),
    Column("incidents", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("detail", JSON, nullable=False),  # forensic rows, their total, the runbook hint
    Column("version", Integer, nullable=False),  # compare-and-set guard between replicas
    Column("updated_at_ms", BigInteger, nullable=False),
    Index("ix_alert_states_phase", "phase"),
)

# What the canary found, one row per violation per cycle (trimmed by age by the canary).
canary_violations = Table(
    "canary_violations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cycle_at_ms", BigInteger, nullable=False),  # the snapshot's instant
    Column("invariant_id", String(8), nullable=False),
    Column("entity", String(200), nullable=False),
    Column("tier", String(1), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("observed", JSON, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_canary_violations_invariant", "invariant_id", "cycle_at_ms"),
    Index("ix_canary_violations_cycle", "cycle_at_ms"),
)

# Every change of the fleet besides execution transitions (agents, circuits, recoveries, canary,
# alerts), in order, for live followers; trimmed by age and count by its writer. AUTOINCREMENT on
# SQLite: an id is never reused, even after a trim, so a follower's cursor never goes stale.
fleet_events = Table(
    "fleet_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("agent", String(63)),  # NULL: fleet-wide
    Column("subject", String(320), nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_fleet_events_at", "at_ms"),
    sqlite_autoincrement=True,
)
