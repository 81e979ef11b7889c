"""The SQL schema as SQLAlchemy Core tables: the source of truth for agents, schedules,
executions and their events, and API tokens. All instants are integer epoch milliseconds.

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
    Index("ix_executions_status", "status"),
    Index("ix_executions_agent_status", "agent", "status"),
    Index("ix_executions_queue_order", "agent", "status", "queued_at_ms", "id"),
    Index("ix_executions_schedule_status", "schedule_id", "status"),
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
