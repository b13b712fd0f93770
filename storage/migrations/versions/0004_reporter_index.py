"""index tickets by reporter (a resident's /status)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_reporter_id", "tickets", ["reporter_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_reporter_id", table_name="tickets")
