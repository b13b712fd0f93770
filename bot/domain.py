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
    """Where a ticket is in its life; the allowed moves are in :data:`TRANSITIONS`."""

    NEW = "new"
    ACCEPTED = "accepted"  # 了解情况
    PLANNED = "planned"  # 商定方案
    RESOLVED = "resolved"  # 办结, waiting for the resident
    CLOSED = "closed"
    REOPENED = "reopened"  # the resident was not satisfied; needs accepting again
    CANCELLED = "cancelled"
    MERGED = "merged"


OPEN_STATUSES = frozenset(
    {TicketStatus.NEW, TicketStatus.ACCEPTED, TicketStatus.PLANNED, TicketStatus.REOPENED}
)
FINAL_STATUSES = frozenset({TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.MERGED})


class Action(StrEnum):
    """What can be done to a ticket. ``escalate`` raises the level and keeps the status."""

    ACCEPT = "accept"
    PLAN = "plan"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    REASSIGN = "reassign"
    FOLLOW_UP = "follow_up"
    CANCEL = "cancel"
    MERGE = "merge"
    RATE = "rate"
    RELABEL = "relabel"  # 分类有误: staff correct the classifier


# From which statuses each action may start. A plan may be made straight from new (the
# assignee learned the facts on the phone): acceptance is recorded on the way.
TRANSITIONS: dict[Action, frozenset[TicketStatus]] = {
    Action.ACCEPT: frozenset({TicketStatus.NEW, TicketStatus.REOPENED}),
    Action.PLAN: OPEN_STATUSES,
    Action.RESOLVE: frozenset({TicketStatus.ACCEPTED, TicketStatus.PLANNED}),
    Action.CLOSE: frozenset({TicketStatus.RESOLVED}),
    Action.REOPEN: frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    Action.ESCALATE: OPEN_STATUSES,
    Action.REASSIGN: OPEN_STATUSES,
    Action.FOLLOW_UP: OPEN_STATUSES,
    Action.CANCEL: OPEN_STATUSES,
    Action.MERGE: OPEN_STATUSES,
    Action.RATE: frozenset({TicketStatus.RESOLVED}),
    Action.RELABEL: OPEN_STATUSES,
}


class Rating(StrEnum):
    """The resident's verdict on a resolved ticket (评单)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY = "basically"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意 (reopens the ticket one level up)


class Stage(StrEnum):
    """The 5321 stages, each with its own deadline."""

    UNDERSTAND = "understand"  # accept by report + 5 min
    PLAN = "plan"  # plan by acceptance + 5 min
    REPLY = "reply"  # resident told by plan + 5 min (the bot does it when the plan is saved)
    RESOLVE = "resolve"  # resolved by report + tier time


# Which Ticket field holds each stage's deadline.
DUE_FIELD = {
    Stage.UNDERSTAND: "accept_due_at",
    Stage.PLAN: "plan_due_at",
    Stage.REPLY: "reply_due_at",
    Stage.RESOLVE: "resolve_due_at",
}


class Colour(StrEnum):
    """分色预警: how much of the current deadline is used up."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    NONE = "none"  # nothing pending


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
    level: int = 0  # 0 first assignee, 1 backup post, 2 community, 3 street
    accept_due_at: datetime | None = None
    plan_due_at: datetime | None = None
    reply_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    accepted_at: datetime | None = None
    planned_at: datetime | None = None
    replied_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    plan_text: str = ""
    follow_up_text: str = ""
    follow_up_at: datetime | None = None
    merged_into: int | None = None
    rating: Rating | None = None  # the latest verdict; None: not rated (yet)
    households: int = 1  # how many households reported it ("me too" adds one)
    topic: str = ""  # the classifier's topic words, space-separated, for "me too" matching
    answered: bool = False  # a known answer was told at once (一次性告知)
    incident_id: int | None = None  # grouped with other reports of the same thing (工单预警)
    version: int = 0  # optimistic lock: a save against a stale version is refused

    @property
    def is_open(self) -> bool:
        """Whether someone still has to act on it."""
        return self.status in OPEN_STATUSES

    def due(self, stage: Stage) -> datetime | None:
        """The deadline of a stage, if it is running."""
        due: datetime | None = getattr(self, DUE_FIELD[stage])
        return due


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
    accept_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    level: int = 0  # 1 when the backup post took it because the first was off duty
    topic: str = ""
    answered: bool = False


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


class IllegalTransition(DomainError):
    """The ticket is not in a status this action can start from."""

    def __init__(self, ticket_id: int, action: Action, status: TicketStatus) -> None:
        super().__init__(f"ticket #{ticket_id}: cannot {action.value} when {status.value}")
        self.ticket_id = ticket_id
        self.action = action
        self.status = status


class AtTopLevel(DomainError):
    """Escalation asked for where nobody stands above."""


class StaleTicket(DomainError):
    """Someone else changed the ticket between reading and saving it; retry."""


@dataclass(frozen=True)
class NewTimer:
    """A deadline action about to be scheduled."""

    ticket_id: int
    kind: str  # "remind" | "breach" | "day_end" | "autoclose"
    stage: str  # a Stage value for remind/breach, "" otherwise
    due_at: datetime


@dataclass(frozen=True)
class Timer:
    """A durable deadline action: remind or breach a stage, ask at day end, auto-close."""

    id: int
    ticket_id: int
    kind: str  # "remind" | "breach" | "day_end" | "autoclose"
    stage: str  # a Stage value for remind/breach, "" otherwise
    due_at: datetime


