"""Interfaces the core depends on; storage and the edges provide the implementations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from bot.directory import Directory
from bot.domain import (
    Category,
    Delivery,
    Home,
    NewTicket,
    Notice,
    Presence,
    Report,
    Ticket,
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

    async def by_message(self, chat_id: int, message_id: int) -> Ticket | None:
        """The ticket opened from this message, if any."""
        ...

    async def by_reporter(self, reporter_id: int, limit: int = 20) -> list[Ticket]:
        """A resident's most recent tickets, newest first."""
        ...

    async def open_like(
        self, community_id: str, category: Category, since: datetime, limit: int = 50
    ) -> list[Ticket]:
        """Open tickets of one community and category reported since ``since``, newest first."""
        ...

    async def open_for(self, assignee_id: str, limit: int = 50) -> list[Ticket]:
        """Open tickets assigned to this person."""
        ...

    async def save(self, ticket: Ticket, at: datetime) -> Ticket:
        """Write the lifecycle fields; raises StaleTicket if it changed since it was read."""
        ...

    async def add_event(
        self,
        ticket_id: int,
        *,
        at: datetime,
        actor: str,
        kind: str,
        from_status: str | None,
        to_status: str | None,
        note: str = "",
    ) -> None:
        """Append one entry to the ticket's history."""
        ...

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        ...


class ReportRepository(Protocol):
    """ "Me too" reports attached to tickets."""

    async def add(self, report: Report) -> bool:
        """Attach a report; False if this message was attached before (a redelivery)."""
        ...

    async def by_message(self, chat_id: int, message_id: int) -> Report | None:
        """The report made by this message, if it was attached to a ticket."""
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

    async def add(self, ticket_id: int, kind: str, stage: str, due_at: datetime) -> None:
        """Schedule one action."""
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

    async def deliver(self, notice: Notice) -> Delivery:
        """Send one message; say whether it was sent, refused for good, or failed this time
        (the reason is logged)."""
        ...


class DirectoryRepository(Protocol):
    """The organisation (staff, communities, grids, groups) and district settings."""

    async def load(self) -> Directory | None:
        """The stored directory, or None before the first seed."""
        ...

    async def replace(self, directory: Directory) -> None:
        """Make the stored organisation equal to ``directory``."""
        ...

    async def get_meta(self, key: str) -> Any:
        """A stored fact, or None."""
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
