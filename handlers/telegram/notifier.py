"""Sends the core's notices through the Bot API."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
    User,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    RetryAfter,
    TelegramError,
)

from bot.domain import Button, Delivery, DeliveryResult, Notice

logger = logging.getLogger(__name__)

# python-telegram-bot 22 warns on every RetryAfter (429) that ``retry_after`` will become a
# timedelta, unless the process opts in to that now; failure() below reads either form. The
# library reads the variable when the error is built, so setting it here is in time.
os.environ.setdefault("PTB_TIMEDELTA", "true")


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
    """Sends one notice and says what came of it; the sender (bot/services/outbox.py) decides
    what to do next (retry, wait for retry_after, give up)."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def deliver(self, notice: Notice) -> DeliveryResult:
        """Send it: sent, refused for good, rejected as malformed, or failed this time."""
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
        except TelegramError as exc:
            return failure(exc)
        return DeliveryResult(Delivery.SENT)


def failure(exc: TelegramError) -> DeliveryResult:
    """What a Bot API error means for the message: wait and retry, or give up."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return DeliveryResult(Delivery.FAILED, retry_after=seconds, reason=str(exc))
    if isinstance(exc, Forbidden):
        # Never pressed Start, blocked the bot, or the bot was removed from the group.
        return DeliveryResult(Delivery.REFUSED, reason=exc.message)
    if isinstance(exc, BadRequest):
        if "chat not found" in exc.message.lower():
            return DeliveryResult(Delivery.REFUSED, reason=exc.message)
        return DeliveryResult(Delivery.REJECTED, reason=exc.message)  # our own fault
    if isinstance(exc, ChatMigrated):
        reason = f"group became supergroup {exc.new_chat_id}; update the community file"
        return DeliveryResult(Delivery.REFUSED, reason=reason)
    # Timeouts, Telegram's 5xx, connection errors: try again later.
    return DeliveryResult(Delivery.FAILED, reason=f"{type(exc).__name__}: {exc}")
