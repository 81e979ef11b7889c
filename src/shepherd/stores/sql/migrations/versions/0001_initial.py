"""Initial schema: meta, agents, agent_tags, schedules, executions, execution_events, api_tokens.

Frozen: these definitions are a copy of ``tables.py`` as it stood at this revision, so later
changes to ``tables.py`` never alter what this revision creates. A schema change is a new revision.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "agents",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("url", sa.Text),
        sa.Column("command", sa.JSON),
        sa.Column("max_parallel_tasks", sa.Integer, nullable=False, server_default="3"),
        sa.Column("execution_timeout_s", sa.Integer, nullable=False, server_default="900"),
        sa.Column("max_backlog_depth", sa.Integer, nullable=False, server_default="50"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("success_exit_codes", sa.JSON, nullable=False),
        sa.Column("completion_webhook_url", sa.Text),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("deleted_at_ms", sa.BigInteger),
    )
    op.create_table(
        "agent_tags",
        sa.Column("agent", sa.String(63), sa.ForeignKey("agents.name"), primary_key=True),
        sa.Column("tag", sa.String(200), primary_key=True),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("agent", sa.String(63), sa.ForeignKey("agents.name"), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("timeout_s", sa.Integer),
        sa.Column("overlap", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("next_run_at_ms", sa.BigInteger),
        sa.Column("last_run_at_ms", sa.BigInteger),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_schedules_agent", "schedules", ["agent"])
    op.create_table(
        "executions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent", sa.String(63), nullable=False),
        sa.Column("schedule_id", sa.String(40)),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("retry_of", sa.String(40)),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        sa.Column("queued_at_ms", sa.BigInteger),
        sa.Column("dispatched_at_ms", sa.BigInteger),
        sa.Column("started_at_ms", sa.BigInteger),
        sa.Column("finished_at_ms", sa.BigInteger),
        sa.Column("completed_at_ms", sa.BigInteger),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error_class", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("output_tail", sa.Text),
        sa.Column("runtime_boot_id", sa.String(64)),
        sa.Column("pid", sa.Integer),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_executions_status", "executions", ["status"])
    op.create_index("ix_executions_agent_status", "executions", ["agent", "status"])
    op.create_index(
        "ix_executions_queue_order", "executions", ["agent", "status", "queued_at_ms", "id"]
    )
    op.create_index("ix_executions_schedule_status", "executions", ["schedule_id", "status"])
    op.create_table(
        "execution_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(40), sa.ForeignKey("executions.id"), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(32)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_execution_events_execution_id", "execution_events", ["execution_id"]
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("agent_scope", sa.String(63)),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger),
        sa.Column("last_used_at_ms", sa.BigInteger),
    )


def downgrade() -> None:
    for name in (
        "api_tokens", "execution_events", "executions", "schedules", "agent_tags", "agents",
        "meta",
    ):
        op.drop_table(name)
