"""Domain types shared by the services: categories, tiers, tickets and domain errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Category(StrEnum):
    """What a message asks for. ``none`` means it is not a request at all."""

    REPAIR = "repair"
    DISPUTE = "dispute"
    SERVICE = "service"
    NONE = "none"


REQUEST_CATEGORIES: tuple[Category, ...] = (Category.REPAIR, Category.DISPUTE, Category.SERVICE)


class Tier(StrEnum):
    """How big a problem is, which sets its resolve deadline under the 5321 rule."""

    GENERAL = "general"  # 一般性问题: 30 minutes by default
    MAJOR = "major"  # 较大问题: 2 hours
    COMPLEX = "complex"  # 特别复杂问题: 1 day


class Role(StrEnum):
    """What a staff member is to the bot."""

    GRID_WORKER = "grid_worker"  # 网格员
    PROPERTY = "property"  # 物业管家
    COMMUNITY = "community"  # 社区工作人员
    STREET = "street"  # 街道工作人员
    ADMIN = "admin"  # 管理员


class TicketStatus(StrEnum):
    """Where a ticket is in its life; issue-level transitions live in the SLA service."""

    NEW = "new"
    ACCEPTED = "accepted"
    PLANNED = "planned"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    MERGED = "merged"


@dataclass(frozen=True)
class Ticket:
    """A resident's request as the core sees it."""

    id: int
    community_id: str
    grid_id: str
    chat_id: int
    message_id: int
    reporter_id: int
    reporter_name: str
    text: str
    category: Category
    confidence: float
    urgent: bool
    tier: Tier
    status: TicketStatus
    created_at: datetime
    assignee_id: str | None = None
    location: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NewTicket:
    """What intake knows when it opens a ticket; storage assigns the number."""

    community_id: str
    grid_id: str
    chat_id: int
    message_id: int
    reporter_id: int
    reporter_name: str
    text: str
    category: Category
    confidence: float
    urgent: bool
    tier: Tier
    created_at: datetime
    assignee_id: str | None
    location: dict[str, str]


@dataclass(frozen=True)
class TicketEvent:
    """One entry of a ticket's append-only history (全程记录)."""

    ticket_id: int
    at: datetime
    actor: str
    kind: str
    from_status: str | None
    to_status: str | None
    note: str


class DomainError(Exception):
    """Base of errors the edges turn into a polite message or an HTTP status."""


class TicketNotFound(DomainError):
    """No ticket has that number."""


class NotAllowed(DomainError):
    """The person may not do this to this ticket."""
