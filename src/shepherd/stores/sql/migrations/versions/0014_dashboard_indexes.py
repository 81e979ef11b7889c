"""Indexes for the dashboard: throughput by completion minute, and the latest run of a schedule.

Revision ID: 0014
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_executions_completed", "executions", ["completed_at_ms", "status"])
    op.create_index("ix_executions_schedule_latest", "executions", ["schedule_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_executions_schedule_latest", table_name="executions")
    op.drop_index("ix_executions_completed", table_name="executions")
