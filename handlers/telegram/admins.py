"""Admins' commands in private chat: /kw, /classify and /report (also in a group)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.directory import StaffMember
from bot.domain import DISTRICT, Role
from bot.services.keywords import BadKeyword
from bot.services.reports import note_for
from bot.texts import admins as texts
from handlers.telegram.deps import core

logger = logging.getLogger(__name__)
MAX_COMMAND_TEXT = 2000


def _admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> StaffMember | None:
    user = update.effective_user
    member = core(context).directory.current.by_telegram(user.id) if user else None
    return member if member is not None and member.role == Role.ADMIN else None


async def on_kw(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/kw list|add|del: the district-wide routing words, changed live."""
    message = update.effective_message
    if message is None:
        return
    member = _admin(update, context)
    if member is None:
        logger.info("refused /kw from %s: not an admin", update.effective_user)
        await message.reply_text(texts.ADMINS_ONLY)
        return
    args = list(context.args or [])
    keywords = core(context).keywords
    action = args[0].lower() if args else ""
    try:
        if action == "list" and len(args) <= 2:
            kind = texts.KIND_BY_NAME.get(args[1]) if len(args) == 2 else None
            if len(args) == 2 and kind is None:
                raise BadKeyword("category", args[1])
            entries = await keywords.entries(DISTRICT, kind)
            await message.reply_text(texts.keyword_list(entries))
        elif action == "add" and len(args) in (3, 4):
            kind = texts.KIND_BY_NAME.get(args[1], args[1])
            weight = float(args[3]) if len(args) == 4 and _number(args[3]) else None
            if len(args) == 4 and weight is None:
                raise BadKeyword("weight", args[3])
            change = await keywords.put(
                f"staff:{member.id}", DISTRICT, kind, args[2], weight=weight, enabled=True
            )
            if change is None or change.after is None:
                await message.reply_text(texts.NOTHING_CHANGED)
                return
            added = change.before is None
            scope = texts.SCOPE_DISTRICT
            await message.reply_text(
                texts.keyword_saved(change.category, change.word, change.after[0], scope, added)
            )
        elif action == "del" and len(args) == 3:
            kind = texts.KIND_BY_NAME.get(args[1], args[1])
            change = await keywords.delete(f"staff:{member.id}", DISTRICT, kind, args[2])
            await message.reply_text(texts.keyword_deleted(change.category, change.word))
        else:
            await message.reply_text(texts.KW_USAGE)
    except BadKeyword as exc:
        await message.reply_text(texts.bad(exc.reason, exc.detail))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def on_classify(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/classify <text>: what the bot would make of a sentence, with its evidence."""
    message = update.effective_message
    if message is None:
        return
    if _admin(update, context) is None:
        await message.reply_text(texts.ADMINS_ONLY)
        return
    text = (message.text or "").partition(" ")[2].strip()[:MAX_COMMAND_TEXT]
    if not text:
        await message.reply_text(texts.CLASSIFY_USAGE)
        return
    the_core = core(context)
    community = the_core.directory.current.communities[0].id
    result = await the_core.keywords.try_text(community, text)
    await message.reply_text(texts.classification(result))


async def on_report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/report: in a group, the week's note for it (admins and staff only); in private, an
    admin's summary of the last seven days."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    the_core = core(context)
    member = the_core.directory.current.by_telegram(user.id)
    if message.chat.type != "private":
        if member is None:
            return  # residents' /report in a group: stay quiet rather than add noise
        figures = await the_core.figures.week_of_group(message.chat_id)
        if figures is not None:
            await message.reply_text(note_for(figures))
        return
    if member is None or member.role != Role.ADMIN:
        await message.reply_text(texts.ADMINS_ONLY)
        return
    start, end = the_core.figures.local_range(7)
    board = await the_core.figures.dashboard(start, end)
    await message.reply_text(texts.summary(board.total, days=7))
