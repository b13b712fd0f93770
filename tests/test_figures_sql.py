"""The database's sums (storage/figure_repository.py) mean what Figures.add means for one
ticket: on random tickets of every status, tier, rating and deadline, both agree."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from bot.domain import Category, Rating, TicketStatus, Tier
from bot.services.figures import Figures
from storage.models import TicketRow
from storage.uow import SqlUnitOfWorkFactory

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START, END = NOW - timedelta(days=10), NOW


def _maybe(rng: random.Random, at: datetime, minutes: int) -> datetime | None:
    return None if rng.random() < 0.3 else at + timedelta(minutes=rng.randint(-5, minutes))


def _row(rng: random.Random, n: int) -> TicketRow:
    created = START + timedelta(minutes=rng.randint(-600, 14_400 + 600))  # some outside
    status = rng.choice(list(TicketStatus))
    done = status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
    return TicketRow(
        community_id=rng.choice(["xingfu", "heping"]),
        grid_id=rng.choice(["G01", "G02", "G03"]),
        chat_id=-100,
        message_id=n,
        reporter_id=1,
        reporter_name="居民",
        text="x",
        category=rng.choice([c.value for c in Category if c != Category.NONE]),
        confidence=0.9,
        urgent=rng.random() < 0.1,
        tier=rng.choice(list(Tier)).value,
        status=status.value,
        assignee_id=rng.choice(["li", "wang", None]),
        location={},
        created_at=created,
        updated_at=created,
        accept_due_at=_maybe(rng, created, 10),
        plan_due_at=_maybe(rng, created, 20),
        reply_due_at=_maybe(rng, created, 30),
        resolve_due_at=_maybe(rng, created, 3000),
        accepted_at=_maybe(rng, created, 12),
        planned_at=_maybe(rng, created, 25),
        replied_at=_maybe(rng, created, 35),
        resolved_at=_maybe(rng, created, 3200) if done else None,
        rating=rng.choice([*(r.value for r in Rating), None]) if done else None,
        answered=rng.random() < 0.1,
    )


async def test_sums_agree_with_counting_one_ticket_at_a_time(uows: SqlUnitOfWorkFactory) -> None:
    rng = random.Random(5321)
    async with uows() as uow:
        uow.tickets.session.add_all([_row(rng, n) for n in range(600)])
        await uow.commit()
    for communities in (None, ["xingfu"]):
        async with uows() as uow:
            tickets = await uow.tickets.reported_between(START, END, communities)
            sums = await uow.figures.counts(START, END, communities, NOW)
            hours = await uow.figures.received_by_hour(START, END, communities)
        assert tickets
        by_grid_python: dict[str, Figures] = {}
        by_day_python: Counter[tuple[str, str]] = Counter()
        for ticket in tickets:
            by_grid_python.setdefault(ticket.grid_id, Figures()).add(ticket, NOW)
            if ticket.status not in (TicketStatus.MERGED, TicketStatus.CANCELLED):
                hour = ticket.created_at.replace(minute=0, second=0, microsecond=0)
                by_day_python[hour.isoformat(), ticket.category.value] += 1
        by_level_python: dict[tuple[str, str | None], Figures] = {}
        for ticket in tickets:
            for level, key in (
                ("all", None),
                ("community", ticket.community_id),
                ("grid", ticket.grid_id),
                ("staff", ticket.assignee_id),
            ):
                by_level_python.setdefault((level, key), Figures()).add(ticket, NOW)
        by_level_sql: dict[tuple[str, str | None], Figures] = {}
        for row in sums:
            assert (row.level, row.key) not in by_level_sql
            by_level_sql[row.level, row.key] = Figures()
            by_level_sql[row.level, row.key].absorb(row.counts)
        assert by_level_sql == by_level_python
        assert by_grid_python == {
            key: figures for (level, key), figures in by_level_sql.items() if level == "grid"
        }
        by_day_sql = Counter({(at.isoformat(), category): n for at, category, n in hours})
        assert by_day_sql == by_day_python
