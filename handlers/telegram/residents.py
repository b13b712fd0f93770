"""Residents: messages in their groups, /start and /help in private chat."""

from __future__ import annotations

import contextlib
import logging
import re

from telegram import Message, Update, User
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.domain import Button, Home, IllegalTransition, NotAllowed, Rating, TicketNotFound
from bot.services.intake import IncomingMessage, Outcome
from bot.services.tickets import resident_actor
from bot.texts import residents as texts
from handlers.telegram import workers
from handlers.telegram.deps import core
from handlers.telegram.notifier import keyboard

logger = logging.getLogger(__name__)
TICKET_NUMBER = re.compile(r"#(\d{1,12})")


async def on_group_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Classify a group message and answer a request with its ticket number."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    text = message.text or message.caption or ""
    if await _reply_about_ticket(update, context, text):
        return
    # The reply and the staff pings are queued with the ticket; the sender delivers them.
    await core(context).intake.receive_group_message(_incoming(message, user, text))


def _incoming(message: Message, user: User, text: str) -> IncomingMessage:
    """What the core needs of a resident's Telegram message (an edit dated by its edit)."""
    return IncomingMessage(
        chat_id=message.chat_id,
        message_id=message.message_id,
        sender_id=user.id,
        sender_name=user.full_name,
        text=text,
        sent_at=message.edit_date or message.date,
    )


async def on_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A resident edited a message: a ticket still new takes the new text (never a second
    ticket); anything else is left as it was."""
    message = update.edited_message
    user = update.effective_user
    if message is None or user is None:
        return
    text = message.text or message.caption or ""
    if not text.strip():
        return
    await core(context).intake.receive_edit(_incoming(message, user, text))


async def _reply_about_ticket(
    update: Update, context: ContextTypes.DEFAULT_TYPE, text: str
) -> bool:
    """A reply to the bot's message about a ticket ("不用了", "进度?"); True if answered."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return False
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return False
    number = TICKET_NUMBER.search(replied.text or "")
    if number is None:
        return False
    answer = await core(context).tickets.resident_reply(
        message.chat_id, user.id, int(number.group(1)), text
    )
    if answer is None:
        return False
    await message.reply_text(answer, do_quote=True)
    return True


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Private /start: staff are reachable from now on; residents hear what the bot does and,
    the first time, are asked where they live."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or await workers.on_staff_start(update, context):
        return
    await message.reply_text(texts.PRIVATE_WELCOME)
    home = await core(context).homes.get(user.id)
    if not home.known:
        await _ask_home(update, context)


async def on_home(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/home: tell the bot again where you live."""
    user = update.effective_user
    if user is None:
        return
    await core(context).homes.forget(user.id)
    await _ask_home(update, context)


async def _ask_home(
    update: Update, context: ContextTypes.DEFAULT_TYPE, community: str = ""
) -> None:
    """Which community (skipped when there is one), then which building, as buttons."""
    message = update.effective_message
    if message is None:
        return
    homes = core(context).homes
    communities = homes.communities()
    if not community and len(communities) == 1:
        community = communities[0].id
    if not community:
        buttons = tuple(Button(c.name, f"h:{c.id}") for c in communities)
        await message.reply_text(texts.ASK_COMMUNITY, reply_markup=keyboard(buttons))
        return
    buildings = homes.buildings(community)
    buttons = tuple(Button(f"{b}号楼", f"h:{community}:{b}") for b in buildings)
    name = homes.community(community).name
    await message.reply_text(texts.ask_building(name), reply_markup=keyboard(buttons))


async def on_home_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """h:<community> or h:<community>:<building>: the answers to the home questions."""
    query = update.callback_query
    if query is None:
        return
    parts = (query.data or "").split(":")
    homes = core(context).homes
    user_id = query.from_user.id
    try:
        if len(parts) == 2:
            await homes.choose_community(user_id, parts[1])
            await query.answer()
            await _ask_home(update, context, community=parts[1])
            return
        if len(parts) != 3:
            raise KeyError(query.data)
        home = await homes.choose_building(user_id, parts[1], parts[2])
    except KeyError:
        logger.warning("refused home button %r from %s", query.data, user_id)
        await query.answer("无法识别的选项，请重新发送 /home")
        return
    await query.answer()
    name = homes.community(parts[1]).name
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(None)
    await context.bot.send_message(user_id, texts.home_saved(name, parts[2]))
    if home.pending_text and home.pending_message_id is not None:
        # The report they wrote first, kept while we asked.
        await homes.clear_pending(user_id)
        pending = IncomingMessage(
            chat_id=user_id,
            message_id=home.pending_message_id,
            sender_id=user_id,
            sender_name=query.from_user.full_name,
            text=home.pending_text,
            sent_at=core(context).clock.now(),
        )
        await _private_report(context, pending, home)


async def on_private_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A private message: the answer to a staff question, or a resident's report."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    if await workers.on_staff_text(update, context):
        return
    text = message.text or message.caption or ""
    if await _reply_about_ticket(update, context, text):
        return
    homes = core(context).homes
    home = await homes.get(user.id)
    if not home.known:
        await homes.keep_pending(user.id, message.message_id, text)
        await message.reply_text(texts.ASK_HOME_FIRST)
        await _ask_home(update, context, community=home.community_id or "")
        return
    await _private_report(context, _incoming(message, user, text), home)


async def _private_report(
    context: ContextTypes.DEFAULT_TYPE, incoming: IncomingMessage, home: Home
) -> None:
    """Take a private report like a group one; every answer stays in the private chat."""
    result = await core(context).intake.receive_private_message(incoming, home)
    if result.outcome is Outcome.NOT_REQUEST:
        await context.bot.send_message(incoming.chat_id, texts.PRIVATE_NOT_REQUEST)
    # Otherwise the answer and the pings were queued with the ticket.


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


async def on_settled(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """已解决，谢谢 under a known answer: x:<ticket>; only the reporter may press it."""
    query = update.callback_query
    if query is None:
        return
    parts = (query.data or "").split(":")
    if len(parts) != 2 or not parts[1].isdigit() or len(parts[1]) > 18:
        logger.warning("refused malformed settle data %r from %s", query.data, query.from_user.id)
        await query.answer("无法识别的操作")
        return
    ticket_id = int(parts[1])
    the_core = core(context)
    try:
        await the_core.tickets.settled_by_answer(ticket_id, resident_actor(query.from_user.id))
    except NotAllowed:
        logger.info("settle of #%d by %s refused", ticket_id, query.from_user.id)
        await query.answer(texts.SETTLED_NOT_YOURS, show_alert=True)
        return
    except (IllegalTransition, TicketNotFound):
        await query.answer(texts.SETTLED_ALREADY)
        return
    await query.answer(texts.SETTLED.format(ticket_id=ticket_id))
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(None)
    if query.message is not None:
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(
                query.message.chat.id, texts.SETTLED.format(ticket_id=ticket_id)
            )


async def on_status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/status: the sender's tickets that are still open or waiting for a rating."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    public = message.chat.type != "private"
    await message.reply_text(await core(context).tickets.resident_status(user.id, public=public))
