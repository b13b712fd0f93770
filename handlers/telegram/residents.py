"""Residents: messages in their groups, /start and /help in private chat."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.services.intake import IncomingMessage, Outcome
from bot.texts import residents as texts
from handlers.telegram.deps import core

logger = logging.getLogger(__name__)


async def on_group_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Classify a group message and answer a request with its ticket number."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    text = message.text or message.caption or ""
    result = await core(context).intake.receive_group_message(
        IncomingMessage(
            chat_id=message.chat_id,
            message_id=message.message_id,
            sender_id=user.id,
            sender_name=user.full_name,
            text=text,
            sent_at=message.date,
        )
    )
    if result.outcome is Outcome.OPENED and result.reply:
        await message.reply_text(result.reply, do_quote=True)
        # The resident hears first; then the assignee (and, if urgent, the community).
        await core(context).tickets.send(list(result.notices))


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain what the bot does."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(texts.PRIVATE_WELCOME)


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Short usage notes."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(texts.HELP)
