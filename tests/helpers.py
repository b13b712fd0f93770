"""Helpers for driving the sandbox from tests: what people do and what they see."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from bot.config import CommunityFile
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
