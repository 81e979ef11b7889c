"""The outbox: outbound deliveries written with the state change that caused them, and the
per-destination state (fatal, rate-limited) the sender keeps across restarts.

Revision ID: outbox
Revises: runtime_results
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "outbox"
down_revision = "runtime_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("sink", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("idempotency_key", sa.String(300), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_at_ms", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claimed_until_ms", sa.BigInteger),
        sa.Column("delivered_at_ms", sa.BigInteger),
        sa.Column("last_error", sa.String(300)),
        sa.Column("last_status_code", sa.Integer),
    )
    op.create_index("ix_outbox_status", "outbox", ["status", "id"])
    op.create_index("ix_outbox_topic", "outbox", ["topic", "id"])
    op.create_index(
        "ux_outbox_destination_key", "outbox", ["destination", "idempotency_key"], unique=True
    )
    op.create_table(
        "outbox_destinations",
        sa.Column("destination", sa.String(200), primary_key=True),
        sa.Column("fatal_reason", sa.String(300)),
        sa.Column("fatal_fingerprint", sa.String(32)),
        sa.Column("blocked_until_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_delivered_at_ms", sa.BigInteger),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbox_destinations")
    op.drop_index("ux_outbox_destination_key", table_name="outbox")
    op.drop_index("ix_outbox_topic", table_name="outbox")
    op.drop_index("ix_outbox_status", table_name="outbox")
    op.drop_table("outbox")
