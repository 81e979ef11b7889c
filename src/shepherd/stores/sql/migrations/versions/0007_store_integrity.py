"""Agent identity across name reuse: ``agents.generation`` and ``executions.agent_generation``.

A deleted agent's row is kept (soft delete) and revived when an agent is created under its name;
the revived agent is the next generation, and every execution records the generation it was
submitted to, so per-agent views show only the current agent's history. Executions created
before their agent's current incarnation (``created_at_ms`` earlier than the agent's) belonged
to an earlier one: they are marked generation 0, "some earlier agent of that name".

Revision ID: store_integrity
Revises: retry_policy
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store_integrity"
down_revision = "retry_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "agents", sa.Column("generation", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column(
        "executions",
        sa.Column("agent_generation", sa.Integer, nullable=False, server_default="1"),
    )
    op.execute(
        "UPDATE executions SET agent_generation = 0 WHERE created_at_ms < "
        "(SELECT agents.created_at_ms FROM agents WHERE agents.name = executions.agent)"
    )


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("agent_generation")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("generation")
