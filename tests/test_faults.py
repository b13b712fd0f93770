"""The Bot API test server answers 429 (with retry_after), 502 and stalls past the client's
timeout at random: everything is still delivered, once, in order per chat, and no sending
limit is ever exceeded as the server counts them. Real time, the real application."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque

import pytest

from bot.settings import Settings, load_settings
from handlers.runtime import Runtime
from sandbox.server import Faults
from tests.helpers import GROUP_G01, RESIDENT, world_of

GROUP_G02 = -1001000000002
LIMITS = {"SEND_GROUP_PER_MINUTE": 30, "SEND_CHAT_PER_SECOND": 2, "SEND_GLOBAL_PER_SECOND": 8}


@pytest.fixture
def settings(database_url: str, port: int) -> Settings:
    return load_settings(DATABASE_URL=database_url, WEB_PORT=port, **LIMITS)


def exceeded(sends: list[tuple[float, int]]) -> list[str]:
    """Every window in which more went out than allowed (exact windows, no margin)."""
    found = []
    per_chat: dict[int, list[float]] = defaultdict(list)
    for at, chat in sends:
        per_chat[chat].append(at)
    checks = [("global", [at for at, _ in sends], LIMITS["SEND_GLOBAL_PER_SECOND"], 1.0)]
    for chat, times in per_chat.items():
        if chat < 0:
            checks.append((str(chat), times, LIMITS["SEND_GROUP_PER_MINUTE"], 60.0))
        else:
            checks.append((str(chat), times, LIMITS["SEND_CHAT_PER_SECOND"], 1.0))
    for name, times, limit, window in checks:
        recent: deque[float] = deque()
        for at in sorted(times):
            while recent and recent[0] <= at - window:
                recent.popleft()
            recent.append(at)
            if len(recent) > limit:
                found.append(f"{name}: {len(recent)} within {window}s")
    return found


async def test_faults_lose_nothing_double_nothing_reorder_nothing(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    faults = Faults(flood=0.15, bad_gateway=0.15, stall=0.02, retry_after=1, seed=11)
    runtime.sandbox.faults = faults
    world = world_of(runtime)
    texts = ["{}号楼电梯坏了", "{}号楼楼道灯坏了", "{}号楼水管漏水了", "{}号楼门禁坏了"]
    for n in range(12):
        group = GROUP_G01 if n % 2 == 0 else GROUP_G02
        building = 1 + n % 3 if group == GROUP_G01 else 4 + n % 3
        await world.user_says(RESIDENT, group, texts[n % 4].format(building))
        await asyncio.sleep(0.1)

    async def everything_sent() -> bool:
        async with runtime.core.uows() as uow:
            return await uow.outbox.count_pending() == 0

    deadline = time.monotonic() + 120
    while not await everything_sent():
        assert time.monotonic() < deadline, f"still queued after 120 s; faults {faults.answered}"
        await asyncio.sleep(0.2)
    assert faults.answered.get("429"), faults.answered  # the faults really happened
    assert faults.answered.get("502"), faults.answered

    # In order and once: what each chat shows is exactly what was queued for it, in order.
    async with runtime.core.uows() as uow:
        queued: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for number in range(1, 40):
            for message in await uow.outbox.for_ticket(number):
                if message.state == "sent":
                    queued[message.notice.chat_id].append((message.id, message.notice.text))
    for chat, rows in queued.items():
        expected = [text for _id, text in sorted(rows)]
        shown = [
            m.text
            for m in world.messages.get(chat, [])
            if m.from_id == world.bot.id and m.text in set(expected)
        ]
        assert shown == expected, f"chat {chat}"
    assert exceeded(world.sent_log) == []
