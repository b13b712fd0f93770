"""Repositories over an AsyncSession handed in by the unit of work."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, insert, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.directory import (
    Community,
    Directory,
    Grid,
    Group,
    RoutingPolicy,
    SlaPolicy,
    StaffMember,
    Street,
)
from bot.domain import (
    DISTRICT,
    OPEN_STATUSES,
    Category,
    Home,
    KeywordEntry,
    NewTicket,
    NewTimer,
    Presence,
    Rating,
    Report,
    Role,
    StaleTicket,
    Ticket,
    TicketEvent,
    TicketStatus,
    Tier,
    Timer,
    merge_keywords,
)
from bot.roster import parse_shift
from storage.coordination import notify
from storage.models import (
    CommunityRow,
    FigureChangeRow,
    GridRow,
    GroupRow,
    KeywordRow,
    MetaRow,
    ResidentHomeRow,
    StaffPresenceRow,
    StaffRow,
    TicketEventRow,
    TicketReportRow,
    TicketRow,
    TimerRow,
)
from storage.statements import insert_ignoring, table

# Core statements on the hot path, built once and given their values when executed:
# building ``.values(...)`` anew costs more than running the statement (storage/statements.py).
TICKETS = table(TicketRow)
_INSERT_TICKET = insert(TICKETS).returning(TICKETS.c.id)
_INSERT_FIGURE_CHANGE = insert(table(FigureChangeRow))
_INSERT_EVENT = insert(table(TicketEventRow))
# SET comes from the values given; the two bound names are not columns.
_SAVE_TICKET = update(TICKETS).where(
    TICKETS.c.id == bindparam("saved_id"), TICKETS.c.version == bindparam("read_version")
)

# Enum members by value: a dictionary lookup is several times cheaper than Enum(value).
_CATEGORIES = {c.value: c for c in Category}
_TIERS = {t.value: t for t in Tier}
_STATUSES = {s.value: s for s in TicketStatus}
_RATINGS = {r.value: r for r in Rating}


def _ticket(row: TicketRow | Row[Any]) -> Ticket:
    """A ticket from its ORM row or, for long lists, from a plain row of ``_COLUMNS`` (no
    ORM objects to build: a district's ~1,700 open tickets load in half the time)."""
    return Ticket(
        id=row.id,
        community_id=row.community_id,
        grid_id=row.grid_id,
        chat_id=row.chat_id,
        message_id=row.message_id,
        reporter_id=row.reporter_id,
        reporter_name=row.reporter_name,
        text=row.text,
        category=_CATEGORIES[row.category],
        confidence=row.confidence,
        urgent=row.urgent,
        tier=_TIERS[row.tier],
        status=_STATUSES[row.status],
        created_at=row.created_at,
        assignee_id=row.assignee_id,
        location=dict(row.location or {}),
        level=row.level,
        accept_due_at=row.accept_due_at,
        plan_due_at=row.plan_due_at,
        reply_due_at=row.reply_due_at,
        resolve_due_at=row.resolve_due_at,
        accepted_at=row.accepted_at,
        planned_at=row.planned_at,
        replied_at=row.replied_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        plan_text=row.plan_text,
        follow_up_text=row.follow_up_text,
        follow_up_at=row.follow_up_at,
        merged_into=row.merged_into,
        rating=_RATINGS[row.rating] if row.rating else None,
        households=row.households,
        topic=row.topic,
        answered=row.answered,
        incident_id=row.incident_id,
        version=row.version,
    )


_COLUMNS = tuple(TicketRow.__table__.c)
_OPEN_VALUES = [s.value for s in OPEN_STATUSES]
REPORTS = table(TicketReportRow)

# Reads on the hot path, built once as well: building a select with its WHERE clause anew
# costs several times more than running it (ORM select by key, built per call: ~500 µs of
# CPU; the same select built once, plain rows: ~150 µs). Plain rows also keep the session's
# identity map out of the way: tickets are saved with Core UPDATEs, so an ORM object read
# earlier in the same transaction would be stale.
_TICKET_BY_ID = select(*_COLUMNS).where(TICKETS.c.id == bindparam("ticket_id"))
_TICKET_OF_MESSAGE = union_all(
    select(TICKETS.c.id).where(
        TICKETS.c.chat_id == bindparam("chat_id"), TICKETS.c.message_id == bindparam("message_id")
    ),
    select(REPORTS.c.ticket_id).where(
        REPORTS.c.chat_id == bindparam("chat_id"), REPORTS.c.message_id == bindparam("message_id")
    ),
).limit(1)
_OPEN_LIKE = (
    select(*_COLUMNS)
    .where(
        TICKETS.c.community_id == bindparam("community_id"),  # the index
        TICKETS.c.grid_id == bindparam("grid_id"),
        TICKETS.c.created_at >= bindparam("since"),
        TICKETS.c.category == bindparam("category"),
        TICKETS.c.status.in_(_OPEN_VALUES),
    )
    .order_by(TICKETS.c.created_at.desc(), TICKETS.c.id.desc())
    .limit(bindparam("limit"))
)

# What a lifecycle step may change; everything else about a ticket is fixed at intake.
_MUTABLE = (
    "status",
    "category",
    "tier",
    "assignee_id",
    "level",
    "accept_due_at",
    "plan_due_at",
    "reply_due_at",
    "resolve_due_at",
    "accepted_at",
    "planned_at",
    "replied_at",
    "resolved_at",
    "closed_at",
    "plan_text",
    "follow_up_text",
    "follow_up_at",
    "merged_into",
    "rating",
    "households",
    "text",
    "urgent",
    "location",
    "topic",
)


class SqlTicketRepository:
    """Tickets and their append-only history."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, ticket: NewTicket) -> Ticket:
        """Store a new ticket; the database assigns its number."""
        values: dict[str, Any] = {
            "community_id": ticket.community_id,
            "grid_id": ticket.grid_id,
            "chat_id": ticket.chat_id,
            "message_id": ticket.message_id,
            "reporter_id": ticket.reporter_id,
            "reporter_name": ticket.reporter_name,
            "text": ticket.text,
            "category": ticket.category.value,
            "confidence": ticket.confidence,
            "urgent": ticket.urgent,
            "tier": ticket.tier.value,
            "status": TicketStatus.NEW.value,
            "assignee_id": ticket.assignee_id,
            "location": dict(ticket.location),
            "created_at": ticket.created_at,
            "updated_at": ticket.created_at,
            "level": ticket.level,
            "topic": ticket.topic,
            "answered": ticket.answered,
            "households": 1,
            "accept_due_at": ticket.accept_due_at,
            "resolve_due_at": ticket.resolve_due_at,
            "plan_text": "",
            "follow_up_text": "",
            "version": 0,
        }
        # A Core insert: the ORM's unit of work would cost several times more, for a row
        # nothing else in this transaction reads back through the session.
        ticket_id = await self.session.scalar(_INSERT_TICKET, values)
        await self._figures_changed(ticket)
        return _ticket(TicketRow(id=ticket_id, **values))

    async def _figures_changed(self, ticket: NewTicket | Ticket) -> None:
        """Its community's part of the day it was reported is counted again, in this same
        transaction (storage/figure_repository.py). Every write that changes a ticket's
        figures must call this: ``add`` and ``save`` are the only ones."""
        await self.session.execute(
            _INSERT_FIGURE_CHANGE,
            {"reported_at": ticket.created_at, "community_id": ticket.community_id},
        )

    async def get(self, ticket_id: int) -> Ticket | None:
        """The ticket with this number."""
        row = (await self.session.execute(_TICKET_BY_ID, {"ticket_id": ticket_id})).first()
        return _ticket(row) if row else None

    async def save(self, ticket: Ticket, at: datetime) -> Ticket:
        """Write the lifecycle fields of ``ticket`` if nobody saved it since it was read."""
        values: dict[str, Any] = {name: getattr(ticket, name) for name in _MUTABLE}
        for name in ("status", "category", "tier", "rating"):
            values[name] = values[name].value if values[name] is not None else None
        result = await self.session.execute(
            _SAVE_TICKET,
            {
                **values,
                "updated_at": at,
                "version": ticket.version + 1,
                "saved_id": ticket.id,
                "read_version": ticket.version,
            },
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleTicket(f"ticket #{ticket.id} changed meanwhile")
        await self._figures_changed(ticket)
        return replace(ticket, version=ticket.version + 1)

    async def open_for(self, assignee_id: str, limit: int = 50) -> list[Ticket]:
        """Open tickets assigned to this person, oldest first."""
        rows = await self.session.scalars(
            select(TicketRow)
            .where(
                TicketRow.assignee_id == assignee_id,
                TicketRow.status.in_([s.value for s in OPEN_STATUSES]),
            )
            .order_by(TicketRow.created_at, TicketRow.id)
            .limit(limit)
        )
        return [_ticket(r) for r in rows]

    async def reported_between(
        self, start: datetime, end: datetime, community_ids: list[str] | None = None
    ) -> list[Ticket]:
        """Tickets reported in [start, end), oldest first; None: every community."""
        query = (
            select(*_COLUMNS)
            .where(TicketRow.created_at >= start, TicketRow.created_at < end)
            .order_by(TicketRow.created_at, TicketRow.id)
        )
        if community_ids is not None:
            query = query.where(TicketRow.community_id.in_(community_ids))
        return [_ticket(r) for r in await self.session.execute(query)]

    async def all_open(
        self, community_ids: list[str] | None = None, limit: int | None = None
    ) -> list[Ticket]:
        """Open tickets, the most pressing deadline first (all of them, or the first
        ``limit``)."""
        query = (
            select(*_COLUMNS)
            .where(TicketRow.status.in_([s.value for s in OPEN_STATUSES]))
            .order_by(TicketRow.resolve_due_at, TicketRow.id)
            .limit(limit)
        )
        if community_ids is not None:
            query = query.where(TicketRow.community_id.in_(community_ids))
        return [_ticket(r) for r in await self.session.execute(query)]

    async def count_open(self, community_ids: list[str] | None = None) -> int:
        """How many tickets are open."""
        query = select(func.count()).where(TicketRow.status.in_([s.value for s in OPEN_STATUSES]))
        if community_ids is not None:
            query = query.where(TicketRow.community_id.in_(community_ids))
        return int(await self.session.scalar(query) or 0)

    async def open_like(
        self, community_id: str, grid_id: str, category: Category, since: datetime, limit: int = 50
    ) -> list[Ticket]:
        """Open tickets of one grid and category reported since ``since``, newest first."""
        rows = await self.session.execute(
            _OPEN_LIKE,
            {
                "community_id": community_id,
                "grid_id": grid_id,
                "since": since,
                "category": category.value,
                "limit": limit,
            },
        )
        return [_ticket(r) for r in rows]

    async def by_reporter(self, reporter_id: int, limit: int = 20) -> list[Ticket]:
        """A resident's most recent tickets, newest first."""
        rows = await self.session.scalars(
            select(TicketRow)
            .where(TicketRow.reporter_id == reporter_id)
            .order_by(TicketRow.id.desc())
            .limit(limit)
        )
        return [_ticket(r) for r in rows]

    async def by_message(self, chat_id: int, message_id: int) -> Ticket | None:
        """The ticket opened from this message."""
        row = await self.session.scalar(
            select(TicketRow).where(
                TicketRow.chat_id == chat_id, TicketRow.message_id == message_id
            )
        )
        return _ticket(row) if row else None

    async def for_message(self, chat_id: int, message_id: int) -> Ticket | None:
        """The ticket this message opened or joined ("me too"). A message seen for the first
        time (nearly every one) costs one query over both tables' unique keys."""
        ticket_id = await self.session.scalar(
            _TICKET_OF_MESSAGE, {"chat_id": chat_id, "message_id": message_id}
        )
        return None if ticket_id is None else await self.get(ticket_id)

    async def add_events(self, events: Iterable[TicketEvent]) -> None:
        """Append history entries, in the order given (one statement for all of them)."""
        rows = [
            {
                "ticket_id": e.ticket_id,
                "at": e.at,
                "actor": e.actor,
                "kind": e.kind,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "note": e.note,
            }
            for e in events
        ]
        if rows:
            await self.session.execute(_INSERT_EVENT, rows)

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        rows = await self.session.execute(_EVENTS_OF_TICKET, {"ticket_id": ticket_id})
        return [
            TicketEvent(
                ticket_id=r.ticket_id,
                at=r.at,
                actor=r.actor,
                kind=r.kind,
                from_status=r.from_status,
                to_status=r.to_status,
                note=r.note,
            )
            for r in rows
        ]


def _sla_to_json(sla: SlaPolicy) -> dict[str, Any]:
    return {
        "understand": sla.understand.total_seconds(),
        "plan": sla.plan.total_seconds(),
        "reply": sla.reply.total_seconds(),
        "resolve": {tier.value: d.total_seconds() for tier, d in sla.resolve.items()},
        "day_end": sla.day_end.strftime("%H:%M"),
        "confirm": sla.confirm.total_seconds(),
    }


def _sla_from_json(data: dict[str, Any]) -> SlaPolicy:
    hours, minutes = (int(p) for p in data["day_end"].split(":"))
    return SlaPolicy(
        understand=timedelta(seconds=data["understand"]),
        plan=timedelta(seconds=data["plan"]),
        reply=timedelta(seconds=data["reply"]),
        resolve={Tier(k): timedelta(seconds=v) for k, v in data["resolve"].items()},
        day_end=time(hours, minutes),
        confirm=timedelta(seconds=data.get("confirm", 86400)),
    )


class SqlDirectoryRepository:
    """The organisation and the district settings."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_meta(self, key: str, *, lock: bool = False) -> Any:
        """A stored fact, or None. ``lock``: hold the row until the transaction ends, so two
        deciding on the same fact take turns; a no-op update does it on both databases
        (PostgreSQL locks the row, SQLite takes its one write lock before reading)."""
        if lock:
            await self.session.execute(
                update(MetaRow)
                .where(MetaRow.key == key)
                .values(key=MetaRow.key)
                .execution_options(synchronize_session=False)
            )
        row = await self.session.get(MetaRow, key, populate_existing=lock)
        return row.value if row else None

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a fact."""
        row = await self.session.get(MetaRow, key)
        if row is None:
            self.session.add(MetaRow(key=key, value=value))
        else:
            row.value = value

    async def replace(self, directory: Directory) -> None:
        """Make the stored organisation equal to ``directory``.

        Tickets keep plain ids of communities, grids and staff, so history survives a grid
        being renamed or removed from the file.
        """
        for model in (GroupRow, GridRow, CommunityRow, StaffRow):
            await self.session.execute(delete(model))
        self.session.add_all(
            StaffRow(
                id=m.id,
                name=m.name,
                telegram_id=m.telegram_id,
                role=m.role.value,
                position=pos,
                roster=[shift.text for shift in m.roster],
            )
            for pos, m in enumerate(directory.staff)
        )
        for cpos, community in enumerate(directory.communities):
            self.session.add(
                CommunityRow(
                    id=community.id,
                    name=community.name,
                    staff=list(community.staff),
                    position=cpos,
                    routing=_routing_to_json(community.routing),
                )
            )
        await self.session.flush()
        for community in directory.communities:
            self.session.add_all(
                GridRow(
                    id=g.id,
                    community_id=community.id,
                    name=g.name,
                    buildings=list(g.buildings),
                    grid_worker_id=g.grid_worker,
                    property_id=g.property,
                    backup=list(g.backup),
                    position=pos,
                )
                for pos, g in enumerate(community.grids)
            )
            self.session.add_all(
                GroupRow(
                    chat_id=gr.chat_id,
                    community_id=community.id,
                    grid_id=gr.grid_id,
                    name=gr.name,
                    position=pos,
                )
                for pos, gr in enumerate(community.groups)
            )
        await self.set_meta("timezone", directory.timezone)
        await self.set_meta("sla", _sla_to_json(directory.sla))
        await self.set_meta(
            "street",
            {"name": directory.street.name, "staff": list(directory.street.staff)}
            if directory.street
            else None,
        )
        await self.session.flush()

    async def load(self) -> Directory | None:
        """The stored directory, or None before the first seed."""
        sla = await self.get_meta("sla")
        if sla is None:
            return None
        street = await self.get_meta("street")
        staff = await self.session.scalars(select(StaffRow).order_by(StaffRow.position))
        communities = await self.session.scalars(
            select(CommunityRow).order_by(CommunityRow.position)
        )
        grids = list(await self.session.scalars(select(GridRow).order_by(GridRow.position)))
        groups = list(await self.session.scalars(select(GroupRow).order_by(GroupRow.position)))
        return Directory(
            timezone=await self.get_meta("timezone"),
            sla=_sla_from_json(sla),
            staff=tuple(
                StaffMember(
                    id=s.id,
                    name=s.name,
                    telegram_id=s.telegram_id,
                    role=Role(s.role),
                    roster=tuple(parse_shift(text) for text in s.roster or ()),
                )
                for s in staff
            ),
            street=Street(name=street["name"], staff=tuple(street["staff"])) if street else None,
            communities=tuple(
                Community(
                    id=c.id,
                    name=c.name,
                    staff=tuple(c.staff),
                    routing=_routing_from_json(c.routing),
                    grids=tuple(
                        Grid(
                            id=g.id,
                            name=g.name,
                            community_id=c.id,
                            buildings=tuple(g.buildings),
                            grid_worker=g.grid_worker_id,
                            property=g.property_id,
                            backup=tuple(g.backup),
                        )
                        for g in grids
                        if g.community_id == c.id
                    ),
                    groups=tuple(
                        Group(
                            chat_id=gr.chat_id,
                            name=gr.name,
                            community_id=c.id,
                            grid_id=gr.grid_id,
                        )
                        for gr in groups
                        if gr.community_id == c.id
                    ),
                )
                for c in communities
            ),
        )


class SqlReportRepository:
    """ "Me too" reports attached to tickets."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, report: Report) -> bool:
        """Attach a report; False if this message was attached before (a redelivery)."""
        result = await self.session.execute(
            insert_ignoring(self.session, TicketReportRow, "chat_id", "message_id"),
            {
                "ticket_id": report.ticket_id,
                "chat_id": report.chat_id,
                "message_id": report.message_id,
                "reporter_id": report.reporter_id,
                "text": report.text,
                "at": report.at,
            },
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def for_ticket(self, ticket_id: int) -> list[Report]:
        """Every report attached to a ticket, oldest first."""
        rows = await self.session.execute(_REPORTS_OF_TICKET, {"ticket_id": ticket_id})
        return [_report(r) for r in rows]


_REPORTS_OF_TICKET = (
    select(*REPORTS.c).where(REPORTS.c.ticket_id == bindparam("ticket_id")).order_by(REPORTS.c.id)
)


def _report(row: Row[Any]) -> Report:
    return Report(
        ticket_id=row.ticket_id,
        chat_id=row.chat_id,
        message_id=row.message_id,
        reporter_id=row.reporter_id,
        text=row.text,
        at=row.at,
    )


_PRESENCE = table(StaffPresenceRow)
_PRESENCES = select(*_PRESENCE.c).where(
    _PRESENCE.c.staff_id.in_(bindparam("staff_ids", expanding=True))
)


class SqlPresenceRepository:
    """Staff availability beyond the roster."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_many(self, staff_ids: Iterable[str]) -> dict[str, Presence]:
        """What is recorded for these people (absent: nothing recorded, i.e. the defaults)."""
        ids = list(set(staff_ids))
        if not ids:
            return {}
        rows = await self.session.execute(_PRESENCES, {"staff_ids": ids})
        return {
            r.staff_id: Presence(
                staff_id=r.staff_id,
                off_duty=r.off_duty,
                on_duty_until=r.on_duty_until,
                unreachable_since=r.unreachable_since,
            )
            for r in rows
        }

    async def save(self, presence: Presence, at: datetime) -> None:
        """Record a person's presence."""
        row = await self.session.get(StaffPresenceRow, presence.staff_id)
        if row is None:
            row = StaffPresenceRow(staff_id=presence.staff_id)
            self.session.add(row)
        row.off_duty = presence.off_duty
        row.on_duty_until = presence.on_duty_until
        row.unreachable_since = presence.unreachable_since
        row.changed_at = at
        await self.session.flush()


class SqlHomeRepository:
    """Where residents who write privately live."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> Home | None:
        """The resident's home, if they told us (or were asked)."""
        row = await self.session.get(ResidentHomeRow, user_id)
        if row is None:
            return None
        return Home(
            user_id=row.user_id,
            community_id=row.community_id,
            building=row.building,
            pending_message_id=row.pending_message_id,
            pending_text=row.pending_text,
        )

    async def save(self, home: Home, at: datetime) -> None:
        """Remember it."""
        row = await self.session.get(ResidentHomeRow, home.user_id)
        if row is None:
            row = ResidentHomeRow(user_id=home.user_id)
            self.session.add(row)
        row.community_id = home.community_id
        row.building = home.building
        row.pending_message_id = home.pending_message_id
        row.pending_text = home.pending_text
        row.updated_at = at
        await self.session.flush()


class SqlKeywordRepository:
    """Routing words with weights."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(self) -> int:
        """How many keyword rows exist."""
        return int(await self.session.scalar(select(func.count()).select_from(KeywordRow)) or 0)

    async def add_many(
        self, community_id: str, table: Mapping[str, Mapping[str, float]], at: datetime
    ) -> None:
        """Insert keywords given as {category: {word: weight}}."""
        self.session.add_all(
            KeywordRow(
                community_id=community_id,
                category=category,
                word=word,
                weight=weight,
                enabled=True,
                updated_at=at,
            )
            for category, words in table.items()
            for word, weight in words.items()
        )
        await self.session.flush()

    async def table_for(self, community_id: str) -> dict[str, dict[str, float]]:
        """Enabled keywords for a community: district defaults overridden by its own rows.

        A community row for the same word replaces the district one, including when the
        community disables it.
        """
        rows = await self.session.scalars(
            select(KeywordRow)
            .where(KeywordRow.community_id.in_([DISTRICT, community_id]))
            .order_by(KeywordRow.id)
        )
        entries = [
            KeywordEntry(r.community_id, r.category, r.word, r.weight, r.enabled) for r in rows
        ]
        return merge_keywords(
            [e for e in entries if e.scope == DISTRICT],
            [e for e in entries if e.scope != DISTRICT],
        )


def keyword_entry(row: KeywordRow) -> KeywordEntry:
    """A stored keyword as the core sees it."""
    return KeywordEntry(row.community_id, row.category, row.word, row.weight, row.enabled)


def _timer(row: TimerRow | Row[Any]) -> Timer:
    return Timer(row.id, row.ticket_id, row.kind, row.stage, row.due_at)


# The scheduler's statements, built once (each escalation runs several of them).
_EVENTS = table(TicketEventRow)
_EVENTS_OF_TICKET = (
    select(*_EVENTS.c).where(_EVENTS.c.ticket_id == bindparam("ticket_id")).order_by(_EVENTS.c.id)
)
TIMERS = table(TimerRow)
_PENDING = TIMERS.c.fired_at.is_(None)
_INSERT_TIMERS = insert(TIMERS)
_CANCEL_TIMERS = (
    update(TIMERS)
    .where(
        TIMERS.c.ticket_id == bindparam("of_ticket"),  # a column's own name is reserved
        _PENDING,
        or_(
            TIMERS.c.stage.in_(bindparam("stages", expanding=True)),
            TIMERS.c.kind.in_(bindparam("kinds", expanding=True)),
        ),
    )
    .values(fired_at=bindparam("at"), outcome="cancelled")
)
_NEXT_DUE = select(func.min(TIMERS.c.due_at)).where(_PENDING)
_DUE_TIMERS = (
    select(*TIMERS.c)
    .where(_PENDING, TIMERS.c.due_at <= bindparam("now"))
    .order_by(TIMERS.c.due_at, TIMERS.c.id)
    .limit(bindparam("limit"))
)
_SET_OUTCOME = (
    update(TIMERS).where(TIMERS.c.id == bindparam("timer_id")).values(outcome=bindparam("done"))
)
# Claim a pending action in one statement: on PostgreSQL a row another process holds locked
# (it is acting on it now) is skipped rather than waited for; SQLite has no row locks.
_FINISH_TIMER = (
    update(TIMERS)
    .where(
        TIMERS.c.id.in_(
            select(TIMERS.c.id)
            .where(TIMERS.c.id == bindparam("timer_id"), _PENDING)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        ),
        _PENDING,
    )
    .values(fired_at=bindparam("at"), outcome=bindparam("done"))
)


class SqlTimerRepository:
    """Durable deadline actions; pending ones have no ``fired_at``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, timers: Iterable[NewTimer]) -> None:
        """Schedule these actions, in one statement."""
        rows = [
            {
                "ticket_id": t.ticket_id,
                "kind": t.kind,
                "stage": t.stage,
                "due_at": t.due_at,
                "fired_at": None,
                "outcome": "",
            }
            for t in timers
        ]
        if not rows:
            return
        await self.session.execute(_INSERT_TIMERS, rows)
        await notify(self.session, "grid_timers")  # other processes' schedulers look again

    async def cancel(
        self, ticket_id: int, at: datetime, stages: Iterable[str] = (), kinds: Iterable[str] = ()
    ) -> None:
        """Drop the pending actions of a ticket for these stages or of these kinds."""
        await self.session.execute(
            _CANCEL_TIMERS,
            {"of_ticket": ticket_id, "at": at, "stages": list(stages), "kinds": list(kinds)},
        )

    async def next_due(self) -> datetime | None:
        """When the earliest pending action falls due."""
        return await self.session.scalar(_NEXT_DUE)

    async def due(self, now: datetime, limit: int) -> list[Timer]:
        """Pending actions due by ``now``, earliest first."""
        rows = await self.session.execute(_DUE_TIMERS, {"now": now, "limit": limit})
        return [_timer(r) for r in rows]

    async def pending(self, ticket_id: int) -> list[Timer]:
        """A ticket's pending actions, earliest first."""
        rows = await self.session.scalars(
            select(TimerRow)
            .where(TimerRow.ticket_id == ticket_id, TimerRow.fired_at.is_(None))
            .order_by(TimerRow.due_at, TimerRow.id)
        )
        return [_timer(r) for r in rows]

    async def set_outcome(self, timer_id: int, outcome: str) -> None:
        """Record what firing a claimed action did."""
        await self.session.execute(_SET_OUTCOME, {"timer_id": timer_id, "done": outcome})

    async def finish(self, timer_id: int, at: datetime, outcome: str) -> bool:
        """Mark an action done; False if it was already done or cancelled meanwhile, or if
        another process is acting on it right now (PostgreSQL: its row is locked, skipped)."""
        result = await self.session.execute(
            _FINISH_TIMER, {"timer_id": timer_id, "at": at, "done": outcome}
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _routing_to_json(policy: RoutingPolicy) -> dict[str, Any]:
    return {
        "first": {category.value: list(posts) for category, posts in policy.first.items()},
        "urgent_to_community": policy.urgent_to_community,
        "me_too": policy.me_too,
        "me_too_window": policy.me_too_window.total_seconds(),
        "burst_building": policy.burst_building,
        "burst_community": policy.burst_community,
        "burst_window": policy.burst_window.total_seconds(),
    }


def _routing_from_json(data: dict[str, Any] | None) -> RoutingPolicy:
    if not data:  # rows written before revision 0005: the default policy
        return RoutingPolicy()
    return RoutingPolicy(
        first={Category(k): tuple(v) for k, v in data["first"].items()},
        urgent_to_community=bool(data["urgent_to_community"]),
        me_too=bool(data["me_too"]),
        me_too_window=timedelta(seconds=data["me_too_window"]),
        # Rows written before revision 0007 lack these: the defaults.
        burst_building=int(data.get("burst_building", RoutingPolicy.burst_building)),
        burst_community=int(data.get("burst_community", RoutingPolicy.burst_community)),
        burst_window=timedelta(
            seconds=data.get("burst_window", RoutingPolicy.burst_window.total_seconds())
        ),
    )
