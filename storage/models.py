"""SQLAlchemy models. Times are stored in UTC and always come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC; SQLite drops the zone, so it is put back on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; the core uses aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime}  # noqa: RUF012


class MetaRow(Base):
    """Small key/value facts: district settings from the file, the file's digest."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class StaffRow(Base):
    """Someone the bot may ping."""

    __tablename__ = "staff"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    role: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    roster: Mapped[list[str] | None] = mapped_column(JSON)  # revision 0005; None: always


class CommunityRow(Base):
    """A 社区."""

    __tablename__ = "communities"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    staff: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # revision 0005


class GridRow(Base):
    """A 网格 and who answers for it."""

    __tablename__ = "grids"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    community_id: Mapped[str] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    buildings: Mapped[list[str]] = mapped_column(JSON, default=list)
    grid_worker_id: Mapped[str | None] = mapped_column(String(64))
    property_id: Mapped[str | None] = mapped_column(String(64))
    backup: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)


class GroupRow(Base):
    """A residents' group chat."""

    __tablename__ = "groups"
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    community_id: Mapped[str] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    grid_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)


class KeywordRow(Base):
    """A weighted routing word; ``community_id`` '*' is the district-wide default."""

    __tablename__ = "keywords"
    __table_args__ = (UniqueConstraint("community_id", "category", "word"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64), default="*")
    category: Mapped[str] = mapped_column(String(20))
    word: Mapped[str] = mapped_column(String(100))
    weight: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]


class TicketRow(Base):
    """A resident's request; (chat_id, message_id) makes intake idempotent."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("chat_id", "message_id", name="uq_tickets_chat_message"),
        Index("ix_tickets_status_created", "status", "created_at"),
        Index("ix_tickets_community_created", "community_id", "created_at"),
        Index("ix_tickets_status_accept_due", "status", "accept_due_at"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_reporter_id", "reporter_id", "id"),
        # revision 0009: district-wide figures by report time; open tickets by deadline
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_status_resolve_due", "status", "resolve_due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    grid_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    reporter_id: Mapped[int] = mapped_column(BigInteger)
    reporter_name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    tier: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    assignee_id: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The 5321 deadlines and when each stage was met (revision 0002).
    level: Mapped[int] = mapped_column(Integer, default=0)
    accept_due_at: Mapped[datetime | None]
    plan_due_at: Mapped[datetime | None]
    reply_due_at: Mapped[datetime | None]
    resolve_due_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    planned_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    plan_text: Mapped[str] = mapped_column(Text, default="")
    follow_up_text: Mapped[str] = mapped_column(Text, default="")
    follow_up_at: Mapped[datetime | None]
    merged_into: Mapped[int | None] = mapped_column(BigInteger)
    rating: Mapped[str | None] = mapped_column(String(20))  # revision 0003
    # revision 0005: households that reported it ("me too" adds one), and the classifier's
    # topic words, which decide whether a later report is the same problem.
    households: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    topic: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # revision 0006: the bot told a known answer at once (一次性告知)
    answered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # revision 0007: the incident (工单预警) grouping it with other reports of the same thing
    incident_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class TicketEventRow(Base):
    """Append-only history of a ticket (全程记录): who did what, when, from which state."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")


