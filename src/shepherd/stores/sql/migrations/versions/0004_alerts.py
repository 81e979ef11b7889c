"""Alert state: one row per signal key (source, kind, entity) with its incident's phase.

Revision ID: alerts
Revises: outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "alerts"
down_revision = "outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(100), primary_key=True),
        sa.Column("entity", sa.String(100), primary_key=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("since_ms", sa.BigInteger, nullable=False),
        sa.Column("last_sent_ms", sa.BigInteger),
        sa.Column("last_red_ms", sa.BigInteger),
        sa.Column("incidents", sa.Integer, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_alert_states_phase", "alert_states", ["phase"])


def downgrade() -> None:
    op.drop_index("ix_alert_states_phase", table_name="alert_states")
    op.drop_table("alert_states")
