"""delivery: the outbox (every outgoing message written with the change that caused it), the
inbox (every incoming update kept until handled), incidents (工单预警)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Written out rather than imported from storage.models: a migration must keep meaning what it
# meant when it was written.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("incident_id", sa.BigInteger(), nullable=True))
        batch.create_index(batch.f("ix_tickets_incident_id"), ["incident_id"])
    op.create_table(
        "incidents",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(
        "ix_incidents_community_id_resolved_at", "incidents", ["community_id", "resolved_at"]
    )
    op.create_table(
        "outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_to", sa.BigInteger(), nullable=True),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("mention", sa.JSON(), nullable=True),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_state_chat_id_id", "outbox", ["state", "chat_id", "id"])
    op.create_index("ix_outbox_state_next_at", "outbox", ["state", "next_at"])
    op.create_index(op.f("ix_outbox_ticket_id"), "outbox", ["ticket_id"])
    op.create_table(
        "inbox",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("done_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbox")),
    )
    op.create_index("ix_inbox_done_at", "inbox", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_community_id_resolved_at", table_name="incidents")
    op.drop_table("incidents")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index(batch.f("ix_tickets_incident_id"))
        batch.drop_column("incident_id")
    op.drop_index("ix_inbox_done_at", table_name="inbox")
    op.drop_table("inbox")
    op.drop_index(op.f("ix_outbox_ticket_id"), table_name="outbox")
    op.drop_index("ix_outbox_state_next_at", table_name="outbox")
    op.drop_index("ix_outbox_state_chat_id_id", table_name="outbox")
    op.drop_table("outbox")
