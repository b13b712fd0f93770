"""The figures (办结率, on-time, satisfaction) counted by the database, not in Python.

A district's year is a million tickets; a month of them is ~80,000 rows. Loading those to
count them would take seconds, and even summing them in the database takes half a second,
so each past local day is counted once into ``figure_days`` (per community, grid and
assignee: ~1,300 rows a day for a district) and counted again only when one of its tickets
changes (``figure_changes``, written in the ticket's own transaction) or one of its pending
deadlines runs out (``figure_day_states.valid_until``). A range's figures are then one
query over the counted days plus the tickets of the days still being worked on, summed
into one row per community, grid and assignee. The meaning of every sum is the one
:meth:`bot.services.figures.Figures.add` gives a single ticket; tests check the two agree
on random tickets, as tickets change and deadlines pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import REQUEST_CATEGORIES, Rating, TicketCounts, TicketStatus, Tier
from storage.models import (
    FIGURE_SUMS,
    FigureChangeRow,
    FigureDayRow,
    FigureDayStateRow,
    TicketRow,
    figure_column,
)

_DONE = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value)
_NOT_RECEIVED = (TicketStatus.MERGED.value, TicketStatus.CANCELLED.value)
_STAGES = (
    ("understand", TicketRow.accepted_at, TicketRow.accept_due_at),
    ("plan", TicketRow.planned_at, TicketRow.plan_due_at),
    ("reply", TicketRow.replied_at, TicketRow.reply_due_at),
)


_DEADLINES = (
    (TicketRow.accepted_at, TicketRow.accept_due_at),
    (TicketRow.planned_at, TicketRow.plan_due_at),
    (TicketRow.replied_at, TicketRow.reply_due_at),
    (TicketRow.resolved_at, TicketRow.resolve_due_at),
)
# Counting days is one process at a time (PostgreSQL's advisory lock; SQLite has one writer).
_ROLL_UP_LOCK = 0x67726966
_DAYS = FigureDayRow.__table__


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _sums(now: datetime) -> dict[str, ColumnElement[int]]:
    status = TicketRow.status
    received = status.not_in(_NOT_RECEIVED)
    done = status.in_(_DONE)
    sums: dict[str, ColumnElement[int]] = {
        "received": _count(received),
        "merged": _count(status == TicketStatus.MERGED.value),
        "cancelled": _count(status == TicketStatus.CANCELLED.value),
        "resolved": _count(and_(received, done)),
        "urgent": _count(and_(received, TicketRow.urgent.is_(True))),
        "answered": _count(and_(received, TicketRow.answered.is_(True))),
    }
    for category in REQUEST_CATEGORIES:
        sums[f"category:{category.value}"] = _count(
            and_(received, TicketRow.category == category.value)
        )
    for rating in Rating:
        sums[f"rating:{rating.value}"] = _count(and_(done, TicketRow.rating == rating.value))
    sums["rating:unrated"] = _count(and_(done, TicketRow.rating.is_(None)))
    stages: list[tuple[str, Any, Any, Tier | None]] = [
        (key, met, due, None) for key, met, due in _STAGES
    ]
    stages += [
        (f"resolve:{tier.value}", TicketRow.resolved_at, TicketRow.resolve_due_at, tier)
        for tier in Tier
    ]
    for key, met_at, due_at, tier in stages:
        base = and_(received, due_at.is_not(None))
        if tier is not None:
            base = and_(base, TicketRow.tier == tier.value)
        # Counted once it is met or overdue; met in time if met by the deadline.
        sums[f"due:{key}"] = _count(and_(base, (met_at.is_not(None)) | (due_at <= now)))
        sums[f"met:{key}"] = _count(and_(base, met_at.is_not(None), met_at <= due_at))
    return sums


def _per_level(
    start: datetime,
    end: datetime,
    now: datetime,
    community_ids: list[str] | None = None,
    day: date | None = None,
) -> list[Select[Any]]:
    """The tickets reported in [start, end) summed per community, per grid and per assignee
    (``key`` '' for nobody): rows of (community_id, level, key, *sums), preceded by ``day``
    when given (the roll-up's rows). The tickets are read once, into sums per (community,
    grid, assignee) that the three levels add up."""
    fine_query = (
        select(
            TicketRow.community_id,
            TicketRow.grid_id,
            func.coalesce(TicketRow.assignee_id, "").label("staff"),
            *(column.label(figure_column(name)) for name, column in _sums(now).items()),
        )
        .where(TicketRow.created_at >= start, TicketRow.created_at < end)
        .group_by(TicketRow.community_id, TicketRow.grid_id, TicketRow.assignee_id)
    )
    if community_ids is not None:
        fine_query = fine_query.where(TicketRow.community_id.in_(community_ids))
    fine = fine_query.cte()
    # Whole numbers throughout (a sum of sums would turn into PostgreSQL's slow numeric).
    columns = [figure_column(n) for n in FIGURE_SUMS]
    sums = [cast(func.sum(fine.c[c]), Integer).label(c) for c in columns]
    dated: list[Any] = [literal(day, Date)] if day is not None else []
    queries: list[Select[Any]] = []
    for level, key in (
        ("community", fine.c.community_id),
        ("grid", fine.c.grid_id),
        ("staff", fine.c.staff),
    ):
        query: Select[Any] = select(
            *dated, fine.c.community_id, literal(level, String).label("level"), key.label("key")
        )
        queries.append(query.add_columns(*sums).group_by(fine.c.community_id, key))
    return queries


class SqlFigureRepository:
    """Sums over ``tickets`` for the dashboard, /report and the weekly note."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(
        self,
        days: tuple[date, date] | None,
        live: list[tuple[datetime, datetime]],
        community_ids: list[str] | None,
        now: datetime,
    ) -> list[TicketCounts]:
        """The counted days ``days`` (first, last) plus the tickets reported in each ``live``
        range, summed in all and per community, grid and assignee: one query, so a district
        comes back as ~1,300 rows whatever the range."""
        parts: list[Select[Any]] = []
        if days is not None:
            parts.append(
                select(
                    FigureDayRow.community_id,
                    FigureDayRow.level,
                    FigureDayRow.key,
                    *(_DAYS.c[figure_column(name)] for name in FIGURE_SUMS),
                ).where(FigureDayRow.day >= days[0], FigureDayRow.day <= days[1])
            )
            if community_ids is not None:
                parts[0] = parts[0].where(FigureDayRow.community_id.in_(community_ids))
        for start, end in live:
            parts += _per_level(start, end, now, community_ids)
        total = dict.fromkeys(FIGURE_SUMS, 0)
        out = [TicketCounts("all", None, total)]
        if not parts:
            return out
        if self.session.get_bind().dialect.name == "postgresql":
            # ~40,000 rows into ~1,300 sums: hashed in memory (the default work_mem is 4 MB;
            # this lasts for the transaction only).
            await self.session.execute(text("SET LOCAL work_mem = '64MB'"))
        both = union_all(*parts).subquery()
        query = select(
            both.c.level,
            both.c.key,
            *(func.sum(both.c[figure_column(name)]) for name in FIGURE_SUMS),
        ).group_by(both.c.level, both.c.key)
        for level, key, *values in await self.session.execute(query):
            counts = dict(zip(FIGURE_SUMS, map(int, values), strict=True))
            if level == "community":
                for name, value in counts.items():
                    total[name] += value
            out.append(TicketCounts(level, key or None, counts))
        return out

    async def received_by_hour(
        self, start: datetime, end: datetime, community_ids: list[str] | None
    ) -> list[tuple[datetime, str, int]]:
        """Tickets received (neither merged nor cancelled) in [start, end) per UTC hour and
        category: the caller turns hours into local days, which works in every zone."""
        if self.session.get_bind().dialect.name == "postgresql":
            hour = func.date_trunc("hour", func.timezone("UTC", TicketRow.created_at))
        else:  # SQLite keeps UTC text, "YYYY-MM-DD HH:MM:SS.ffffff"
            hour = func.strftime("%Y-%m-%d %H:00:00", TicketRow.created_at)
        query = (
            select(hour.label("hour"), TicketRow.category, func.count())
            .where(
                TicketRow.created_at >= start,
                TicketRow.created_at < end,
                TicketRow.status.not_in(_NOT_RECEIVED),
            )
            .group_by(hour, TicketRow.category)
        )
        if community_ids is not None:
            query = query.where(TicketRow.community_id.in_(community_ids))
        out = []
        for value, category, count in await self.session.execute(query):
            at = datetime.fromisoformat(value) if isinstance(value, str) else value
            out.append((at.replace(tzinfo=UTC), str(category), int(count)))
        return out

    # --- the roll-up: a local day's tickets counted once ----------------------------------

    async def take_changes(self) -> list[datetime]:
        """Waits until no other process counts days, then takes (deletes) the marks of
        tickets opened or changed since the last count: their report times. A ticket whose
        transaction commits later leaves its mark for the next count."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROLL_UP_LOCK}
            )
        rows = await self.session.scalars(
            delete(FigureChangeRow).returning(FigureChangeRow.reported_at)
        )
        return list(rows)

    async def counted_days(
        self, first: date, last: date
    ) -> dict[date, tuple[str, datetime | None]]:
        """The days in [first, last] already counted: their zone and ``valid_until``."""
        rows = await self.session.execute(
            select(
                FigureDayStateRow.day, FigureDayStateRow.zone, FigureDayStateRow.valid_until
            ).where(FigureDayStateRow.day >= first, FigureDayStateRow.day <= last)
        )
        return {day: (zone, valid_until) for day, zone, valid_until in rows}

    async def forget_days(self, days: Iterable[date]) -> None:
        """Drop these days' counts (they are counted again when next asked for)."""
        days = list(days)
        for chunk in range(0, len(days), 500):
            part = days[chunk : chunk + 500]
            await self.session.execute(delete(FigureDayRow).where(FigureDayRow.day.in_(part)))
            await self.session.execute(
                delete(FigureDayStateRow).where(FigureDayStateRow.day.in_(part))
            )

    async def count_day(
        self, day: date, start: datetime, end: datetime, zone: str, now: datetime
    ) -> None:
        """Count the tickets reported in [start, end), local ``day`` in ``zone``, per
        community, grid and assignee, as of ``now``; the counts hold until the first of those
        tickets' deadlines still to run out."""
        reported = and_(TicketRow.created_at >= start, TicketRow.created_at < end)
        targets = ["day", "community_id", "level", "key", *map(figure_column, FIGURE_SUMS)]
        rows = union_all(*_per_level(start, end, now, day=day))
        await self.session.execute(insert(FigureDayRow).from_select(targets, rows))
        pending = select(
            *(func.min(case((and_(met.is_(None), due > now), due))) for met, due in _DEADLINES)
        ).where(reported)
        firsts = [at for at in (await self.session.execute(pending)).one() if at is not None]
        valid_until = min(_aware(at) for at in firsts) if firsts else None
        self.session.add(
            FigureDayStateRow(day=day, zone=zone, counted_at=now, valid_until=valid_until)
        )
        await self.session.flush()

    async def analyze(self) -> None:
        """Refresh the planner's statistics of the roll-up after many days were counted at
        once (PostgreSQL would otherwise plan for the empty table it saw last)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(text("ANALYZE figure_days"))

    async def day_received(
        self, first: date, last: date, community_ids: list[str] | None
    ) -> list[tuple[date, str, int]]:
        """Tickets received on each counted day in [first, last], per category."""
        categories = [c.value for c in REQUEST_CATEGORIES]
        query = (
            select(
                FigureDayRow.day,
                *(func.sum(_DAYS.c[figure_column(f"category:{c}")]) for c in categories),
            )
            .where(
                FigureDayRow.day >= first,
                FigureDayRow.day <= last,
                FigureDayRow.level == "community",
            )
            .group_by(FigureDayRow.day)
        )
        if community_ids is not None:
            query = query.where(FigureDayRow.community_id.in_(community_ids))
        out = []
        for day, *values in await self.session.execute(query):
            out += [(day, c, int(v)) for c, v in zip(categories, values, strict=True) if v]
        return out


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
