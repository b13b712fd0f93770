"""The real bot with second-long deadlines: reminders and escalations arrive on time (issue #4).

Runs the whole runtime (SQLite or PostgreSQL, the sandbox Bot API, python-telegram-bot's
polling, the scheduler task) on wall-clock time, as an outside check would.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import DEMO_COMMUNITY_FILE, Settings, load_settings
from handlers.runtime import Runtime
from sandbox.world import World
from tests.helpers import GROUP_G01, RESIDENT

WANG, LIU, ZHAO, SUN = 10002, 10003, 20001, 30001
UNDERSTAND = 2.0  # seconds
TOLERANCE = 1.0  # the promise: within one second of due


def fast_file(tmp_path: Path) -> Path:
    text = Path(DEMO_COMMUNITY_FILE).read_text(encoding="utf-8")
    fast = re.sub(
        r"^sla:.*?(?=^staff:)",
        "sla:\n  understand: 2s\n  plan: 2s\n  reply: 2s\n"
        "  resolve: {general: 30s, major: 40s, complex: 50s}\n  day_end: '23:59'\n\n",
        text,
        flags=re.DOTALL | re.MULTILINE,
    )
    assert "understand: 2s" in fast
    path = tmp_path / "fast.yaml"
    path.write_text(fast, encoding="utf-8")
    return path


@pytest.fixture
async def runtime(database_url: str, port: int, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings: Settings = load_settings(
        DATABASE_URL=database_url, WEB_PORT=port, COMMUNITY_CONFIG=str(fast_file(tmp_path))
    )
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def wait_for_message(
    world: World, chat_id: int, since: int, needle: str, wait: float
) -> tuple[dict[str, Any], float]:
    """The first bot message in the chat after ``since`` containing ``needle``, and when it
    was seen (monotonic)."""
    deadline = time.monotonic() + wait
    while True:
        for message in world.changes_since(since)["messages"]:
            if message["chat_id"] == chat_id and message["is_bot"] and needle in message["text"]:
                return message, time.monotonic()
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no message with {needle!r} in chat {chat_id} within {wait}s")
        await world.wait_changes(world.version, min(left, 0.05))


async def test_unaccepted_ticket_reminds_and_escalates_on_time(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    world = runtime.sandbox.world
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await wait_for_message(world, GROUP_G01, since, "工单号", 5.0)
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    # Convert the ticket's wall-clock report time to this process's monotonic clock.
    opened = time.monotonic() - (runtime.core.clock.now() - ticket.created_at).total_seconds()

    ping, _ = await wait_for_message(world, WANG, since, "工单 #1", 5.0)
    assert [[b["text"] for b in row] for row in ping["buttons"]] == [
        ["接单", "处理方案", "办结"],
        ["上报", "转派", "分类有误"],
    ]

    _, reminded = await wait_for_message(world, WANG, since, "提醒", 5.0)
    assert abs(reminded - (opened + 0.8 * UNDERSTAND)) <= TOLERANCE

    _, escalated = await wait_for_message(world, LIU, since, "超时上报", 5.0)
    assert opened + UNDERSTAND - 0.05 <= escalated <= opened + UNDERSTAND + TOLERANCE

    # Still nobody: community after two more seconds, street after two more.
    _, to_community = await wait_for_message(world, ZHAO, since, "超时上报", 6.0)
    assert to_community <= opened + 2 * UNDERSTAND + TOLERANCE
    _, to_street = await wait_for_message(world, SUN, since, "超时上报", 6.0)
    assert to_street <= opened + 3 * UNDERSTAND + TOLERANCE
    async with runtime.core.uows() as uow:
        climbed = await uow.tickets.get(1)
    assert climbed is not None
    assert (climbed.level, climbed.assignee_id) == (3, "sun")


async def test_pressing_accept_stops_the_escalation(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    world = runtime.sandbox.world
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    ping, _ = await wait_for_message(world, WANG, since, "工单 #1", 5.0)
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:accept")
    told, _ = await wait_for_message(world, GROUP_G01, since, "已接单", 5.0)
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert ticket.accepted_at is not None
    accepted = time.monotonic() - (runtime.core.clock.now() - ticket.accepted_at).total_seconds()
    assert told["text"] == "#1 物业王管家已接单，正在了解情况。"
    # The plan stage (2 s) now runs instead; the understand breach must not come.
    _, plan_breach = await wait_for_message(world, LIU, since, "商定处理方案逾期", 6.0)
    assert not [
        m
        for m in world.changes_since(since)["messages"]
        if m["chat_id"] == LIU and "接单（了解情况）逾期" in m["text"]
    ]
    assert accepted + UNDERSTAND - 0.05 <= plan_breach <= accepted + UNDERSTAND + TOLERANCE
