"""admin: keyword audit log, message log, known answers, web credentials and sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Written out rather than imported from storage.models: a migration must keep meaning what it
# meant when it was written.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("answered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "keyword_changes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyword_changes")),
    )
    op.create_index(
        op.f("ix_keyword_changes_community_id"), "keyword_changes", ["community_id"]
    )
    op.create_table(
        "message_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("relabel", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
        sa.UniqueConstraint("chat_id", "message_id", name="uq_message_log_chat_message"),
    )
    op.create_index("ix_message_log_community_id_id", "message_log", ["community_id", "id"])
    op.create_table(
        "answers",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("from_file", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    op.create_index(op.f("ix_answers_community_id"), "answers", ["community_id"])
    op.create_table(
        "admin_credentials",
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_admin_credentials")),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_index(op.f("ix_admin_sessions_staff_id"), "admin_sessions", ["staff_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_sessions_staff_id"), table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admin_credentials")
    op.drop_index(op.f("ix_answers_community_id"), table_name="answers")
    op.drop_table("answers")
    op.drop_index("ix_message_log_community_id_id", table_name="message_log")
    op.drop_table("message_log")
    op.drop_index(op.f("ix_keyword_changes_community_id"), table_name="keyword_changes")
    op.drop_table("keyword_changes")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("answered")
