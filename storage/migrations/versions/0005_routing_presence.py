"""routing policy, rosters, staff presence, "me too" reports, residents' homes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Written out rather than imported from storage.models: a migration must keep meaning what it
# meant when it was written.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("roster", sa.JSON(), nullable=True))
    with op.batch_alter_table("communities") as batch:
        batch.add_column(sa.Column("routing", sa.JSON(), nullable=True))
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("households", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("topic", sa.String(length=200), nullable=False, server_default="")
        )
    op.create_table(
        "ticket_reports",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ticket_id", BigId, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("reporter_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_reports_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_reports")),
        sa.UniqueConstraint("chat_id", "message_id", name="uq_ticket_reports_chat_message"),
    )
    op.create_index(op.f("ix_ticket_reports_ticket_id"), "ticket_reports", ["ticket_id"])
    op.create_table(
        "staff_presence",
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("off_duty", sa.Boolean(), nullable=False),
        sa.Column("on_duty_until", UTCDateTime, nullable=True),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.Column("unreachable_since", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_staff_presence")),
    )
    op.create_table(
        "resident_homes",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=True),
        sa.Column("building", sa.String(length=20), nullable=True),
        sa.Column("pending_message_id", sa.BigInteger(), nullable=True),
        sa.Column("pending_text", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_resident_homes")),
    )


def downgrade() -> None:
    op.drop_table("resident_homes")
    op.drop_table("staff_presence")
    op.drop_index(op.f("ix_ticket_reports_ticket_id"), table_name="ticket_reports")
    op.drop_table("ticket_reports")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("topic")
        batch.drop_column("households")
    with op.batch_alter_table("communities") as batch:
        batch.drop_column("routing")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("roster")
