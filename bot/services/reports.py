"""The weekly note (晒单 / 回音壁) posted to every group on Monday morning.

The week last posted is stored with the notes' place in the outbox, in one transaction, so a
restart neither skips a Monday nor posts twice; a bot that was down on Monday morning posts as
soon as it is back that week.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.directory import DirectoryHolder
from bot.domain import Notice
from bot.ports import Clock, UnitOfWorkFactory
from bot.services.background import BackgroundLoop
from bot.services.figures import Figures, FigureService
from bot.services.tickets import TicketService
from bot.texts import admins as texts

logger = logging.getLogger(__name__)
POSTED_KEY = "weekly_note_posted"  # the ISO week ("2026-W47") of the last Monday posted
POST_AT = time(9, 0)  # local time on Monday
MAX_SLEEP = 3600.0


def note_for(figures: Figures) -> str:
    """The group's note from its figures."""
    return texts.weekly_note(
        figures.received,
        figures.resolved,
        figures.resolved_on_time.part,
        figures.satisfaction.part,
    )


class WeeklyNotes:
    """Posts last week's figures to each group once a week."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        directory: DirectoryHolder,
        clock: Clock,
        figures: FigureService,
        tickets: TicketService,
    ) -> None:
        self._uows = uows
        self._directory = directory
        self._clock = clock
        self._figures = figures
        self._tickets = tickets
        self._loop = BackgroundLoop("weekly-notes")

    def _this_monday(self, now: datetime) -> datetime:
        zone = ZoneInfo(self._directory.current.timezone)
        local = now.astimezone(zone)
        monday = local.date() - timedelta(days=local.weekday())
        return datetime.combine(monday, POST_AT, zone)

    async def post_if_due(self) -> int:
        """Post this week's notes if Monday 09:00 has passed and they are not out yet;
        returns how many groups were sent one."""
        now = self._clock.now()
        monday = self._this_monday(now)
        if now < monday:
            return 0
        week = "{}-W{:02d}".format(*monday.isocalendar()[:2])
        async with self._uows() as uow:
            if await uow.directory.get_meta(POSTED_KEY) == week:
                return 0
        by_grid = await self._figures.week_by_grid(monday.date() - timedelta(days=1))
        notices = []
        for group in self._directory.current.groups:
            figures = by_grid.get(group.grid_id)
            if figures is not None and figures.received:
                notices.append(Notice(group.chat_id, note_for(figures), kind="weekly_note"))
        async with self._uows() as uow:
            if await uow.directory.get_meta(POSTED_KEY, lock=True) == week:
                return 0  # another pass (or process) got there meanwhile
            # The week is marked and its notes queued in one transaction: once, exactly.
            await uow.directory.set_meta(POSTED_KEY, week)
            await uow.outbox.add(notices, now)
            await uow.commit()
        await self._tickets.kick()
        logger.info("weekly notes for %s posted to %d groups", week, len(notices))
        return len(notices)

    def start(self) -> None:
        """Run in the background until :meth:`stop`."""
        self._loop.start(self._run)

    async def stop(self) -> None:
        """Let a posting in progress finish, then stop."""
        await self._loop.stop()

    async def _run(self) -> None:
        while not self._loop.stopping:
            try:
                await self.post_if_due()
            except Exception:
                logger.exception("weekly notes failed; trying again later")
            now = self._clock.now()
            next_monday = self._this_monday(now) + timedelta(days=7)
            await self._loop.pause(min(MAX_SLEEP, max(1.0, (next_monday - now).total_seconds())))
