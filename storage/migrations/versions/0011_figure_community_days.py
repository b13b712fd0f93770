"""the roll-up recounts one community's part of a day, not the whole district's day: changes
name the ticket's community, and each community's part of a counted day has its own
valid_until (figure_community_days); what 0010 counted is dropped and counted again

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Written out rather than imported from storage.models (see 0007).
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    # A cache: counted again on the next view, with the parts this revision keeps.
    op.execute("DELETE FROM figure_days")
    op.execute("DELETE FROM figure_day_states")
    with op.batch_alter_table("figure_day_states") as batch:
        batch.drop_column("valid_until")
    with op.batch_alter_table("figure_changes") as batch:
        batch.add_column(sa.Column("community_id", sa.String(64), nullable=True))
    op.create_table(
        "figure_community_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.Column("valid_until", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("day", "community_id", name="pk_figure_community_days"),
    )


def downgrade() -> None:
    op.drop_table("figure_community_days")
    op.execute("DELETE FROM figure_days")
    op.execute("DELETE FROM figure_day_states")
    with op.batch_alter_table("figure_changes") as batch:
        batch.drop_column("community_id")
    with op.batch_alter_table("figure_day_states") as batch:
        batch.add_column(sa.Column("valid_until", UTCDateTime, nullable=True))
