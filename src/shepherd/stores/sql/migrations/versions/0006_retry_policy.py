"""Retry policy: max_attempts and retry_on_failure on agents and schedules (schedules may leave
them to their agent), resolved onto each execution at creation, and the instant before which a
queued retry may not be dispatched (its backoff).

Revision ID: retry_policy
Revises: dashboard_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retry_policy"
down_revision = "dashboard_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("max_attempts", sa.Integer, nullable=False,
                                      server_default="1"))
    op.add_column("agents", sa.Column("retry_on_failure", sa.Boolean, nullable=False,
                                      server_default="0"))
    op.add_column("schedules", sa.Column("max_attempts", sa.Integer))
    op.add_column("schedules", sa.Column("retry_on_failure", sa.Boolean))
    op.add_column("executions", sa.Column("retry_on_failure", sa.Boolean, nullable=False,
                                          server_default="0"))
    op.add_column("executions", sa.Column("not_before_ms", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("not_before_ms")
        batch.drop_column("retry_on_failure")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("retry_on_failure")
        batch.drop_column("max_attempts")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("retry_on_failure")
        batch.drop_column("max_attempts")
