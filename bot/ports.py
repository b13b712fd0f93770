"""Interfaces the core depends on; storage and the edges provide the implementations."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from bot.directory import Directory
from bot.domain import (
    Answer,
    Category,
    DeliveryResult,
    Home,
    Incident,
    KeywordChange,
    KeywordEntry,
    LoggedMessage,
    NewTicket,
    NewTimer,
    Notice,
    OutboxMessage,
    Presence,
    Report,
    Ticket,
    TicketCounts,
    TicketEvent,
    Timer,
)


class Clock(Protocol):
    """Where the core gets the time from."""

    def now(self) -> datetime:
        """The current, timezone-aware time."""
        ...


class TicketRepository(Protocol):
    """Tickets and their history."""

    async def add(self, ticket: NewTicket) -> Ticket:
        """Store a new ticket and return it with its number."""
        ...

    async def get(self, ticket_id: int) -> Ticket | None:
        """The ticket with this number, if any."""
        ...

    async def reported_between(
        self, start: datetime, end: datetime, community_ids: list[str] | None = None
    ) -> list[Ticket]:
        """Tickets reported in [start, end), oldest first; None: every community."""
        ...

    async def all_open(
        self, community_ids: list[str] | None = None, limit: int | None = None
    ) -> list[Ticket]:
        """Every open ticket, the most pressing deadline first."""
        ...

    async def count_open(self, community_ids: list[str] | None = None) -> int:
        """How many tickets are open."""
        ...

    async def by_message(self, chat_id: int, message_id: int) -> Ticket | None:
        """The ticket opened from this message, if any."""
        ...

    async def for_message(self, chat_id: int, message_id: int) -> Ticket | None:
        """The ticket this message opened or joined ("me too"), if any."""
        ...

    async def by_reporter(self, reporter_id: int, limit: int = 20) -> list[Ticket]:
        """A resident's most recent tickets, newest first."""
        ...

    async def open_like(
        self, community_id: str, grid_id: str, category: Category, since: datetime, limit: int = 50
    ) -> list[Ticket]:
        """Open tickets of one grid and category reported since ``since``, newest first."""
        ...

    async def open_for(self, assignee_id: str, limit: int = 50) -> list[Ticket]:
        """Open tickets assigned to this person."""
        ...

    async def save(self, ticket: Ticket, at: datetime) -> Ticket:
        """Write the lifecycle fields; raises StaleTicket if it changed since it was read."""
        ...

    async def add_events(self, events: Iterable[TicketEvent]) -> None:
        """Append entries to tickets' histories, in the order given (one statement)."""
        ...

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        ...


class ReportRepository(Protocol):
    """ "Me too" reports attached to tickets."""

    async def add(self, report: Report) -> bool:
        """Attach a report; False if this message was attached before (a redelivery)."""
        ...

    async def for_ticket(self, ticket_id: int) -> list[Report]:
        """Every report attached to a ticket, oldest first."""
        ...


class PresenceRepository(Protocol):
    """Staff availability beyond the roster, and whether they can be reached privately."""

    async def get_many(self, staff_ids: Iterable[str]) -> dict[str, Presence]:
        """What is recorded for these people (absent: nothing recorded, i.e. the defaults)."""
        ...

    async def save(self, presence: Presence, at: datetime) -> None:
        """Record a person's presence."""
        ...


class HomeRepository(Protocol):
    """Where residents who write privately live."""

    async def get(self, user_id: int) -> Home | None:
        """The resident's home, if they told us (or were asked)."""
        ...

    async def save(self, home: Home, at: datetime) -> None:
        """Remember it."""
        ...


