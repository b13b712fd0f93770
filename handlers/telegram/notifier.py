"""Sends the core's notices through the Bot API."""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.domain import Notice

logger = logging.getLogger(__name__)


def keyboard(notice: Notice) -> InlineKeyboardMarkup | None:
    """The notice's buttons, one row."""
    if not notice.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in notice.buttons]]
    )


class TelegramNotifier:
    """Delivers one notice; failures are logged with their reason and reported as False.

    Rate limits, retries and a durable outbox come with issue #7; until then a message that
    cannot be sent is logged and the ticket's deadlines still run (a plan the resident never
    saw breaches the reply stage and the assignee is asked to call).
    """

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def deliver(self, notice: Notice) -> bool:
        """Send it; False when Telegram refused or could not be reached."""
        reply = (
            ReplyParameters(notice.reply_to, allow_sending_without_reply=True)
            if notice.reply_to is not None
            else None
        )
        try:
            await self._bot.send_message(
                notice.chat_id, notice.text, reply_parameters=reply, reply_markup=keyboard(notice)
            )
        except Forbidden as exc:
            # A staff member who never opened a private chat with the bot cannot be messaged.
            logger.warning(
                "ticket #%s: %s to %s not delivered: %s (has the person sent /start?)",
                notice.ticket_id,
                notice.kind,
                notice.chat_id,
                exc.message,
            )
            return False
        except (BadRequest, RetryAfter, NetworkError, TelegramError) as exc:
            logger.warning(
                "ticket #%s: %s to %s not delivered: %s",
                notice.ticket_id,
                notice.kind,
                notice.chat_id,
                exc,
            )
            return False
        return True
