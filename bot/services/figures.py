"""The figures communities are judged by (晒单): 办结率, on-time rates per 5321 stage,
satisfaction, by community, grid and staff member, and the weekly note for each group."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from bot.directory import DirectoryHolder
from bot.domain import (
    REQUEST_CATEGORIES,
    Colour,
    Rating,
    Stage,
    Ticket,
    TicketCounts,
    TicketStatus,
    Tier,
)
from bot.ports import Clock, UnitOfWorkFactory
from bot.services import sla
from bot.services.background import BackgroundLoop

logger = logging.getLogger(__name__)
_DONE = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})
_STAGE_FIELDS = {
    Stage.UNDERSTAND: ("accepted_at", "accept_due_at"),
    Stage.PLAN: ("planned_at", "plan_due_at"),
    Stage.REPLY: ("replied_at", "reply_due_at"),
    Stage.RESOLVE: ("resolved_at", "resolve_due_at"),
}


@dataclass
class Rate:
    """A share: ``part`` of ``whole`` (None when there was nothing to count)."""

    part: int = 0
    whole: int = 0

    @property
    def value(self) -> float | None:
        """The share in [0, 1]."""
        return self.part / self.whole if self.whole else None

    def percent(self) -> str:
        """ "95.0%" or "—"."""
        return "—" if self.value is None else f"{self.value * 100:.1f}%"


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), zone)


def _bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A local day as [its midnight, the next midnight)."""
    return _midnight(day, zone), _midnight(day + timedelta(days=1), zone)


@cache
def _split(name: str) -> tuple[str, str]:
    """ "due:resolve:general" -> ("due", "resolve:general")"""
    kind, _, key = name.partition(":")
    return kind, key


@dataclass
class Figures:
    """One slice of tickets, counted."""

    received: int = 0
    resolved: int = 0
    cancelled: int = 0
    merged: int = 0
    answered: int = 0  # told a known answer at once (一次性告知)
    urgent: int = 0
    by_category: Counter[str] = field(default_factory=Counter)
    on_time: dict[str, Rate] = field(default_factory=dict)  # stage (resolve by tier) -> rate
    ratings: Counter[str] = field(default_factory=Counter)  # satisfied/basically/…/unrated

    @property
    def completion(self) -> Rate:
        """办结率: resolved of received."""
        return Rate(self.resolved, self.received)

    @property
    def satisfaction(self) -> Rate:
        """满意率: satisfied or basically satisfied, of those who rated."""
        rated = sum(n for k, n in self.ratings.items() if k != "unrated")
        happy = self.ratings[Rating.SATISFIED.value] + self.ratings[Rating.BASICALLY.value]
        return Rate(happy, rated)

    @property
    def resolved_on_time(self) -> Rate:
        """Resolved within the tier's deadline, of those due or done."""
        total = Rate()
        for key, rate in self.on_time.items():
            if key.startswith("resolve"):
                total.part += rate.part
                total.whole += rate.whole
        return total

    def absorb(self, counts: dict[str, int]) -> None:
        """Add sums the database counted (:class:`bot.domain.TicketCounts`); the same as
        :meth:`add` for each of those tickets."""
        self.received += counts["received"]
        self.merged += counts["merged"]
        self.cancelled += counts["cancelled"]
        self.resolved += counts["resolved"]
        self.urgent += counts["urgent"]
        self.answered += counts["answered"]
        for name, value in counts.items():
            if not value:
                continue
            kind, key = _split(name)
            if kind == "category":
                self.by_category[key] += value
            elif kind == "rating":
                self.ratings[key] += value
            elif kind == "due":
                rate = self.on_time.setdefault(key, Rate())
                rate.whole += value
                rate.part += counts[f"met:{key}"]

    def add(self, ticket: Ticket, now: datetime) -> None:
        """Count one ticket: what every figure means. Counted as received: everything but
        duplicates merged into another ticket and reports the resident withdrew before anyone
        acted (shown apart). The database's sums (storage/figure_repository.py) are checked
        against this in tests/test_figures_sql.py."""
        if ticket.status == TicketStatus.MERGED:
            self.merged += 1
            return
        if ticket.status == TicketStatus.CANCELLED:
            self.cancelled += 1
            return
        self.received += 1
        self.by_category[ticket.category.value] += 1
        self.urgent += ticket.urgent
        self.answered += ticket.answered
        if ticket.status in _DONE:
            self.resolved += 1
            self.ratings[ticket.rating.value if ticket.rating else "unrated"] += 1
        for stage, (done_field, due_field) in _STAGE_FIELDS.items():
            done: datetime | None = getattr(ticket, done_field)
            due: datetime | None = getattr(ticket, due_field)
            if due is None:
                continue
            if done is None and due > now:
                continue  # still running: neither on time nor late yet
            key = f"resolve:{ticket.tier.value}" if stage == Stage.RESOLVE else stage.value
            rate = self.on_time.setdefault(key, Rate())
            rate.whole += 1
            rate.part += done is not None and done <= due


