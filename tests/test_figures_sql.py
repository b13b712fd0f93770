"""The database's sums (storage/figure_repository.py) mean what Figures.add means for one
ticket: on random tickets of every status, tier, rating and deadline, both agree; and the
roll-up of past days (figure_days) keeps agreeing as tickets change and time passes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from bot.clock import FakeClock
from bot.config import CommunityFile
from bot.directory import DirectoryHolder
from bot.domain import REQUEST_CATEGORIES, Category, NewTicket, Rating, TicketStatus, Tier
from bot.services.figures import Dashboard, Figures, FigureService
from storage.figure_repository import _sums
from storage.models import FIGURE_SUMS, FigureDayRow, TicketRow
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
            sums = await uow.figures.counts(None, [(START, END)], communities, NOW)
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


def _new_ticket(n: int, created: datetime, community_id: str, **fields: Any) -> NewTicket:
    """A repair reported at ``created`` in grid G01, held by li, unless ``fields`` say
    otherwise."""
    ticket = NewTicket(
        community_id=community_id,
        grid_id="G01",
        chat_id=-100,
        message_id=n,
        reporter_id=1,
        reporter_name="居民",
        text="x",
        category=Category.REPAIR,
        confidence=0.9,
        urgent=False,
        tier=Tier.GENERAL,
        created_at=created,
        assignee_id="li",
        location={},
    )
    return replace(ticket, **fields)


async def _expected(
    uows: SqlUnitOfWorkFactory,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    zone: ZoneInfo,
    community_ids: list[str] | None,
) -> tuple[dict[tuple[str, str], Figures], dict[date, Counter[str]]]:
    """The figures of [start, end) counted one ticket at a time."""
    async with uows() as uow:
        tickets = await uow.tickets.reported_between(start, end, community_ids)
    levels: dict[tuple[str, str], Figures] = {}
    by_day: dict[date, Counter[str]] = {}
    for ticket in tickets:
        for level, key in (
            ("all", ""),
            ("community", ticket.community_id),
            ("grid", ticket.grid_id),
            ("staff", ticket.assignee_id or ""),
        ):
            levels.setdefault((level, key), Figures()).add(ticket, now)
        if ticket.status not in (TicketStatus.MERGED, TicketStatus.CANCELLED):
            day = ticket.created_at.astimezone(zone).date()
            by_day.setdefault(day, Counter())[ticket.category.value] += 1
    return levels, by_day


def _seen(board: Dashboard) -> tuple[dict[tuple[str, str], Figures], dict[date, Counter[str]]]:
    levels = {("all", ""): board.total} if board.total != Figures() else {}
    for level, part in (
        ("community", board.by_community),
        ("grid", board.by_grid),
        ("staff", board.by_staff),
    ):
        levels.update({(level, key): figures for key, figures in part.items()})
    return levels, {day: counts for day, counts in board.by_day.items() if counts}


async def test_rolled_up_days_stay_true_as_tickets_change_and_deadlines_pass(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile
) -> None:
    """Whole past days come from the roll-up (figure_days); the dashboard still equals
    counting every ticket, after tickets of counted days change, after their deadlines run
    out with nobody writing, for one community, for ranges not on midnights, and when the
    zone changes."""
    rng = random.Random(2026)
    clock = FakeClock(NOW)
    holder = DirectoryHolder(demo_file.directory)
    service = FigureService(uows, holder, clock)
    communities = [c.id for c in demo_file.directory.communities]
    async with uows() as uow:
        for n in range(400):
            created = NOW - timedelta(minutes=rng.randint(1, 9 * 24 * 60))
            await uow.tickets.add(
                _new_ticket(
                    n,
                    created,
                    rng.choice(communities),
                    grid_id=rng.choice(["G01", "G02", "G03"]),
                    category=rng.choice(REQUEST_CATEGORIES),
                    urgent=rng.random() < 0.1,
                    tier=rng.choice(list(Tier)),
                    assignee_id=rng.choice(["li", "wang", None]),
                    accept_due_at=created + timedelta(minutes=5),
                    # some deadlines run out after NOW: the counts must change by themselves
                    resolve_due_at=created + timedelta(hours=rng.choice([0.5, 2, 24, 60])),
                )
            )
        await uow.commit()

    async def check(start: datetime, end: datetime, ids: list[str] | None = None) -> None:
        zone = ZoneInfo(holder.current.timezone)
        board = await service.dashboard(start, end, ids)
        expected = await _expected(
            uows, start=start, end=end, now=clock.now(), zone=zone, community_ids=ids
        )
        assert _seen(board) == expected

    week = service.local_range(7)
    await check(*week)
    async with uows() as uow:
        counted = await uow.figures.counted_days(
            date(2026, 11, 1) + timedelta(days=d) for d in range(30)
        )
    today = NOW.astimezone(ZoneInfo(demo_file.directory.timezone)).date()
    assert sorted(counted) == [today - timedelta(days=d) for d in range(6, 0, -1)]
    await check(*week, [communities[0]])

    # Tickets of counted days change: accepted, resolved and rated, merged, withdrawn.
    async with uows() as uow:
        tickets = await uow.tickets.reported_between(*week, None)
        for ticket in rng.sample(tickets, 120):
            at = ticket.created_at + timedelta(minutes=rng.randint(1, 400))
            status = rng.choice(
                [
                    *(TicketStatus.ACCEPTED, TicketStatus.RESOLVED, TicketStatus.CLOSED),
                    *(TicketStatus.MERGED, TicketStatus.CANCELLED),
                ]
            )
            done = status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
            changed = replace(
                ticket,
                status=status,
                accepted_at=at,
                resolved_at=at if done else None,
                rating=rng.choice([*Rating, None]) if done else None,
                answered=rng.random() < 0.2,
            )
            await uow.tickets.save(changed, clock.now())
        await uow.commit()
    await check(*week)
    await check(*week, [communities[0]])

    # Two days later with nobody writing: pending deadlines of counted days ran out, and
    # the range moved on (yesterday is now a past day to count).
    clock.advance(timedelta(days=2, hours=3))
    await check(*service.local_range(7))
    await check(*service.local_range(30))
    # Not on midnights: the edges are counted from the tickets.
    await check(clock.now() - timedelta(days=6, hours=5), clock.now() - timedelta(hours=30))

    # Another zone: every day counted in the old one is counted again.
    holder.current = replace(holder.current, timezone="America/New_York")
    await check(*service.local_range(7))
    new_york = clock.now().astimezone(ZoneInfo("America/New_York")).date()
    async with uows() as uow:
        counted = await uow.figures.counted_days(new_york - timedelta(days=d) for d in range(40))
    week_days = [new_york - timedelta(days=d) for d in range(1, 7)]
    assert [counted.get(day) for day in week_days] == ["America/New_York"] * 6
    assert "Asia/Shanghai" in counted.values()  # older days: counted again when asked for


def test_the_roll_up_columns_are_the_sums_the_query_counts() -> None:
    assert tuple(_sums(NOW)) == FIGURE_SUMS


async def test_two_dashboards_at_once_count_each_day_once(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile
) -> None:
    """Two admins (or two processes) opening the dashboard together: the days are counted
    under a lock, once, and both see the same figures."""
    clock = FakeClock(NOW)
    service = FigureService(uows, DirectoryHolder(demo_file.directory), clock)
    rng = random.Random(7)
    async with uows() as uow:
        uow.tickets.session.add_all([_row(rng, n) for n in range(200)])
        await uow.commit()
    month = service.local_range(30)
    first, second = await asyncio.gather(service.dashboard(*month), service.dashboard(*month))
    assert first.total.received > 0
    assert _seen(first) == _seen(second)
    again = await service.dashboard(*month)
    assert _seen(again) == _seen(first)


async def test_a_change_counts_again_only_its_communitys_part_of_the_day(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile
) -> None:
    """A ticket of one community changes: that community's part of its day is counted
    again; the other communities' parts are left as they were (a wrong figure planted in
    one of them stays, which shows it was not counted again)."""
    clock = FakeClock(NOW)
    service = FigureService(uows, DirectoryHolder(demo_file.directory), clock)
    communities = [c.id for c in demo_file.directory.communities][:2]
    reported = NOW - timedelta(days=3)
    async with uows() as uow:
        for n in range(6):
            await uow.tickets.add(_new_ticket(n, reported, communities[n % 2]))
        await uow.commit()
    week = service.local_range(7)
    board = await service.dashboard(*week)
    assert {k: f.received for k, f in board.by_community.items()} == dict.fromkeys(communities, 3)
    async with uows() as uow:  # plant a wrong figure in the second community's part
        await uow.tickets.session.execute(
            update(FigureDayRow)
            .where(FigureDayRow.community_id == communities[1], FigureDayRow.level == "community")
            .values(received=99)
        )
        first = (await uow.tickets.reported_between(*week, [communities[0]]))[0]
        await uow.tickets.save(replace(first, status=TicketStatus.CANCELLED), clock.now())
        await uow.commit()
    board = await service.dashboard(*week)
    assert board.by_community[communities[0]].received == 2  # counted again
    assert board.by_community[communities[0]].cancelled == 1
    assert board.by_community[communities[1]].received == 99  # left alone


async def test_the_past_year_is_kept_counted_in_the_background(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile
) -> None:
    """keep_counted (run every minute by the runtime) counts every past day of the range
    the dashboard offers, so the first long view finds them counted; a view then agrees with
    counting every ticket."""
    clock = FakeClock(NOW)
    service = FigureService(uows, DirectoryHolder(demo_file.directory), clock)
    rng = random.Random(11)
    async with uows() as uow:
        uow.tickets.session.add_all([_row(rng, n) for n in range(100)])
        await uow.commit()
    await service.keep_counted(40)
    zone = ZoneInfo(demo_file.directory.timezone)
    today = NOW.astimezone(zone).date()
    async with uows() as uow:
        counted = await uow.figures.counted_days(today - timedelta(days=n) for n in range(60))
    assert sorted(counted) == [today - timedelta(days=n) for n in range(39, 0, -1)]
    start, end = service.local_range(30)
    expected = await _expected(uows, start=start, end=end, now=NOW, zone=zone, community_ids=None)
    assert _seen(await service.dashboard(start, end)) == expected
