"""One task that sleeps until the earliest deadline and acts on it.

No polling interval: the loop asks the database for the earliest pending timer, sleeps until
then, and is woken early when a step schedules something sooner. After a restart the first
pass acts at once on everything that fell due while the bot was down. The deadlines themselves
live only in the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from bot.domain import Timer
from bot.metrics import Metrics
from bot.ports import Clock, UnitOfWorkFactory
from bot.services.background import BackgroundLoop
from bot.services.tickets import ALREADY_DONE, TicketService

logger = logging.getLogger(__name__)

BATCH = 200
BUSY_ELSEWHERE = 0.2  # seconds to wait when every due timer is held by another process
IDLE_RECHECK = 3600.0  # with nothing pending, look again hourly (a safety net, not a poll)


class DeadlineScheduler:
    """Fires due timers through the ticket service."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        tickets: TicketService,
        clock: Clock,
        *,
        on_fired: Callable[[datetime, datetime, str], None] | None = None,
        metrics: Metrics | None = None,
        concurrency: int = 1,
    ) -> None:
        self._uows = uows
        self._tickets = tickets
        self._clock = clock
        self._loop = BackgroundLoop("deadline-scheduler")
        self.on_fired = on_fired  # (due, fired, outcome): for lateness figures
        self._metrics = metrics
        # Tickets acted on at once. On PostgreSQL each step is a dozen round trips, so one
        # at a time leaves the process waiting on the network; several overlap them (each
        # ticket's own timers still go in order, by one worker). SQLite writes one at a
        # time anyway: 1.
        self.concurrency = concurrency

    def wake(self) -> None:
        """Something was scheduled: re-read the earliest deadline."""
        self._loop.wake()

    async def next_due(self) -> datetime | None:
        """When the earliest pending timer falls due."""
        async with self._uows() as uow:
            return await uow.timers.next_due()

    async def run_due(self) -> int:
        """Act on every timer due now, earliest first; return how many were handled."""
        handled = 0
        seen: set[int] = set()  # tried in this pass (another process may be acting on it)
        while True:
            now = self._clock.now()
            async with self._uows() as uow:
                batch = [t for t in await uow.timers.due(now, BATCH) if t.id not in seen]
            if not batch:
                return handled
            seen.update(t.id for t in batch)
            by_ticket: dict[int, list[Timer]] = {}  # earliest first, as the batch came
            for timer in batch:
                by_ticket.setdefault(timer.ticket_id, []).append(timer)
            queue = list(by_ticket.values())
            queue.reverse()  # popped from the end: earliest ticket first
            workers = min(self.concurrency, len(queue))
            handled += sum(await asyncio.gather(*(self._work(queue) for _ in range(workers))))
            if self._loop.stopping:
                return handled

    async def _work(self, queue: list[list[Timer]]) -> int:
        """Take the next ticket's due timers until none are left; how many were acted on."""
        done = 0
        while queue and not self._loop.stopping:  # the rest stays due for the next start
            for timer in queue.pop():
                if self._loop.stopping:
                    break
                done += await self._fire(timer)
        return done

    async def _fire(self, timer: Timer) -> int:
        """Act on one timer; 1 if it was acted on here, 0 if done already or elsewhere."""
        try:
            outcome = await self._tickets.fire(timer)
        except Exception:  # one bad ticket must not stop every other deadline
            logger.exception(
                "timer %d of ticket #%d failed",
                timer.id,
                timer.ticket_id,
                extra={"ticket": timer.ticket_id},
            )
            outcome = "failed"
            await self._give_up(timer.id, outcome)
        if outcome == ALREADY_DONE:
            return 0  # cancelled meanwhile, or another process is acting on it
        fired_at = self._clock.now()
        if self.on_fired is not None:
            self.on_fired(timer.due_at, fired_at, outcome)
        if self._metrics is not None:
            self._metrics.fired(timer.kind, timer.stage, outcome, timer.due_at, fired_at)
        logger.debug(
            "timer %s/%s of ticket #%d: %s", timer.kind, timer.stage, timer.ticket_id, outcome
        )
        return 1

    async def _give_up(self, timer_id: int, outcome: str) -> None:
        try:
            async with self._uows() as uow:
                await uow.timers.finish(timer_id, self._clock.now(), outcome)
                await uow.commit()
        except Exception:
            logger.exception("could not mark timer %d as failed", timer_id)

    async def run(self) -> None:
        """The loop: act on what is due, then sleep until the next deadline or a wake-up."""
        logger.info("deadline scheduler started")
        while not self._loop.stopping:
            handled = 0
            try:
                handled = await self.run_due()
                due = await self.next_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("deadline scheduler pass failed; retrying in 1 s")
                due = None
                await self._loop.pause(1.0)
            delay = IDLE_RECHECK
            if due is not None:
                delay = max(0.0, (due - self._clock.now()).total_seconds())
            if delay == 0 and handled == 0:
                delay = BUSY_ELSEWHERE  # what is due is being acted on by another process
            await self._loop.pause(delay)

    @property
    def running(self) -> bool:
        """True while the background loop is alive."""
        return self._loop.running

    def start(self) -> None:
        """Run the loop as a background task."""
        self._loop.start(self.run)

    async def stop(self) -> None:
        """Let the current pass finish (cancel only if it hangs), then end the loop."""
        await self._loop.stop()
