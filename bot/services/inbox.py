"""Incoming updates kept from the moment they are fetched until they are handled.

Telegram counts an update as delivered as soon as the next ``getUpdates`` asks for later
ones, and python-telegram-bot asks for the next batch before the last one is handled; a
crash in between would lose those updates. So each update is written here before it is
queued for handling, marked done after, and whatever is not done is handled again on start
(handling is idempotent: tickets are keyed by chat and message).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.ports import Clock, UnitOfWorkFactory
from bot.services.journal import Journal

logger = logging.getLogger(__name__)
REPLAY_LIMIT = 10_000


async def _all_gone(owners: set[int]) -> set[int]:
    return owners


class Inbox:
    """Keep, mark done, replay.

    With several processes (storage/coordination.py) each update is kept under the number
    of the process that fetched it (``owner``), and only updates of processes that are gone
    (``gone`` says which) are replayed; alone, every earlier run is gone.
    """

    def __init__(self, uows: UnitOfWorkFactory, clock: Clock, journal: Journal) -> None:
        self._uows = uows
        self._clock = clock
        self._journal = journal
        self.owner: int | None = None
        self.gone: Callable[[set[int]], Awaitable[set[int]]] = _all_gone

    async def keep_many(self, updates: list[tuple[int, dict[str, Any]]]) -> set[int]:
        """Write a fetched batch down (before Telegram is told it arrived), in one
        transaction; returns the ids that are new (the others were sent again)."""
        async with self._uows() as uow:
            fresh = await uow.inbox.keep_many(updates, self._clock.now(), self.owner)
            await uow.commit()
        return fresh

    async def done(self, update_id: int) -> None:
        """The update was handled. While the bot runs the mark is written with others a
        moment later (bot/services/journal.py); the journal also forgets old handled ones."""
        await self._journal.done(update_id)

    async def undone(self) -> list[dict[str, Any]]:
        """What was fetched but not handled by a process that stopped (this one before a
        restart, or another one that died); from now on they are this process's."""
        async with self._uows() as uow:
            owners = await uow.inbox.undone_owners()
        others = {o for o in owners if o is not None and o != self.owner}
        takeable: set[int | None] = set(await self.gone(others)) if others else set()
        if None in owners:
            takeable.add(None)
        if not takeable:
            return []
        async with self._uows() as uow:
            payloads = await uow.inbox.take_over(takeable, self.owner, REPLAY_LIMIT)
            await uow.commit()
        if payloads:
            logger.warning(
                "%d update(s) were not handled by a process that stopped; handling them now",
                len(payloads),
            )
        return payloads
