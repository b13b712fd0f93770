"""5321 deadlines on tickets, and durable timers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WHEN = ("accept_due_at", "plan_due_at", "reply_due_at", "resolve_due_at", "accepted_at",
         "planned_at", "replied_at", "resolved_at", "closed_at", "follow_up_at")


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER TABLE ADD COLUMN with server defaults in every case.
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("level", sa.Integer(), nullable=False, server_default="0"))
        for name in _WHEN:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("plan_text", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("follow_up_text", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("merged_into", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_tickets_status_accept_due", "tickets", ["status", "accept_due_at"])
    op.create_index("ix_tickets_assignee_status", "tickets", ["assignee_id", "status"])
    op.create_table(
        "timers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_timers_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
    )
    op.create_index("ix_timers_pending_due", "timers", ["fired_at", "due_at"])
    op.create_index(op.f("ix_timers_ticket_id"), "timers", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_timers_ticket_id"), table_name="timers")
    op.drop_index("ix_timers_pending_due", table_name="timers")
    op.drop_table("timers")
    op.drop_index("ix_tickets_assignee_status", table_name="tickets")
    op.drop_index("ix_tickets_status_accept_due", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        for name in ("version", "merged_into", "follow_up_text", "plan_text", *_WHEN, "level"):
            batch.drop_column(name)
