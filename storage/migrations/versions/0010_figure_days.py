"""a district's month from a roll-up: tickets counted once per local day (figure_days), the
days counted and until when (figure_day_states), and the tickets changed since
(figure_changes)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Written out rather than imported from storage.models: a migration must keep meaning what it
# meant when it was written, whatever the models become.
UTCDateTime = sa.DateTime(timezone=True)
SUMS = (
    *("received", "merged", "cancelled", "resolved", "urgent", "answered"),
    *("category_repair", "category_dispute", "category_service"),
    *("rating_satisfied", "rating_basically", "rating_unsatisfied", "rating_unrated"),
    *("due_understand", "met_understand", "due_plan", "met_plan", "due_reply", "met_reply"),
    *("due_resolve_general", "met_resolve_general", "due_resolve_major"),
    *("met_resolve_major", "due_resolve_complex", "met_resolve_complex"),
)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "figure_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in SUMS),
        sa.PrimaryKeyConstraint("day", "community_id", "level", "key", name="pk_figure_days"),
    )
    op.create_table(
        "figure_day_states",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("counted_at", UTCDateTime, nullable=False),
        sa.Column("valid_until", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("day", name="pk_figure_day_states"),
    )
    op.create_table(
        "figure_changes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True
        ),
        sa.Column("reported_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_figure_changes"),
    )


def downgrade() -> None:
    op.drop_table("figure_changes")
    op.drop_table("figure_day_states")
    op.drop_table("figure_days")
