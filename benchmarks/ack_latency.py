"""Acknowledgement latency on the embedded defaults: SQLite and the sandbox, real handlers.

    .venv/bin/python -m benchmarks.ack_latency [--messages 200]

Prints start-up time and, for requests posted one after another by residents, the time from
the post to the bot's reply in the group (p50 / p95 / max). Chatter is mixed in, as in a real
group, and must get no reply. Sending limits are raised: this measures the bot's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from bot.settings import load_settings
from handlers.runtime import Runtime
from tests.conftest import free_port

GROUP = -1001000000001
RESIDENTS = (5000001, 5000002, 5000003, 5000004)
REQUESTS = ("3号楼电梯坏了", "2号楼3单元楼道灯不亮了", "楼上半夜装修吵死了", "社保卡在哪里补办")
CHATTER = ("谢谢王师傅！", "大家早上好", "团购鸡蛋接龙", "明天停水通知：9点到12点")


async def measure(messages: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        # Telegram's 20 messages a minute per group would make the 21st reply wait: this
        # benchmark measures the bot's own work, so the limits are raised (see benchmarks.load
        # for a burst under the real limits).
        settings = load_settings(
            DATABASE_URL=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
            WEB_PORT=free_port(),
            SEND_GROUP_PER_MINUTE=100_000,
            SEND_CHAT_PER_SECOND=1000,
            SEND_GLOBAL_PER_SECOND=100_000,
        )
        started = time.perf_counter()
        runtime = Runtime(settings)
        await runtime.start()
        startup = time.perf_counter() - started
        assert runtime.sandbox is not None
        world = runtime.sandbox.world
        latencies: list[float] = []
        stray = opened = joined = 0
        try:
            for i in range(messages):
                text = REQUESTS[i % 4] if i % 10 < 3 else CHATTER[i % 4]
                since = world.version
                t0 = time.perf_counter()
                await world.user_says(RESIDENTS[i % 4], GROUP, f"{text} {i}")
                if i % 10 >= 3:
                    continue
                while not any(
                    m["is_bot"] and m["chat_id"] == GROUP
                    for m in world.changes_since(since)["messages"]
                ):
                    await world.wait_changes(world.version, 5)
                latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0.5)
            async with runtime.core.uows() as uow:
                numbers = [n for n in range(1, messages + 1) if await uow.tickets.get(n)]
                joined = sum([len(await uow.reports.for_ticket(n)) for n in numbers])
            # Repeated reports of one problem join its ticket ("me too"): both count as taken.
            opened = len(numbers)
            stray = opened + joined - len(latencies)
        finally:
            await runtime.stop()
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(f"start-up (migrate, seed, jieba, web, bot): {startup:.2f} s")
    print(f"requests acknowledged: {len(latencies)} of {messages} messages (chatter ignored)")
    print(
        f"acknowledgement latency: p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    print(f"tickets opened: {opened}, reports joined to an open ticket (me too): {joined}")
    print(f"chatter taken as a request: {stray}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(measure(args.messages))


if __name__ == "__main__":
    main()
