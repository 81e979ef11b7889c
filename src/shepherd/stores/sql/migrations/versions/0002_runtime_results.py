"""What a finished child leaves on its result, and whether an agent must read its input.

``executions.input_unread`` (NULL until a result is stored) and ``executions.leftovers`` (JSON
list of ``{pid, name}``: processes the child left outside its process group that still held its
output); ``agents.require_input_read`` (false: a child may ignore its input).

Revision ID: runtime_results
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "runtime_results"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("input_unread", sa.Boolean))
    op.add_column("executions", sa.Column("leftovers", sa.JSON))
    op.add_column(
        "agents",
        sa.Column("require_input_read", sa.Boolean, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("agents") as agents:
        agents.drop_column("require_input_read")
    with op.batch_alter_table("executions") as executions:
        executions.drop_column("leftovers")
        executions.drop_column("input_unread")