@dataclass
class Dashboard:
    """Everything the dashboard shows for a time range."""

    start: datetime
    end: datetime
    total: Figures
    by_day: dict[date, Counter[str]]  # local day -> category -> tickets received
    by_community: dict[str, Figures]
    by_grid: dict[str, Figures]
    by_staff: dict[str, Figures]  # by the assignee at the end
    open_tickets: list[tuple[Ticket, Colour]]  # the most pressing OPEN_LISTED of them
    open_count: int  # all open tickets


# The dashboard lists this many open tickets, the most pressing first: a community has a few
# dozen; a district's ~1,700 would be a page nobody reads (one community at a time, or the
# export, shows them all).
OPEN_LISTED = 200


ON_TIME_KEYS = (
    Stage.UNDERSTAND.value,
    Stage.PLAN.value,
    Stage.REPLY.value,
    *(f"resolve:{tier.value}" for tier in Tier),
)
CATEGORY_KEYS = tuple(c.value for c in REQUEST_CATEGORIES)
# In the background, the past year's days are kept counted (the longest range the dashboard
# offers), a week at a time, so neither the first long view after deploying nor a view after
# a busy hour waits for the counting. The first pass waits a while: starting up and handling
# what arrived meanwhile go first.
KEEP_COUNTED_DAYS = 366
KEEP_COUNTED_FIRST = 60.0  # seconds after start
KEEP_COUNTED_EVERY = 60.0  # seconds between passes


