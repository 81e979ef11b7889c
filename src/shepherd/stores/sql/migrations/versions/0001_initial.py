"""Initial schema: meta, agents, agent_tags, schedules, executions, execution_events, api_tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from shepherd.stores.sql.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "meta", "agents", "agent_tags", "schedules", "executions", "execution_events", "api_tokens"
)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[name] for name in TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in reversed(TABLES)])