class TimerRow(Base):
    """A durable deadline action. The scheduler sleeps until the earliest unfired one."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_pending_due", "fired_at", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20), default="")
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(40), default="")  # done, skipped, cancelled


class TicketReportRow(Base):
    """A later report of the same problem ("me too"), attached to an open ticket.

    (chat_id, message_id) is unique, so a redelivered message is not counted twice.
    """

    __tablename__ = "ticket_reports"
    __table_args__ = (
        UniqueConstraint("chat_id", "message_id", name="uq_ticket_reports_chat_message"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    reporter_id: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class StaffPresenceRow(Base):
    """Whether a staff member is at work and can be reached in private chat."""

    __tablename__ = "staff_presence"
    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    off_duty: Mapped[bool] = mapped_column(Boolean, default=False)  # /offduty until /onduty
    on_duty_until: Mapped[datetime | None]  # /onduty outside the roster lasts until then
    changed_at: Mapped[datetime]
    unreachable_since: Mapped[datetime | None]  # a private message to them was refused


class ResidentHomeRow(Base):
    """Where a resident who writes to the bot privately lives (asked once, remembered)."""

    __tablename__ = "resident_homes"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    community_id: Mapped[str | None] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(20))
    # The first message, kept while the bot asks where they live.
    pending_message_id: Mapped[int | None] = mapped_column(BigInteger)
    pending_text: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class KeywordChangeRow(Base):
    """The keyword audit log (revision 0006): one row per change, never updated."""

    __tablename__ = "keyword_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    community_id: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(20))
    word: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {weight, enabled}
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200), default="")


class MessageLogRow(Base):
    """Recent group messages as classified (revision 0006), for what-if and review."""

    __tablename__ = "message_log"
    __table_args__ = (
        UniqueConstraint("chat_id", "message_id", name="uq_message_log_chat_message"),
        Index("ix_message_log_community_id_id", "community_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    relabel: Mapped[str | None] = mapped_column(String(20))


class AnswerRow(Base):
    """A known answer to a common question (revision 0006); '*' serves every community."""

    __tablename__ = "answers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64), index=True)
    topic: Mapped[list[str]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    from_file: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class AdminCredentialRow(Base):
    """An admin's web password, as an Argon2id hash (revision 0006)."""

    __tablename__ = "admin_credentials"
    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class AdminSessionRow(Base):
    """A logged-in web session (revision 0006); only the token's SHA-256 is stored."""

    __tablename__ = "admin_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class OutboxRow(Base):
    """A message to send (revision 0007), written in the same transaction as the change that
    caused it and sent afterwards by the sender; rows are kept as the record of delivery.

    ``state``: pending → sending → sent, or dropped (refused for good / malformed), or merged
    (its text went out inside another row's message).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_chat_id_id", "state", "chat_id", "id"),
        Index("ix_outbox_state_next_at", "state", "next_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    reply_to: Mapped[int | None] = mapped_column(BigInteger)
    buttons: Mapped[list[list[str]]] = mapped_column(JSON)
    mention: Mapped[list[Any] | None] = mapped_column(JSON)
    ticket_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]  # written by the sender's next pass, milliseconds after
    error: Mapped[str] = mapped_column(String(300), default="")
    merged_into: Mapped[int | None] = mapped_column(BigInteger)


class InboxRow(Base):
    """An update as fetched from Telegram (revision 0007), kept before Telegram is told it
    arrived; ``done_at`` is set once it was handled. Undone rows are handled again on start,
    so a crash between fetching and handling loses nothing."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_done_at", "done_at"),)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    # The process that kept it (revision 0008): while that process lives, nobody else
    # replays it; see storage/coordination.py.
    owner: Mapped[int | None] = mapped_column(BigInteger)


class IncidentRow(Base):
    """Several reports of the same thing close together (工单预警, revision 0007): one
    incident groups their tickets, is handled as one and closes them together."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_community_id_resolved_at", "community_id", "resolved_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(20), default="")  # "": the whole community
    category: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(100), default="")
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(String(500), default="")


# The sums one figure row holds (revision 0010), in the order of
# storage/figure_repository.py's query; a test checks the two name the same sums.
FIGURE_SUMS = (
    *("received", "merged", "cancelled", "resolved", "urgent", "answered"),
    *("category:repair", "category:dispute", "category:service"),
    *("rating:satisfied", "rating:basically", "rating:unsatisfied", "rating:unrated"),
    *("due:understand", "met:understand", "due:plan", "met:plan", "due:reply", "met:reply"),
    *("due:resolve:general", "met:resolve:general", "due:resolve:major"),
    *("met:resolve:major", "due:resolve:complex", "met:resolve:complex"),
)


def figure_column(name: str) -> str:
    """The column of a sum: ``due:resolve:general`` -> ``due_resolve_general``."""
    return name.replace(":", "_")


class FigureDayRow(Base):
    """A local day's tickets counted once (revision 0010), so a district's month is read
    from ~40,000 small rows instead of counting ~80,000 tickets: per community, its grids
    (``level`` ``grid``) and its assignees (``staff``; ``key`` '' for nobody) and itself
    (``community``, ``key`` ''). See storage/figure_repository.py."""

    __tablename__ = "figure_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)


for _name in FIGURE_SUMS:
    setattr(
        FigureDayRow,
        figure_column(_name),
        mapped_column(figure_column(_name), Integer, nullable=False, default=0, server_default="0"),
    )


class FigureDayStateRow(Base):
    """Which local days are counted in ``figure_days`` (revision 0010), and in which zone."""

    __tablename__ = "figure_day_states"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    counted_at: Mapped[datetime]


class FigureCommunityDayRow(Base):
    """One community's part of a counted day (revision 0011) and until when its counts hold:
    ``valid_until`` is the first deadline of its tickets still to run out, which turns a
    ticket from pending to late without any write. A change or a deadline recounts just
    this part, not the whole district's day."""

    __tablename__ = "figure_community_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    valid_until: Mapped[datetime | None]


class FigureChangeRow(Base):
    """A ticket was opened or changed (revision 0010): the day it was reported must be
    counted again (its community's part of it). Written in the ticket's own transaction, so
    no change is missed; taken (deleted) by whoever counts the days next."""

    __tablename__ = "figure_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reported_at: Mapped[datetime]
    # revision 0011: the ticket's community, so only its part of the day is counted again
    # (None: the whole day)
    community_id: Mapped[str | None] = mapped_column(String(64))
