"""a district's worth of tickets: indexes for the district-wide figures (tickets by report
time) and the open tickets by deadline

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_index("ix_tickets_status_resolve_due", "tickets", ["status", "resolve_due_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_status_resolve_due", table_name="tickets")
    op.drop_index("ix_tickets_created_at", table_name="tickets")
