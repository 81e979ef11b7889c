"""The canary's findings: ``canary_violations``, one row per violation per cycle.

Revision ID: canary
Revises: store_integrity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "canary"
down_revision = "store_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canary_violations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cycle_at_ms", sa.BigInteger, nullable=False),
        sa.Column("invariant_id", sa.String(8), nullable=False),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(1), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("observed", sa.JSON, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_canary_violations_invariant", "canary_violations",
                    ["invariant_id", "cycle_at_ms"])
    op.create_index("ix_canary_violations_cycle", "canary_violations", ["cycle_at_ms"])


def downgrade() -> None:
    op.drop_table("canary_violations")
