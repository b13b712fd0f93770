"""The figures (办结率, on-time, satisfaction) counted by the database, not in Python.

A district's year is a million tickets; a month of them is ~80,000 rows. Loading those to
count them would take seconds, and even summing them in the database takes half a second,
so each past local day is counted once into ``figure_days`` (per community, grid and
assignee: ~1,300 rows a day for a district) and counted again only when one of its tickets
changes (``figure_changes``, written in the ticket's own transaction) or one of its pending
deadlines runs out (``figure_community_days.valid_until``); only that community's part of
the day is counted again. A range's figures are then one query over the counted days plus
today's tickets, summed into one row per community, grid and assignee. The meaning of every
sum is the one :meth:`bot.services.figures.Figures.add` gives a single ticket; tests check
the two agree on random tickets, as tickets change and deadlines pass.
"""

from __future__ import annotations

import typing
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Insert,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
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
    FigureCommunityDayRow,
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


# Every deadline with the time it was met: the 5321 stages and the resolve deadline.
_DEADLINES = (
    *((met, due) for _, met, due in _STAGES),
    (TicketRow.resolved_at, TicketRow.resolve_due_at),
)
# Counting days is one process at a time (PostgreSQL's advisory lock; SQLite has one writer).
_ROLL_UP_LOCK = 0x67726966
_DAYS = typing.cast(Table, FigureDayRow.__table__)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _sums(now: datetime | ColumnElement[Any]) -> dict[str, ColumnElement[int]]:
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


@cache
def _per_level(part: str = "", *, filtered: bool = False, dated: bool = False) -> list[Select[Any]]:
    """The tickets reported in [``start<part>``, ``end<part>``) summed per community, per grid
    and per assignee (``key`` '' for nobody) as of ``now``: rows of (community_id, level,
    key, *sums), preceded by ``day`` when ``dated`` (the roll-up's rows); only the
    communities ``ids`` when ``filtered``. The tickets are read once, into sums per
    (community, grid, assignee) that the three levels add up. Built once per shape, with
    the values as parameters: building a statement this size costs more than running it."""
    fine_query = (
        select(
            TicketRow.community_id,
            TicketRow.grid_id,
            func.coalesce(TicketRow.assignee_id, "").label("staff"),
            *(
                column.label(figure_column(name))
                for name, column in _sums(bindparam("now")).items()
            ),
        )
        .where(
            TicketRow.created_at >= bindparam(f"start{part}"),
            TicketRow.created_at < bindparam(f"end{part}"),
        )
        .group_by(TicketRow.community_id, TicketRow.grid_id, TicketRow.assignee_id)
    )
    if filtered:
        fine_query = fine_query.where(TicketRow.community_id.in_(bindparam("ids", expanding=True)))
    fine = fine_query.cte(f"fine{part}")
    # Whole numbers throughout (a sum of sums would turn into PostgreSQL's slow numeric).
    columns = [figure_column(n) for n in FIGURE_SUMS]
    sums = [cast(func.sum(fine.c[c]), Integer).label(c) for c in columns]
    day: list[Any] = [bindparam("day", type_=Date())] if dated else []
    queries: list[Select[Any]] = []
    for level, key in (
        ("community", fine.c.community_id),
        ("grid", fine.c.grid_id),
        ("staff", fine.c.staff),
    ):
        query: Select[Any] = select(
            *day, fine.c.community_id, literal(level, String).label("level"), key.label("key")
        )
        queries.append(query.add_columns(*sums).group_by(fine.c.community_id, key))
    return queries


@cache
def _count_day(filtered: bool) -> Insert:
    """Write a day's rows (``day``, tickets in [``start``, ``end``)) into the roll-up."""
    targets = ["day", "community_id", "level", "key", *map(figure_column, FIGURE_SUMS)]
    rows = union_all(*_per_level(filtered=filtered, dated=True))
    return insert(_DAYS).from_select(targets, rows)  # Core: values are parameters


