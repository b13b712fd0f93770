"""Residents: messages in their groups, /start and /help in private chat."""

from __future__ import annotations

import contextlib
import logging
import re

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.domain import IllegalTransition, NotAllowed, Rating, TicketNotFound
from bot.services.intake import IncomingMessage, Outcome
from bot.services.tickets import resident_actor
from bot.texts import residents as texts
from handlers.telegram.deps import core

logger = logging.getLogger(__name__)
TICKET_NUMBER = re.compile(r"#(\d{1,12})")


async def on_group_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Classify a group message and answer a request with its ticket number."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    text = message.text or message.caption or ""
    replied = message.reply_to_message
    if (
        replied is not None
        and replied.from_user is not None
        and replied.from_user.id == context.bot.id
    ):
        # A reply to the bot's message about a ticket: "不用了", "进度?".
        number = TICKET_NUMBER.search(replied.text or "")
        if number is not None:
            answer = await core(context).tickets.resident_reply(
                message.chat_id, user.id, int(number.group(1)), text
            )
            if answer is not None:
                await message.reply_text(answer, do_quote=True)
                return
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


async def on_rating(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """满意 / 基本满意 / 不满意 under a resolved ticket: r:<ticket>:<rating>."""
    query = update.callback_query
    if query is None:
        return
    parts = (query.data or "").split(":")
    ratings = {r.value: r for r in Rating}
    if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ratings:
        logger.warning("refused malformed rating data %r from %s", query.data, query.from_user.id)
        await query.answer("无法识别的操作")
        return
    ticket_id = int(parts[1])
    try:
        await core(context).tickets.rate(
            ticket_id, resident_actor(query.from_user.id), ratings[parts[2]]
        )
    except NotAllowed:
        logger.info("rating of #%d by %s refused: not the reporter", ticket_id, query.from_user.id)
        await query.answer(texts.ONLY_REPORTER, show_alert=True)
        return
    except (IllegalTransition, TicketNotFound):
        await query.answer(texts.ALREADY_RATED)
        return
    await query.answer("已收到您的评价")
    # The buttons have done their job; leave the message without them.
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(None)


async def on_status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/status: the sender's tickets that are still open or waiting for a rating."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    await message.reply_text(await core(context).tickets.resident_status(user.id))
