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

    async def _post(self, endpoint: str, data: Any = None, **kwargs: Any) -> Any:
        # The batch is kept as Telegram sent it, before python-telegram-bot parses it: the
        # same payloads the webhook keeps, and no ``to_dict()`` per update to rebuild them
        # (~0.2 ms each). ``_post`` is python-telegram-bot's one way to the Bot API in
        # version 22 (pinned in pyproject.toml); tests/test_delivery.py fails if it stops
        # being used for getUpdates.
        result = await super()._post(endpoint, data, **kwargs)
        if endpoint == "getUpdates" and result:
            await self._keep(result)
        return result

    async def _keep(self, payloads: list[dict[str, Any]]) -> None:
        try:
            ids = [payload["update_id"] for payload in payloads]
            fresh = await self._inbox.keep_many(list(zip(ids, payloads, strict=True)))
        except Exception:  # still handled; only crash-safety is lost for this batch
            logger.exception("could not keep a batch of %d update(s)", len(payloads))
        else:
            self._repeats.update(u for u in ids if u not in fresh)

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