class TimerRepository(Protocol):
    """Durable deadline actions (remind, breach, day_end, autoclose)."""

    async def add(self, timers: Iterable[NewTimer]) -> None:
        """Schedule these actions."""
        ...

    async def cancel(
        self, ticket_id: int, at: datetime, stages: Iterable[str] = (), kinds: Iterable[str] = ()
    ) -> None:
        """Drop pending actions of a ticket for these stages or of these kinds."""
        ...

    async def next_due(self) -> datetime | None:
        """When the earliest pending action falls due."""
        ...

    async def due(self, now: datetime, limit: int) -> list[Timer]:
        """Pending actions due by ``now``, earliest first."""
        ...

    async def pending(self, ticket_id: int) -> list[Timer]:
        """A ticket's pending actions."""
        ...

    async def finish(self, timer_id: int, at: datetime, outcome: str) -> bool:
        """Mark an action done; False if someone else already did."""
        ...

    async def set_outcome(self, timer_id: int, outcome: str) -> None:
        """Record what firing a claimed action did."""
        ...


class Notifier(Protocol):
    """Delivers what the core wants said (Telegram in production, a list in tests)."""

    async def deliver(self, notice: Notice) -> DeliveryResult:
        """Send one message; say whether it was sent, refused for good, rejected as
        malformed, or failed this time (with Telegram's retry_after when it gave one)."""
        ...


class IncidentRepository(Protocol):
    """Incidents (工单预警) and the tickets they group."""

    async def recent_reports(
        self, community_id: str, category: Category, since: datetime
    ) -> list[tuple[Ticket, int]]:
        """Tickets of this category reported since then, each with its report count."""
        ...

    async def open_about(
        self, community_id: str, category: Category, buildings: Collection[str]
    ) -> list[Incident]:
        """Unresolved incidents of this category about any of these buildings ("" = the
        whole community), oldest first."""
        ...

    async def add(
        self, community_id: str, building: str, category: Category, topic: str, at: datetime
    ) -> Incident:
        """Open an incident."""
        ...

    async def get(self, incident_id: int) -> Incident | None:
        """One incident."""
        ...

    async def link(self, incident_id: int, ticket_ids: list[int]) -> None:
        """Group these tickets under the incident."""
        ...

    async def open_tickets(self, incident_id: int) -> list[Ticket]:
        """The incident's tickets still open."""
        ...

    async def resolve(self, incident_id: int, at: datetime, note: str) -> bool:
        """Mark it resolved; False if it was already."""
        ...


