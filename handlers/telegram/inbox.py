"""python-telegram-bot wiring of the inbox (bot/services/inbox.py).

- :class:`KeepingBot` writes each batch ``getUpdates`` returns to the inbox, in one
  transaction, before python-telegram-bot can ask for the next batch (which tells Telegram
  the last one arrived).
- :class:`KeepingQueue` (the application's update queue) drops an update that was kept
  before: Telegram sent it again.
- :class:`InboxApplication` marks an update done once every handler has run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from telegram import Update
from telegram.ext import Application, ExtBot

from bot.metrics import Metrics
from bot.services.inbox import Inbox

logger = logging.getLogger(__name__)


class KeepingBot(ExtBot[None]):
    """The bot, keeping every fetched batch of updates before it is handled."""

    def __init__(self, *args: Any, inbox: Inbox, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with self._unfrozen():
            self._inbox = inbox
            self._repeats: set[int] = set()

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        updates = await super().get_updates(*args, **kwargs)
        if updates:
            try:
                fresh = await self._inbox.keep_many([(u.update_id, u.to_dict()) for u in updates])
            except Exception:  # still handled; only crash-safety is lost for this batch
                logger.exception("could not keep updates %s…", updates[0].update_id)
            else:
                self._repeats.update(u.update_id for u in updates if u.update_id not in fresh)
        return updates

    def repeated(self, update_id: int) -> bool:
        """True (once) for an update that was kept before: Telegram sent it again."""
        if update_id in self._repeats:
            self._repeats.discard(update_id)
            return True
        return False


class KeepingQueue(asyncio.Queue[object]):
    """The update queue: repeats are dropped; kept-but-unhandled updates can be replayed."""

    bot: KeepingBot | None = None

    async def put(self, item: object) -> None:
        if isinstance(item, Update) and self.bot is not None and self.bot.repeated(item.update_id):
            logger.info("update %s arrived again; not handled twice", item.update_id)
            return
        await super().put(item)

    async def replay(self, payloads: Sequence[dict[str, Any]], application: Application) -> None:
        """Queue again what was kept but not handled when the bot stopped."""
        for payload in payloads:
            update = Update.de_json(payload, application.bot)
            if update is not None:
                await super().put(update)


class InboxApplication(Application):
    """An application that marks each update done in the inbox after handling it."""

    inbox: Inbox | None = None
    metrics: Metrics | None = None

    async def process_update(self, update: object) -> None:
        if isinstance(update, Update) and self.metrics is not None:
            self.metrics.message_in(_kind(update))
        await super().process_update(update)
        if isinstance(update, Update) and self.inbox is not None:
            try:
                await self.inbox.done(update.update_id)
            except Exception:
                logger.exception("could not mark update %s handled", update.update_id)


def _kind(update: Update) -> str:
    if update.callback_query is not None:
        return "button"
    if update.edited_message is not None:
        return "edit"
    if update.message is not None:
        return "private" if update.message.chat.type == "private" else "group"
    return "other"
