"""Helpers for driving the sandbox from tests: what people do and what they see."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.config import CommunityFile
from bot.services.tickets import staff_actor
from handlers.runtime import Runtime
from sandbox.world import World

RESIDENT = 5000001  # 张阿姨 in the sandbox
GROUP_G01 = -1001000000001


async def bot_messages_after(
    world: World, chat_id: int, since: int, count: int = 1, wait: float = 5.0
) -> list[dict[str, Any]]:
    """Wait until the bot has posted ``count`` messages in the chat after version ``since``."""
    deadline = time.monotonic() + wait
    while True:
        found = [
            m
            for m in world.changes_since(since)["messages"]
            if m["chat_id"] == chat_id and m["is_bot"]
        ]
        if len(found) >= count:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            return found
        await world.wait_changes(world.version, min(left, 0.5))


async def quiet_for(world: World, chat_id: int, since: int, seconds: float = 0.5) -> bool:
    """True when the bot said nothing in the chat for ``seconds`` after version ``since``."""
    await asyncio.sleep(seconds)
    return not [
        m for m in world.changes_since(since)["messages"] if m["chat_id"] == chat_id and m["is_bot"]
    ]


async def toast_for(world: World, user_id: int, since: int, wait: float = 5.0) -> str:
    """The answer shown to ``user_id`` after they pressed a button (since version ``since``)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        toasts = [t for t in world.changes_since(since)["toasts"] if t["user_id"] == user_id]
        if toasts:
            return str(toasts[-1]["text"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no answer to {user_id}'s button within {wait}s")


async def wait_until(condition: Callable[[], object], seconds: float) -> bool:
    """Poll ``condition`` every 50 ms; True as soon as it holds, False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def serve(app: web.Application, port: int) -> web.AppRunner:
    """Serve an aiohttp application on 127.0.0.1:``port`` (clean up the runner after)."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def accepted_ticket(runtime: Runtime) -> None:
    """One real ticket (#1, 3号楼电梯坏了 in G01), accepted by 王管家."""
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await bot_messages_after(world, GROUP_G01, since)
    wang = runtime.core.directory.current.member("wang")
    assert wang is not None
    await runtime.core.tickets.accept(1, staff_actor(wang))


def world_of(runtime: Runtime) -> World:
    """The sandbox world of a runtime that runs on the sandbox."""
    assert runtime.sandbox is not None
    return runtime.sandbox.world


def without_me_too(file: CommunityFile) -> CommunityFile:
    """The community file with "me too" merging off, for tests that open many tickets about
    the same thing and mean each to be its own."""
    communities = tuple(
        replace(c, routing=replace(c.routing, me_too=False)) for c in file.directory.communities
    )
    directory = replace(file.directory, communities=communities)
    return replace(file, directory=directory, digest=file.digest + "-separate")
