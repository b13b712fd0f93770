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

from handlers.telegram import prefilters, residents, workers

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
    application.add_handler(CallbackQueryHandler(workers.on_button, pattern=r"^t:"))
    application.add_handler(CallbackQueryHandler(residents.on_rating, pattern=r"^r:"))
    application.add_handler(CommandHandler("help", residents.on_help))
    application.add_handler(CommandHandler("status", residents.on_status))
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE
            & filters.ChatType.GROUPS
            & (filters.TEXT | filters.CAPTION)
            & ~filters.COMMAND,
            residents.on_group_message,
        )
    )
    application.add_error_handler(on_error)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log every unhandled error with the update that caused it; never re-raise."""
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("error while handling update %s", update_id, exc_info=context.error)
