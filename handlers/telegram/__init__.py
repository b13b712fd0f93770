"""Telegram handlers, registered in one ordered place."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from handlers.telegram import admins, prefilters, residents, workers

logger = logging.getLogger(__name__)

PREFILTER_GROUP = -1  # runs before everything; raises ApplicationHandlerStop to drop an update


def register(application: Application) -> None:
    """Add every handler, in order. Order matters only within a group; see comments."""
    application.add_handler(TypeHandler(Update, prefilters.prefilter), group=PREFILTER_GROUP)
    # Commands before plain text, so "/start" in a private chat is never read as a request.
    application.add_handler(CommandHandler("start", residents.on_start, filters.ChatType.PRIVATE))
    # Staff commands work in private chat only: ticket details do not belong in a group.
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("accept", workers.on_accept, private))
    application.add_handler(CommandHandler("plan", workers.on_plan, private))
    application.add_handler(CommandHandler("resolve", workers.on_resolve, private))
    application.add_handler(CommandHandler("escalate", workers.on_escalate, private))
    application.add_handler(CommandHandler("followup", workers.on_follow_up, private))
    application.add_handler(CommandHandler("staffhelp", workers.on_staff_help, private))
    application.add_handler(CommandHandler("mytickets", workers.on_my_tickets, private))
    application.add_handler(CommandHandler("ticket", workers.on_ticket, private))
    application.add_handler(CommandHandler("reassign", workers.on_reassign, private))
    application.add_handler(CommandHandler("relabel", workers.on_relabel, private))
    application.add_handler(CommandHandler("incident", workers.on_incident, private))
    application.add_handler(CommandHandler("offduty", workers.on_off_duty, private))
    application.add_handler(CommandHandler("onduty", workers.on_on_duty, private))
    application.add_handler(CommandHandler("cancel", workers.on_cancel, private))
    application.add_handler(CommandHandler("home", residents.on_home, private))
    application.add_handler(CommandHandler("kw", admins.on_kw, private))
    application.add_handler(CommandHandler("classify", admins.on_classify, private))
    # /report works in groups too (the week's note on demand).
    application.add_handler(CommandHandler("report", admins.on_report))
    # Buttons, by the first letter of their data: t ticket card, p plan tier, d 直接办结/上报,
    # a 转派 target, l 分类有误 choice, i 事件办结 (工单预警), r rating, h home questions,
    # x "已解决，谢谢" under a known answer.
    application.add_handler(CallbackQueryHandler(workers.on_button, pattern=r"^t:"))
    application.add_handler(CallbackQueryHandler(workers.on_tier, pattern=r"^p:"))
    application.add_handler(CallbackQueryHandler(workers.on_direct, pattern=r"^d:"))
    application.add_handler(CallbackQueryHandler(workers.on_reassign_to, pattern=r"^a:"))
    application.add_handler(CallbackQueryHandler(workers.on_relabel_to, pattern=r"^l:"))
    application.add_handler(CallbackQueryHandler(workers.on_incident_button, pattern=r"^i:"))
    application.add_handler(CallbackQueryHandler(residents.on_rating, pattern=r"^r:"))
    application.add_handler(CallbackQueryHandler(residents.on_home_button, pattern=r"^h:"))
    application.add_handler(CallbackQueryHandler(residents.on_settled, pattern=r"^x:"))
    application.add_handler(CallbackQueryHandler(on_unknown_button))
    application.add_handler(CommandHandler("help", residents.on_help))
    application.add_handler(CommandHandler("status", residents.on_status))
    text = filters.UpdateType.MESSAGE & (filters.TEXT | filters.CAPTION) & ~filters.COMMAND
    application.add_handler(
        MessageHandler(text & filters.ChatType.GROUPS, residents.on_group_message)
    )
    # An edited report updates its ticket while nobody has taken it yet (never a new one).
    edited = filters.UpdateType.EDITED_MESSAGE & (filters.TEXT | filters.CAPTION)
    application.add_handler(MessageHandler(edited, residents.on_edit))
    # Private text: a staff member answering the bot's question, or a resident's report.
    application.add_handler(MessageHandler(text & private, residents.on_private_message))
    application.add_error_handler(on_error)


async def on_unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Button data no handler knows (forged, or from an old version): refuse and log."""
    query = update.callback_query
    if query is not None:
        logger.warning("refused unknown button data %r from %s", query.data, query.from_user.id)
        await query.answer("无法识别的操作")


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log every unhandled error with the update that caused it; never re-raise."""
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("error while handling update %s", update_id, exc_info=context.error)
