"""The figures (办结率, on-time, satisfaction) counted by the database, not in Python.

A district's year is a million tickets; a month of them is ~80,000 rows. Loading those to
count them would take seconds, so one ``GROUP BY`` per question returns a few thousand
rows of sums (one per community, grid and assignee) and a few hundred per hour. The
meaning of every sum is the one :meth:`bot.services.figures.Figures.add` gives a single
ticket; a test checks the two agree on random tickets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import REQUEST_CATEGORIES, Rating, TicketCounts, TicketStatus, Tier
from storage.models import TicketRow

_DONE = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value)
_NOT_RECEIVED = (TicketStatus.MERGED.value, TicketStatus.CANCELLED.value)
_STAGES = (
    ("understand", TicketRow.accepted_at, TicketRow.accept_due_at),
    ("plan", TicketRow.planned_at, TicketRow.plan_due_at),
    ("reply", TicketRow.replied_at, TicketRow.reply_due_at),
)


_LEVELS = {3: "community", 5: "grid", 6: "staff", 7: "all"}
_KEY_INDEX = {"community": 0, "grid": 1, "staff": 2}


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


class SqlFigureRepository:
    """Sums over ``tickets`` for the dashboard, /report and the weekly note."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(
        self, start: datetime, end: datetime, community_ids: list[str] | None, now: datetime
    ) -> list[TicketCounts]:
        """Tickets reported in [start, end), summed in all and per community, grid and
        assignee. PostgreSQL does it in one pass (``GROUPING SETS``); SQLite sums per
        (community, grid, assignee) and the few rows are added up here."""
        sums = _sums(now)
        names = list(sums)
        columns = [column.label(f"s{i}") for i, column in enumerate(sums.values())]
        keys = (TicketRow.community_id, TicketRow.grid_id, TicketRow.assignee_id)
        postgres = self.session.get_bind().dialect.name == "postgresql"
        if postgres:
            # A month of a district is ~80,000 rows to sort into groups: in memory, not on disk
            # (PostgreSQL's default work_mem is 4 MB; this lasts for the transaction only).
            await self.session.execute(text("SET LOCAL work_mem = '64MB'"))
            query = select(*keys, func.grouping(*keys), *columns).group_by(
                func.grouping_sets(*(tuple_(key) for key in keys), tuple_())
            )
        else:
            query = select(*keys, literal(-1), *columns).group_by(*keys)
        query = query.where(TicketRow.created_at >= start, TicketRow.created_at < end)
        if community_ids is not None:
            query = query.where(TicketRow.community_id.in_(community_ids))
        out: dict[tuple[str, str | None], dict[str, int]] = {}
        for row in await self.session.execute(query):
            counts = {name: int(row[4 + i] or 0) for i, name in enumerate(names)}
            if postgres:  # GROUPING() has a bit set for each key not grouped by
                level = _LEVELS[int(row[3])]
                key = None if level == "all" else row[_KEY_INDEX[level]]
                out[level, key] = counts
                continue
            for level, key in (
                ("all", None),
                ("community", row[0]),
                ("grid", row[1]),
                ("staff", row[2]),
            ):
                total = out.setdefault((level, key), dict.fromkeys(names, 0))
                for name, value in counts.items():
                    total[name] += value
        return [TicketCounts(level, key, counts) for (level, key), counts in out.items()]

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