class FigureService:
    """Reads tickets and counts them; the web admin, /report and the weekly note share it."""

    def __init__(self, uows: UnitOfWorkFactory, directory: DirectoryHolder, clock: Clock) -> None:
        self._uows = uows
        self._directory = directory
        self._clock = clock
        self._loop = BackgroundLoop("figure-days")

    def start(self) -> None:
        """Keep the past year's days counted in the background until :meth:`stop`."""
        self._loop.start(self._keep_counting)

    async def stop(self) -> None:
        """Let a week being counted finish, then stop."""
        await self._loop.stop()

    async def _keep_counting(self) -> None:
        await self._loop.pause(KEEP_COUNTED_FIRST)
        while not self._loop.stopping:
            try:
                await self.keep_counted()
            except Exception:
                logger.exception("counting the figures' days failed; trying again later")
            await self._loop.pause(KEEP_COUNTED_EVERY)

    async def keep_counted(self, days: int = KEEP_COUNTED_DAYS) -> None:
        """Count the past ``days`` local days that are not counted or no longer true, a
        week at a time from yesterday back (each week its own short transaction)."""
        zone = ZoneInfo(self._directory.current.timezone)
        now = self._clock.now()
        yesterday = now.astimezone(zone).date() - timedelta(days=1)
        past = [yesterday - timedelta(days=n) for n in range(days - 1)]
        for week in range(0, len(past), 7):
            if self._loop.stopping:
                return
            await self._roll_up(sorted(past[week : week + 7]), zone, now)

    def local_range(self, days: int, end_day: date | None = None) -> tuple[datetime, datetime]:
        """The last ``days`` local days ending with ``end_day`` (today by default)."""
        zone = ZoneInfo(self._directory.current.timezone)
        today = end_day or self._clock.now().astimezone(zone).date()
        end = _bounds(today, zone)[1]
        return end - timedelta(days=days), end

    async def dashboard(
        self, start: datetime, end: datetime, community_ids: list[str] | None = None
    ) -> Dashboard:
        """The figures of tickets reported in [start, end)."""
        now = self._clock.now()
        zone = ZoneInfo(self._directory.current.timezone)
        # Two connections at once: the database works on one while Python reads the other.
        (sums, received), (still_open, open_count) = await asyncio.gather(
            self._count(start, end, community_ids, now), self._open(community_ids)
        )
        total = Figures()
        by_day: dict[date, Counter[str]] = {}
        day = start.astimezone(zone).date()
        while datetime.combine(day, datetime.min.time(), zone) < end:
            by_day[day] = Counter()
            day += timedelta(days=1)
        by_community: dict[str, Figures] = {}
        by_grid: dict[str, Figures] = {}
        by_staff: dict[str, Figures] = {}
        levels = {"community": by_community, "grid": by_grid, "staff": by_staff}
        for row in sums:
            if row.level == "all":
                total.absorb(row.counts)
            else:
                levels[row.level].setdefault(row.key or "", Figures()).absorb(row.counts)
        for day, category, count in received:
            by_day.setdefault(day, Counter())[category] += count
        policy = self._directory.current.sla
        coloured = [(t, sla.colour(t, policy, now)) for t in still_open]
        return Dashboard(
            start, end, total, by_day, by_community, by_grid, by_staff, coloured, open_count
        )

    async def _open(self, community_ids: list[str] | None) -> tuple[list[Ticket], int]:
        async with self._uows() as uow:
            listed = await uow.tickets.all_open(community_ids, OPEN_LISTED)
            count = len(listed)
            if count == OPEN_LISTED:
                count = await uow.tickets.count_open(community_ids)
            return listed, count

    async def _count(
        self, start: datetime, end: datetime, community_ids: list[str] | None, now: datetime
    ) -> tuple[list[TicketCounts], list[tuple[date, str, int]]]:
        """Tickets reported in [start, end): their sums, and how many of each category
        each local day received.

        Whole local days before today are read from the roll-up (see :meth:`_roll_up`);
        today and any part of a day at the edges are counted from the tickets."""
        zone = ZoneInfo(self._directory.current.timezone)
        today = now.astimezone(zone).date()
        first = start.astimezone(zone).date()
        if _midnight(first, zone) < start:
            first += timedelta(days=1)
        days = []
        day = first
        while _midnight(day + timedelta(days=1), zone) <= end and day < today:
            days.append(day)
            day += timedelta(days=1)
        live = [(start, end)]
        if days:
            await self._roll_up(days, zone, now)
            live = [(start, _midnight(days[0], zone)), (_bounds(days[-1], zone)[1], end)]
        live = [(a, b) for a, b in live if a < b]
        received: list[tuple[date, str, int]] = []
        async with self._uows() as uow:
            sums = await uow.figures.counts(
                (days[0], days[-1]) if days else None, live, community_ids, now
            )
            if days:
                received += await uow.figures.day_received(days[0], days[-1], community_ids)
            for part_start, part_end in live:
                hours = await uow.figures.received_by_hour(part_start, part_end, community_ids)
                received += [(h.astimezone(zone).date(), c, n) for h, c, n in hours]
        return sums, received

    async def _roll_up(self, days: list[date], zone: ZoneInfo, now: datetime) -> None:
        """Make sure these past local days are counted and still true. A community's part
        of a counted day is counted again when one of its tickets changed since or one of
        its pending deadlines ran out; a day counted in another zone is counted again
        whole."""
        name = str(zone)
        async with self._uows() as uow:
            changed = await uow.figures.take_changes()
            whole: set[date] = set()
            parts: set[tuple[date, str]] = set()
            for at, community_id in changed:
                day = at.astimezone(zone).date()
                if community_id is None:
                    whole.add(day)
                else:
                    parts.add((day, community_id))
            counted = await uow.figures.counted_days({*days, *(day for day, _ in parts)})
            whole |= {day for day, counted_zone in counted.items() if counted_zone != name}
            parts |= await uow.figures.expired_parts(days[0], days[-1], now)
            await uow.figures.forget_days(whole)
            to_count = [day for day in days if day in whole or day not in counted]
            for day in to_count:
                await uow.figures.count_day(day, *_bounds(day, zone), zone=name, now=now)
            # Parts of days not counted (now or before) are counted with their day; the
            # parts of one day are counted again together.
            by_day: dict[date, set[str]] = {}
            for day, community_id in parts:
                if day in counted and day not in whole:
                    by_day.setdefault(day, set()).add(community_id)
            for day, communities in sorted(by_day.items()):
                await uow.figures.count_day(
                    day, *_bounds(day, zone), zone=name, now=now, community_ids=communities
                )
            if len(to_count) >= 7:
                await uow.figures.analyze()
            await uow.commit()

    async def tickets(
        self, start: datetime, end: datetime, community_ids: list[str] | None = None
    ) -> list[Ticket]:
        """Tickets reported in [start, end), for exports."""
        async with self._uows() as uow:
            return await uow.tickets.reported_between(start, end, community_ids)

    async def week_by_grid(
        self, end_day: date | None = None, community_ids: list[str] | None = None
    ) -> dict[str, Figures]:
        """The seven days ending with ``end_day``, counted per grid (one read for all)."""
        start, end = self.local_range(7, end_day)
        sums, _ = await self._count(start, end, community_ids, self._clock.now())
        by_grid: dict[str, Figures] = {}
        for row in sums:
            if row.level == "grid" and row.key is not None:
                by_grid.setdefault(row.key, Figures()).absorb(row.counts)
        return by_grid

    async def week_of_group(self, chat_id: int, end_day: date | None = None) -> Figures | None:
        """Last week's figures for the grid a group belongs to (None: not a known group)."""
        directory = self._directory.current
        group = directory.group(chat_id)
        if group is None:
            return None
        community_id = directory.grid(group.grid_id).community_id
        by_grid = await self.week_by_grid(end_day, [community_id])
        return by_grid.get(group.grid_id, Figures())
