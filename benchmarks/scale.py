"""How the user-facing queries behave as a district's tickets pile up (PostgreSQL).

    .venv/bin/python -m benchmarks.scale [--database-url URL] [--sizes 10000,100000,1000000]
        [--repeat 7] [--again]

Empties the given PostgreSQL database (it must be a scratch one: every table of this project
is dropped), then fills it in steps to each size with tickets across 800 grids in 80
communities, spread over a simulated year: most closed and rated, some merged or withdrawn, a
few still open over the last two days with their pending deadlines, two fired timers per
ticket of history. Rows go in through PostgreSQL's COPY (asyncpg), so a million takes
about a minute.

At each size it prints the median and the worst of ``--repeat`` runs of:
- the dashboard's figures for the last 30 days, district-wide and for one community;
- the weekly note's figures (7 days, per grid);
- the open tickets by deadline (the dashboard's list), one person's open tickets, and the
  scheduler's next deadline and due batch;
- a ticket insert under load: a resident's request through the real intake (classify, open
  the ticket with its deadlines and queue its messages), one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import load_community_file
from bot.core import Core, build_core
from bot.domain import Category, Rating, Tier
from bot.services.intake import IncomingMessage
from bot.settings import DEMO_COMMUNITY_FILE
from storage.db import create_engine, migrate, session_factory
from storage.uow import SqlUnitOfWorkFactory

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
COMMUNITIES = 80
GRIDS_PER_COMMUNITY = 10
GROUP = -1001000000001  # a demo group: requests through intake land there
CATEGORIES = [c.value for c in Category if c != Category.NONE]
TICKET_COLUMNS = [
    *("community_id", "grid_id", "chat_id", "message_id", "reporter_id", "reporter_name"),
    *("text", "category", "confidence", "urgent", "tier", "status", "assignee_id"),
    *("location", "created_at", "updated_at", "level", "accept_due_at", "plan_due_at"),
    *("reply_due_at", "resolve_due_at", "accepted_at", "planned_at", "replied_at"),
    *("resolved_at", "closed_at", "plan_text", "follow_up_text", "follow_up_at"),
    *("merged_into", "rating", "households", "topic", "answered", "version"),
]
PROBLEMS = (
    "{}号楼厨房水管漏水了",
    "{}号楼电梯又坏了，困在里面出不来",
    "{}号楼楼上半夜装修吵死了",
    "社保卡在哪里补办，{}号楼的老人问",
    "{}号楼楼道灯不亮",
    "{}号楼门口垃圾好几天没人清",
)
STEP = 1_000_000  # tickets generated, sorted by report time and copied at once
TIMER_COLUMNS = ("ticket_id", "kind", "stage", "due_at", "fired_at", "outcome")


def _ticket(rng: random.Random, n: int, now: datetime) -> tuple[Any, ...]:
    """Ticket ``n`` of a year: reported at a random moment of the last 365 days."""
    community = n % COMMUNITIES
    grid = f"c{community:02d}g{rng.randrange(GRIDS_PER_COMMUNITY)}"
    created = now - timedelta(seconds=rng.uniform(60, 365 * 86400))
    roll = rng.random()
    if created > now - timedelta(days=2) and roll < 0.3:
        status = rng.choice(["new", "accepted", "planned", "reopened"])
    elif roll < 0.02:
        status = "merged"
    elif roll < 0.04:
        status = "cancelled"
    elif roll < 0.08:
        status = "resolved"
    else:
        status = "closed"
    done = status in ("resolved", "closed")
    tier = rng.choices([t.value for t in Tier], weights=(80, 15, 5))[0]
    minutes = {"general": 30, "major": 120, "complex": 1440}[tier]

    def within(limit: float) -> datetime:
        return created + timedelta(minutes=rng.uniform(0.5, limit))

    accepted = within(6) if status != "new" else None
    return (
        f"c{community:02d}",
        grid,
        -1002000000000 - community,
        n,
        6_000_000 + rng.randrange(200_000),
        "居民",
        "3号楼电梯坏了",
        rng.choice(CATEGORIES),
        0.9,
        rng.random() < 0.03,
        tier,
        status,
        f"s{community:02d}{rng.randrange(5)}",
        "{}",
        created,
        created,
        0,
        created + timedelta(minutes=5),
        created + timedelta(minutes=10),
        created + timedelta(minutes=15),
        created + timedelta(minutes=minutes),
        accepted,
        within(11) if accepted else None,
        within(16) if accepted else None,
        within(minutes * 1.2) if done else None,
        within(minutes * 2) if status == "closed" else None,
        "",
        "",
        None,
        None,
        rng.choice([Rating.SATISFIED.value, Rating.BASICALLY.value, None]) if done else None,
        1,
        "电梯",
        False,
        1,
    )


async def _copy(dsn: str, start: int, stop: int, now: datetime) -> None:
    rng = random.Random(start)
    connection = await asyncpg.connect(dsn)
    try:
        for chunk in range(start, stop, STEP):
            end = min(chunk + STEP, stop)
            # In report order, as a real table fills (a month's tickets are neighbours).
            rows = sorted((_ticket(rng, n, now) for n in range(chunk, end)), key=lambda r: r[14])
            await connection.copy_records_to_table("tickets", records=rows, columns=TICKET_COLUMNS)
            ids = dict(
                await connection.fetch(
                    "SELECT message_id, id FROM tickets WHERE chat_id <= -1002000000000"
                    " AND message_id >= $1 AND message_id < $2",
                    chunk,
                    end,
                )
            )
            timers = []
            for row in rows:
                ticket_id = ids[row[3]]
                created, status = row[14], row[11]
                if status in ("new", "accepted", "planned", "reopened"):
                    timers.append((ticket_id, "breach", "resolve", row[20], None, ""))
                    timers.append((ticket_id, "day_end", "", now + timedelta(hours=6), None, ""))
                else:
                    timers.append((ticket_id, "remind", "understand", created, created, "done"))
                    timers.append((ticket_id, "breach", "resolve", row[20], row[20], "skipped"))
            await connection.copy_records_to_table("timers", records=timers, columns=TIMER_COLUMNS)
        await connection.execute("ANALYZE tickets; ANALYZE timers")
    finally:
        await connection.close()


async def _timed(repeat: int, work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


async def _measure(
    core: Core, engine: AsyncEngine, repeat: int, size: int, message_ids: list[int]
) -> None:
    now = core.clock.now()
    month = core.figures.local_range(30)  # what the web admin asks for: whole local days
    print(f"\n{size:,} tickets")
    async with engine.begin() as connection:  # nothing counted: the first dashboard counts
        for table in ("figure_days", "figure_community_days", "figure_day_states"):
            await connection.execute(text(f"DELETE FROM {table}"))
    started = time.perf_counter()
    await core.figures.dashboard(*month)
    first = (time.perf_counter() - started) * 1000
    print(f"  {'dashboard, district, first (counts 29 days)':<40} once   {first:7.1f} ms")

    async def yesterday_changed() -> object:
        """The usual case in a working district: yesterday's tickets are still being
        resolved and rated, so the parts of yesterday they belong to (three communities'
        here) are counted again first."""
        async with engine.begin() as connection:
            for community in ("c07", "c21", "c55"):
                await connection.execute(
                    text("INSERT INTO figure_changes (reported_at, community_id) VALUES (:at, :c)"),
                    {"at": month[1] - timedelta(days=1, hours=12), "c": community},
                )
        return await core.figures.dashboard(*month)

    checks: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("dashboard, district, 30 days", lambda: core.figures.dashboard(*month)),
        ("  the same, 3 communities' yesterday changed", yesterday_changed),
        ("dashboard, one community, 30 days", lambda: core.figures.dashboard(*month, ["c07"])),
        ("weekly note figures, per grid", core.figures.week_by_grid),
    ]

    async def open_by_deadline() -> object:
        async with core.uows() as uow:
            return await uow.tickets.all_open()

    async def open_for_person() -> object:
        async with core.uows() as uow:
            return await uow.tickets.open_for("s071")

    async def scheduler_due() -> object:
        async with core.uows() as uow:
            await uow.timers.next_due()
            return await uow.timers.due(now, 200)

    checks += [
        ("open tickets by deadline (all)", open_by_deadline),
        ("one person's open tickets", open_for_person),
        ("scheduler: next deadline + due batch", scheduler_due),
    ]
    for name, work in checks:
        median, worst = await _timed(repeat, work)
        print(f"  {name:<40} median {median:7.1f} ms   worst {worst:7.1f} ms")

    async def insert() -> object:
        message_id = message_ids.pop()
        message = IncomingMessage(
            chat_id=GROUP,
            message_id=message_id,
            sender_id=5000001,
            sender_name="张阿姨",
            text=PROBLEMS[message_id % len(PROBLEMS)].format(message_id % 9 + 1),
            sent_at=core.clock.now(),
        )
        return await core.intake.receive_group_message(message)

    median, worst = await _timed(max(repeat, 50), insert)
    print(
        f"  {'ticket insert via intake (one by one)':<40} median {median:7.1f} ms   worst "
        f"{worst:7.1f} ms"
    )


async def main(url: str, sizes: list[int], repeat: int, again: bool) -> None:
    logging.basicConfig(level=logging.WARNING)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    if again:  # measure what an earlier run left, without filling
        size = int(await connection.fetchval("SELECT count(*) FROM tickets"))
        sizes = []
    else:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await connection.close()
    engine = create_engine(url)
    await migrate(engine)
    file = load_community_file(DEMO_COMMUNITY_FILE)
    core = await build_core(SqlUnitOfWorkFactory(session_factory(engine)), file, SystemClock())
    now = datetime.now(UTC)
    # Fresh message numbers on every run (--again runs on what earlier runs inserted).
    base = 9_000_000_000 + int(time.time()) % 100_000 * 1_000
    message_ids = list(range(base, base + 1_000))
    filled = 0
    for size in sorted(sizes):
        started = time.perf_counter()
        await _copy(dsn, filled, size, now)
        print(f"\nfilled {size - filled:,} tickets in {time.perf_counter() - started:.0f} s")
        filled = size
        await _measure(core, engine, repeat, size, message_ids)
    if again:
        await _measure(core, engine, repeat, size, message_ids)
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--again", action="store_true", help="measure the tickets an earlier run left; no fill"
    )
    arguments = parser.parse_args()
    sizes = [int(s) for s in arguments.sizes.split(",")]
    asyncio.run(main(arguments.database_url, sizes, arguments.repeat, arguments.again))
