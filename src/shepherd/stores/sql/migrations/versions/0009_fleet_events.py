"""Live fleet events: ``fleet_events``, every change besides execution transitions, by id.

Revision ID: fleet_events
Revises: canary
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fleet_events"
down_revision = "canary"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(63)),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_fleet_events_at", "fleet_events", ["at_ms"])


def downgrade() -> None:
    op.drop_table("fleet_events")