@dataclass(frozen=True)
class Button:
    """An inline button: its label and the data it sends back."""

    label: str
    data: str


class Delivery(StrEnum):
    """What became of a notice."""

    SENT = "sent"
    REFUSED = "refused"  # for good: the person never pressed Start, blocked the bot, left
    FAILED = "failed"  # this time: network, Telegram's 5xx, rate limits (try again later)
    REJECTED = "rejected"  # for good: Telegram found the request itself malformed (our fault)


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt to send came to, with Telegram's retry_after when it said 429."""

    outcome: Delivery
    retry_after: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Notice:
    """A message the core wants sent: queued in the outbox, delivered by the sender."""

    chat_id: int
    text: str
    reply_to: int | None = None
    buttons: tuple[Button, ...] = ()
    ticket_id: int | None = None
    kind: str = ""  # what it is, for logs and for acting on delivery (e.g. "plan_to_resident")
    mention: tuple[int, str] | None = None  # (user id, name): the name in the text mentions them


@dataclass(frozen=True)
class Incident:
    """Several reports of the same thing close together (工单预警), handled as one."""

    id: int
    community_id: str
    building: str  # "" when it spans the community
    category: Category
    topic: str
    opened_at: datetime
    resolved_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class OutboxMessage:
    """A notice waiting in the outbox (or sent from it)."""

    id: int
    notice: Notice
    created_at: datetime
    attempts: int = 0
    state: str = "pending"  # pending, sending, sent, dropped, merged
    next_at: datetime | None = None  # when it may be tried (None: now)

    def due(self, now: datetime) -> bool:
        """Whether it may be tried at ``now`` (a retry waits for its back-off)."""
        return self.next_at is None or self.next_at <= now


@dataclass(frozen=True)
class Presence:
    """What the bot knows about a staff member's availability beyond the roster."""

    staff_id: str
    off_duty: bool = False  # said /offduty and not /onduty since
    on_duty_until: datetime | None = None  # said /onduty outside their roster: until then
    unreachable_since: datetime | None = None  # a private message to them was refused


@dataclass(frozen=True)
class Home:
    """Where a resident who writes privately lives, and a report waiting for that answer."""

    user_id: int
    community_id: str | None = None
    building: str | None = None
    pending_message_id: int | None = None
    pending_text: str | None = None

    @property
    def known(self) -> bool:
        """Whether both questions have been answered."""
        return self.community_id is not None and self.building is not None


@dataclass(frozen=True)
class Report:
    """A later report of the same problem ("me too"), attached to an open ticket."""

    ticket_id: int
    chat_id: int
    message_id: int
    reporter_id: int
    text: str
    at: datetime


DISTRICT = "*"  # the scope of district-wide keywords and answers, which a community overrides


@dataclass(frozen=True)
class KeywordEntry:
    """One stored routing rule: a keyword, phrase or cue word with its weight."""

    scope: str  # DISTRICT or a community id
    category: str  # a request category or a cue group (cancel, notice, chatter, question)
    word: str
    weight: float
    enabled: bool = True


def merge_keywords(
    district: list[KeywordEntry], own: list[KeywordEntry]
) -> dict[str, dict[str, float]]:
    """The rules a community classifies with: the district's, overridden word by word by its
    own rows (a disabled own row switches the district word off there)."""
    merged = {(e.category, e.word): e for e in district}
    merged.update({(e.category, e.word): e for e in own})
    table: dict[str, dict[str, float]] = {}
    for (category, word), entry in merged.items():
        if entry.enabled:
            table.setdefault(category, {})[word] = entry.weight
    return table


@dataclass(frozen=True)
class KeywordChange:
    """One line of the keyword audit log: who changed which rule, from what to what."""

    id: int
    at: datetime
    actor: str
    scope: str
    category: str
    word: str
    before: tuple[float, bool] | None  # (weight, enabled); None: the rule did not exist
    after: tuple[float, bool] | None  # None: the rule was deleted
    note: str = ""


@dataclass(frozen=True)
class LoggedMessage:
    """A group message as the classifier saw it, kept for what-if and the review queue."""

    id: int
    community_id: str
    chat_id: int
    message_id: int
    at: datetime
    text: str
    category: str
    confidence: float
    urgent: bool
    ticket_id: int | None = None
    relabel: str | None = None  # what staff said it really was


@dataclass(frozen=True)
class Answer:
    """A known answer to a common question (一次性告知): topic words and the whole answer."""

    id: int
    scope: str  # DISTRICT or a community id
    topic: tuple[str, ...]
    text: str
    from_file: bool = False


@dataclass(frozen=True)
class TicketCounts:
    """Tickets counted by the database for the figures: all of them (``level`` ``all``), or
    those of one community, grid or assignee (``level`` ``community``, ``grid``, ``staff``;
    ``key`` its id, ``None`` for tickets nobody holds).

    ``counts`` keys: ``received`` (neither merged nor cancelled), ``merged``, ``cancelled``,
    ``resolved``, ``urgent``, ``answered``, ``category:<c>``, ``rating:<r>`` (``unrated``
    for resolved ones without a rating), and per 5321 stage key (``understand``, ``plan``,
    ``reply``, ``resolve:<tier>``) ``due:<key>`` (met or overdue) and ``met:<key>`` (met in
    time). See :class:`bot.services.figures.Figures`.
    """

    level: str
    key: str | None
    counts: dict[str, int]