@cache
def _summed(rolled: bool, live: int, filtered: bool) -> Select[Any]:
    """Counted days [``first``, ``last``] (when ``rolled``) and ``live`` ranges of tickets
    (``start_<n>``, ``end_<n>``), summed per level and key (see :func:`_per_level`)."""
    parts: list[Select[Any]] = []
    if rolled:
        days = select(
            FigureDayRow.community_id,
            FigureDayRow.level,
            FigureDayRow.key,
            *(_DAYS.c[figure_column(name)] for name in FIGURE_SUMS),
        ).where(FigureDayRow.day >= bindparam("first"), FigureDayRow.day <= bindparam("last"))
        if filtered:
            days = days.where(FigureDayRow.community_id.in_(bindparam("ids", expanding=True)))
        parts.append(days)
    for n in range(live):
        parts += _per_level(f"_{n}", filtered=filtered)
    both = union_all(*parts).subquery()
    return select(
        both.c.level,
        both.c.key,
        *(func.sum(both.c[figure_column(name)]) for name in FIGURE_SUMS),
    ).group_by(both.c.level, both.c.key)


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
        total = dict.fromkeys(FIGURE_SUMS, 0)
        out = [TicketCounts("all", None, total)]
        if days is None and not live:
            return out
        values: dict[str, Any] = {"now": now}
        if days is not None:
            values.update(first=days[0], last=days[1])
        for n, (start, end) in enumerate(live):
            values.update({f"start_{n}": start, f"end_{n}": end})
        if community_ids is not None:
            values["ids"] = list(community_ids)
        query = _summed(days is not None, len(live), community_ids is not None)
        if self.session.get_bind().dialect.name == "postgresql":
            # ~40,000 rows into ~1,300 sums: hashed in memory (the default work_mem is 4 MB;
            # this lasts for the transaction only).
            await self.session.execute(text("SET LOCAL work_mem = '64MB'"))
        for level, key, *sums in await self.session.execute(query, values):
            counts = dict(zip(FIGURE_SUMS, map(int, sums), strict=True))
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

    async def take_changes(self) -> list[tuple[datetime, str | None]]:
        """Waits until no other process counts days, then takes (deletes) the marks of
        tickets opened or changed since the last count: their report times and communities
        (None: count the whole day again). A ticket whose transaction commits later leaves
        its mark for the next count."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROLL_UP_LOCK}
            )
        rows = await self.session.execute(
            delete(FigureChangeRow).returning(
                FigureChangeRow.reported_at, FigureChangeRow.community_id
            )
        )
        return [(at, community_id) for at, community_id in rows]

    async def counted_days(self, days: Iterable[date]) -> dict[date, str]:
        """Which of these days are counted, and in which zone."""
        days = list(days)
        out: dict[date, str] = {}
        for chunk in range(0, len(days), 500):
            rows = await self.session.execute(
                select(FigureDayStateRow.day, FigureDayStateRow.zone).where(
                    FigureDayStateRow.day.in_(days[chunk : chunk + 500])
                )
            )
            out.update({day: zone for day, zone in rows})  # noqa: C416 - rows are Row objects
        return out

    async def expired_parts(self, first: date, last: date, now: datetime) -> set[tuple[date, str]]:
        """The (day, community) parts of the counted days in [first, last] whose counts no
        longer hold at ``now`` (one of their pending deadlines ran out)."""
        rows = await self.session.execute(
            select(FigureCommunityDayRow.day, FigureCommunityDayRow.community_id).where(
                FigureCommunityDayRow.day >= first,
                FigureCommunityDayRow.day <= last,
                FigureCommunityDayRow.valid_until <= now,
            )
        )
        return {(day, community_id) for day, community_id in rows}

    async def forget_days(self, days: Iterable[date]) -> None:
        """Drop these days' counts (they are counted again when next asked for)."""
        days = list(days)
        for chunk in range(0, len(days), 500):
            part = days[chunk : chunk + 500]
            for table in (FigureDayRow, FigureCommunityDayRow, FigureDayStateRow):
                await self.session.execute(delete(table).where(table.day.in_(part)))

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
        """Count the tickets reported in [start, end), local ``day`` in ``zone``, per
        community, grid and assignee, as of ``now`` (only these communities' parts, counted
        again, when given); each community's counts hold until the first of its tickets'
        deadlines still to run out."""
        ids = None if community_ids is None else sorted(community_ids)
        # Whatever was counted of this day (or of these communities' parts) goes first.
        for table in (FigureDayRow, FigureCommunityDayRow):
            scope = delete(table).where(table.day == day)
            if ids is not None:
                scope = scope.where(table.community_id.in_(ids))
            await self.session.execute(scope)
        values: dict[str, Any] = {"day": day, "start": start, "end": end, "now": now}
        if ids is not None:
            values["ids"] = ids
        await self.session.execute(_count_day(ids is not None), values)
        pending = (
            select(
                TicketRow.community_id,
                *(func.min(case((and_(met.is_(None), due > now), due))) for met, due in _DEADLINES),
            )
            .where(TicketRow.created_at >= start, TicketRow.created_at < end)
            .group_by(TicketRow.community_id)
        )
        if ids is not None:
            pending = pending.where(TicketRow.community_id.in_(ids))
        for community, *firsts in await self.session.execute(pending):
            due = [at for at in firsts if at is not None]
            self.session.add(
                FigureCommunityDayRow(
                    day=day, community_id=community, valid_until=min(due) if due else None
                )
            )
        if ids is None:
            self.session.add(FigureDayStateRow(day=day, zone=zone, counted_at=now))
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
