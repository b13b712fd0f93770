"""Early checks that decide whether an update reaches the audience handlers at all."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, ContextTypes

from handlers.telegram.deps import SEEN_UNKNOWN_KEY, core

logger = logging.getLogger(__name__)
GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)


async def prefilter(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Drop updates from bots and from groups the community file does not list."""
    user = update.effective_user
    chat = update.effective_chat
    if user is not None and user.is_bot:
        logger.debug("ignoring update %s from bot %s", update.update_id, user.id)
        raise ApplicationHandlerStop
    in_group = chat is not None and chat.type in GROUP_TYPES
    if in_group and chat is not None and core(context).directory.current.group(chat.id) is None:
        seen: set[int] = context.bot_data.setdefault(SEEN_UNKNOWN_KEY, set())
        if chat.id not in seen:
            seen.add(chat.id)
            logger.warning(
                "message from group %s (%r) which is not in the community file; "
                "ignoring it and any later messages from it",
                chat.id,
                chat.title,
            )
        raise ApplicationHandlerStop
