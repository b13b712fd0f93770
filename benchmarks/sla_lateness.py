"""How late the deadline scheduler acts, with many open tickets.

    .venv/bin/python -m benchmarks.sla_lateness [--tickets 10000] [--spread 120]
        [--database-url URL]

Fills a fresh database (SQLite by default) with open tickets whose accept deadlines are
spread at random over the next ``--spread`` seconds, each with its 80% reminder, then runs the
real scheduler on the wall clock until every one has fired. Each breach escalates its ticket
(one transaction: ticket, history, timers) and queues the pings, as in production; the outbox
sender runs beside it as in production (its limits raised so it keeps up) and delivers to a
notifier that only counts. Without the sender loop every queued ping would be sent inline by
the scheduler's own pass, which production never does. Prints lateness (fired − due)
p50/p99/max, and the process's CPU share (scheduler and sender) while the scheduler ran.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bot.clock import SystemClock
from bot.config import load_community_file
from bot.core import build_core
from bot.domain import (
    Category,
    Delivery,
    DeliveryResult,
    NewTicket,
    NewTimer,
    Notice,
    Tier,
)
from bot.services.ratelimit import RateLimits
from bot.settings import DEMO_COMMUNITY_FILE
from storage.db import concurrent_steps, create_engine, migrate, session_factory
from storage.uow import SqlUnitOfWorkFactory

GRIDS = (("xingfu", "G01", -1001000000001), ("xingfu", "G02", -1001000000002))
# Telegram's limits would hold 25,000 pings back for a quarter of an hour; this measures the
# scheduler, not Telegram.
UNLIMITED = RateLimits(group_per_minute=100_000, chat_per_second=1_000, global_per_second=100_000)
LEAD = 20.0  # seconds from the start of the fill to the first deadline (filling 10k takes ~10 s)


class CountingNotifier:
    """Accepts every notice and counts it."""

    def __init__(self) -> None:
        self.count = 0

    async def deliver(self, notice: Notice) -> DeliveryResult:
        self.count += 1
        return DeliveryResult(Delivery.SENT)


async def fill(uows: SqlUnitOfWorkFactory, tickets: int, spread: float, start: datetime) -> int:
    """Insert the tickets and their timers; return how many timers fall inside the run."""
    rng = random.Random(5321)
    timers = 0
    window = timedelta(minutes=5)
    for first in range(0, tickets, 1000):
        async with uows() as uow:
            for n in range(first, min(first + 1000, tickets)):
                community, grid, chat = GRIDS[n % len(GRIDS)]
                due = start + timedelta(seconds=LEAD + rng.uniform(0, spread))
                ticket = await uow.tickets.add(
                    NewTicket(
                        community_id=community,
                        grid_id=grid,
                        chat_id=chat,
                        message_id=n + 1,
                        reporter_id=5000001,
                        reporter_name="基准",
                        text="3号楼电梯坏了",
                        category=Category.REPAIR,
                        confidence=0.9,
                        urgent=False,
                        tier=Tier.MAJOR,
                        created_at=due - window,
                        assignee_id="wang" if grid == "G01" else "chen",
                        location={},
                        accept_due_at=due,
                        resolve_due_at=due + timedelta(hours=2),
                    )
                )
                remind = due - window * 0.2
                if remind > start + timedelta(seconds=LEAD):
                    await uow.timers.add([NewTimer(ticket.id, "remind", "understand", remind)])
                    timers += 1
                await uow.timers.add([NewTimer(ticket.id, "breach", "understand", due)])
                timers += 1
            await uow.commit()
    return timers


async def measure(tickets: int, spread: float, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        engine = create_engine(url)
        await migrate(engine)
        uows = SqlUnitOfWorkFactory(session_factory(engine))
        notifier = CountingNotifier()
        core = await build_core(
            uows, load_community_file(DEMO_COMMUNITY_FILE), SystemClock(), notifier, UNLIMITED
        )
        lateness: list[float] = []
        outcomes: dict[str, int] = {}
        all_fired = asyncio.Event()
        expected = tickets * 2  # replaced by the exact count once the fill is done

        def on_fired(due: datetime, fired: datetime, outcome: str) -> None:
            lateness.append((fired - due).total_seconds())
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if len(lateness) >= expected:
                all_fired.set()

        core.scheduler.on_fired = on_fired
        core.scheduler.concurrency = concurrent_steps(engine)  # as the runtime sets it
        filled = time.perf_counter()
        start = core.clock.now()
        expected = await fill(uows, tickets, spread, start)
        fill_seconds = time.perf_counter() - filled
        if (core.clock.now() - start).total_seconds() > LEAD:
            print(f"warning: filling took {fill_seconds:.1f} s, longer than the {LEAD} s lead")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        core.sender.start()
        core.scheduler.start()
        await all_fired.wait()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await core.scheduler.stop()
        await core.sender.stop()
        await engine.dispose()
    ordered = sorted(lateness)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"backend: {url.split(':', 1)[0]}")
    print(f"open tickets: {tickets:,}; deadlines spread over {spread:.0f} s")
    print(f"timers fired: {len(lateness):,} ({', '.join(f'{k} {v}' for k, v in outcomes.items())})")
    print(f"notices built and handed to the notifier: {notifier.count:,}")
    print(
        f"lateness (fired - due): p50 {statistics.median(ordered) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms (target: p99 <= 1 s)"
    )
    print(f"process CPU (scheduler and sender) over {wall:.1f} s: {cpu / wall:.1%} of one core")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sla_lateness")
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=120.0, help="seconds")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(measure(args.tickets, args.spread, args.database_url))


if __name__ == "__main__":
    main()