class InboxRepository(Protocol):
    """Updates kept from the moment they are fetched until they are handled."""

    async def keep_many(
        self, updates: list[tuple[int, dict[str, Any]]], at: datetime, owner: int | None = None
    ) -> set[int]:
        """Keep a fetched batch as fetched by process ``owner``; returns the ids that are
        new (the others are kept already: fetched again)."""
        ...

    async def done(self, update_ids: Iterable[int], at: datetime) -> None:
        """These updates were handled."""
        ...

    async def undone_owners(self) -> set[int | None]:
        """The processes that kept updates not yet handled."""
        ...

    async def take_over(
        self, owners: set[int | None], owner: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Make the undone updates of these processes ``owner``'s; return them oldest first."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forget updates handled before ``before``."""
        ...


class OutboxRepository(Protocol):
    """Messages waiting to be sent, in the order they were written, per chat."""

    async def add(self, notices: Iterable[Notice], at: datetime) -> None:
        """Queue these (inside the caller's transaction), in the order given."""
        ...

    async def heads(self, limit: int) -> list[OutboxMessage]:
        """The oldest unsent message of each chat where nothing is being sent, oldest first,
        due or not (``next_at`` says when each may be tried; a later message of a chat waits
        for its head, so only heads count)."""
        ...

    async def pending_in(
        self, chat_id: int, kinds: Iterable[str], limit: int
    ) -> list[OutboxMessage]:
        """A chat's pending messages of these kinds, oldest first."""
        ...

    async def count_pending(self, chat_id: int | None = None) -> int:
        """How many messages wait or are being sent (in one chat, or in all)."""
        ...

    async def claim(self, message_ids: list[int]) -> set[int]:
        """Claim pending messages for sending now (one statement); the ids claimed (the
        others are no longer pending)."""
        ...

    async def sent(self, message_ids: Iterable[int], at: datetime) -> None:
        """They reached Telegram."""
        ...

    async def retry(self, message_id: int, at: datetime, error: str) -> None:
        """Try again at ``at``."""
        ...

    async def drop(self, message_id: int, error: str) -> None:
        """Give up on it for good (the reason is kept)."""
        ...

    async def merge(self, into: int, notice: Notice, merged: list[int]) -> None:
        """Send ``notice`` as message ``into``; the ``merged`` ones went out inside it."""
        ...

    async def resume(self) -> int:
        """After a restart: messages caught mid-send are pending again; returns how many."""
        ...

    async def for_ticket(self, ticket_id: int) -> list[OutboxMessage]:
        """Everything queued about a ticket, oldest first."""
        ...


class DirectoryRepository(Protocol):
    """The organisation (staff, communities, grids, groups) and district settings."""

    async def load(self) -> Directory | None:
        """The stored directory, or None before the first seed."""
        ...

    async def replace(self, directory: Directory) -> None:
        """Make the stored organisation equal to ``directory``."""
        ...

    async def get_meta(self, key: str, *, lock: bool = False) -> Any:
        """A stored fact, or None; ``lock`` holds it until the transaction ends."""
        ...

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a fact."""
        ...


class KeywordRepository(Protocol):
    """Routing words per category, district-wide ('*') or per community."""

    async def count(self) -> int:
        """How many keyword rows exist."""
        ...

    async def add_many(
        self, community_id: str, table: Mapping[str, Mapping[str, float]], at: datetime
    ) -> None:
        """Insert keywords given as {category: {word: weight}}."""
        ...

    async def table_for(self, community_id: str) -> dict[str, dict[str, float]]:
        """Enabled keywords for a community: district defaults overridden by its own."""
        ...


class KeywordAdminRepository(Protocol):
    """Single keyword rows and their audit log."""

    async def entries(self, scope: str) -> list[KeywordEntry]:
        """Every rule stored for one scope, disabled ones included."""
        ...

    async def get(self, scope: str, category: str, word: str) -> KeywordEntry | None:
        """One rule, or None."""
        ...

    async def put(self, entry: KeywordEntry, at: datetime) -> None:
        """Insert or update one rule."""
        ...

    async def remove(self, scope: str, category: str, word: str) -> None:
        """Delete one rule."""
        ...

    async def log(  # noqa: PLR0917 - one audit line is these facts
        self,
        at: datetime,
        actor: str,
        scope: str,
        category: str,
        word: str,
        before: tuple[float, bool] | None,
        after: tuple[float, bool] | None,
        note: str = "",
    ) -> int:
        """Append an audit line; returns its number."""
        ...

    async def changes(self, scope: str | None = None, limit: int = 200) -> list[KeywordChange]:
        """The audit log, newest first."""
        ...

    async def change(self, change_id: int) -> KeywordChange | None:
        """One audit line."""
        ...


class MessageLogRepository(Protocol):
    """Recent group messages as the classifier saw them."""

    async def add(self, messages: Sequence[LoggedMessage]) -> None:
        """Record these messages; one already recorded (same chat and message) is skipped."""
        ...

    async def recent(self, community_id: str, limit: int) -> list[LoggedMessage]:
        """The community's last messages, newest first."""
        ...

    async def for_review(
        self, community_ids: list[str], below: float, limit: int
    ) -> list[LoggedMessage]:
        """Unsure or re-labelled messages, newest first."""
        ...

    async def relabel(self, chat_id: int, message_id: int, label: str) -> None:
        """Record what staff said a message really was."""
        ...

    async def prune(self, community_id: str, keep: int) -> int:
        """Forget all but the last ``keep`` messages of a community."""
        ...


class AnswerRepository(Protocol):
    """Known answers to common questions."""

    async def for_scopes(self, scopes: list[str]) -> list[Answer]:
        """Answers of these scopes."""
        ...

    async def add(
        self, scope: str, topic: list[str], text: str, at: datetime, from_file: bool = False
    ) -> Answer:
        """Store a new answer."""
        ...

    async def update(self, answer_id: int, topic: list[str], text: str, at: datetime) -> bool:
        """Change an answer."""
        ...

    async def remove(self, answer_id: int) -> bool:
        """Delete an answer."""
        ...

    async def replace_from_file(
        self, scope: str, answers: list[tuple[list[str], str]], at: datetime
    ) -> None:
        """Make the file's answers of a scope what the file says."""
        ...


class AdminRepository(Protocol):
    """Admins' password hashes and web sessions."""

    async def password_hash(self, staff_id: str) -> str | None:
        """The stored hash, or None."""
        ...

    async def set_password_hash(self, staff_id: str, password_hash: str, at: datetime) -> None:
        """Store a new hash and end the admin's sessions."""
        ...

    async def add_session(
        self, token_hash: str, staff_id: str, csrf: str, at: datetime, expires_at: datetime
    ) -> None:
        """Open a session."""
        ...

    async def session_for(self, token_hash: str, now: datetime) -> tuple[str, str] | None:
        """(staff id, CSRF token) of a live session, or None."""
        ...

    async def end_session(self, token_hash: str) -> None:
        """Log out."""
        ...

    async def purge_sessions(self, now: datetime) -> None:
        """Forget expired sessions."""
        ...


class FigureRepository(Protocol):
    """Tickets counted by the database for the figures."""

    async def counts(
        self,
        days: tuple[date, date] | None,
        live: list[tuple[datetime, datetime]],
        community_ids: list[str] | None,
        now: datetime,
    ) -> list[TicketCounts]:
        """The counted days ``days`` (first, last) plus the tickets reported in each ``live``
        range, summed in all and per community, grid and assignee."""
        ...

    async def received_by_hour(
        self, start: datetime, end: datetime, community_ids: list[str] | None
    ) -> list[tuple[datetime, str, int]]:
        """Tickets received in [start, end) per UTC hour and category."""
        ...

    # The roll-up: each past local day's tickets counted once, kept until they change.

    async def take_changes(self) -> list[tuple[datetime, str | None]]:
        """Wait until nobody else counts days; take the report times and communities of the
        tickets opened or changed since the last count (those parts of their days must be
        counted again; community None: the whole day)."""
        ...

    async def counted_days(self, days: Iterable[date]) -> dict[date, str]:
        """Which of these days are counted, and in which zone."""
        ...

    async def expired_parts(self, first: date, last: date, now: datetime) -> set[tuple[date, str]]:
        """(day, community) parts of the counted days in [first, last] whose counts no
        longer hold at ``now``."""
        ...

    async def forget_days(self, days: Iterable[date]) -> None:
        """Drop these days' counts."""
        ...

    async def count_day(
        self,
        day: date,
        start: datetime,
        end: datetime,
        *,
        zone: str,
        now: datetime,
        community_ids: Collection[str] | None = None,
    ) -> None:
        """Count the tickets reported in [start, end) (local ``day``) as of ``now``: all of
        them, or these communities' again."""
        ...

    async def analyze(self) -> None:
        """Refresh the database's statistics after many days were counted at once."""
        ...

    async def day_received(
        self, first: date, last: date, community_ids: list[str] | None
    ) -> list[tuple[date, str, int]]:
        """Tickets received on each counted day in [first, last], per category."""
        ...


class UnitOfWork(Protocol):
    """One transaction's worth of repositories; nothing is saved without ``commit``."""

    # Read-only properties, so implementations may hold more specific repository types.
    @property
    def tickets(self) -> TicketRepository: ...

    @property
    def directory(self) -> DirectoryRepository: ...

    @property
    def keywords(self) -> KeywordRepository: ...

    @property
    def timers(self) -> TimerRepository: ...

    @property
    def reports(self) -> ReportRepository: ...

    @property
    def presence(self) -> PresenceRepository: ...

    @property
    def homes(self) -> HomeRepository: ...

    @property
    def keyword_admin(self) -> KeywordAdminRepository: ...

    @property
    def messages(self) -> MessageLogRepository: ...

    @property
    def answers(self) -> AnswerRepository: ...

    @property
    def admins(self) -> AdminRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def inbox(self) -> InboxRepository: ...

    @property
    def incidents(self) -> IncidentRepository: ...

    @property
    def figures(self) -> FigureRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make the changes durable."""
        ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work (a fresh session) for each use."""

    def __call__(self) -> UnitOfWork: ...
