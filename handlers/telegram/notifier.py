"""Sends the core's notices through the Bot API."""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
    User,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.domain import Button, Delivery, Notice

logger = logging.getLogger(__name__)


ROW = 3  # buttons per row: five ticket actions in one row would be too narrow on a phone


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """Inline buttons, up to three to a row."""
    if not buttons:
        return None
    keys = [InlineKeyboardButton(b.label, callback_data=b.data) for b in buttons]
    return InlineKeyboardMarkup([keys[i : i + ROW] for i in range(0, len(keys), ROW)])


def mention_entities(notice: Notice) -> list[MessageEntity] | None:
    """A text mention of the person whose name is in the text (works without a username)."""
    if notice.mention is None:
        return None
    user_id, name = notice.mention
    at = notice.text.find(name)
    if at < 0:
        return None
    # Telegram counts offsets in UTF-16 code units.
    offset = len(notice.text[:at].encode("utf-16-le")) // 2
    length = len(name.encode("utf-16-le")) // 2
    user = User(id=user_id, first_name=name, is_bot=False)
    return [MessageEntity(MessageEntity.TEXT_MENTION, offset, length, user=user)]


class TelegramNotifier:
    """Delivers one notice; failures are logged with their reason and reported as False.

    Rate limits, retries and a durable outbox come with issue #7; until then a message that
    cannot be sent is logged and the ticket's deadlines still run (a plan the resident never
    saw breaches the reply stage and the assignee is asked to call).
    """

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def deliver(self, notice: Notice) -> Delivery:
        """Send it: sent, refused for good (Forbidden), or failed this time."""
        reply = (
            ReplyParameters(notice.reply_to, allow_sending_without_reply=True)
            if notice.reply_to is not None
            else None
        )
        try:
            await self._bot.send_message(
                notice.chat_id,
                notice.text,
                reply_parameters=reply,
                reply_markup=keyboard(notice.buttons),
                entities=mention_entities(notice),
            )
        except (Forbidden, BadRequest) as exc:
            # A staff member who never opened a private chat with the bot cannot be messaged;
            # "chat not found" is as permanent. Other bad requests are our own fault.
            permanent = isinstance(exc, Forbidden) or "chat not found" in exc.message.lower()
            if not permanent:
                logger.error(
                    "ticket #%s: %s refused as malformed: %s", notice.ticket_id, notice.kind, exc
                )
                return Delivery.FAILED
            logger.warning(
                "ticket #%s: %s to %s not delivered: %s (has the person sent /start?)",
                notice.ticket_id,
                notice.kind,
                notice.chat_id,
                exc.message,
            )
            return Delivery.REFUSED
        except (RetryAfter, NetworkError, TelegramError) as exc:
            logger.warning(
                "ticket #%s: %s to %s not delivered: %s",
                notice.ticket_id,
                notice.kind,
                notice.chat_id,
                exc,
            )
            return Delivery.FAILED
        return Delivery.SENT
