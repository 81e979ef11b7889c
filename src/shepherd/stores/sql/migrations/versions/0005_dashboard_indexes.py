"""Indexes for the dashboard: throughput by completion minute, and the latest run of a schedule.

Revision ID: dashboard_indexes
Revises: alerts
"""

from __future__ import annotations

from alembic import op

revision = "dashboard_indexes"
down_revision = "alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_executions_completed", "executions", ["completed_at_ms", "status"])
    op.create_index("ix_executions_schedule_latest", "executions", ["schedule_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_executions_schedule_latest", table_name="executions")
    op.drop_index("ix_executions_completed", table_name="executions")
