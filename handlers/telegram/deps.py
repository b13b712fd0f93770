"""Access to the core from handler callbacks."""

from __future__ import annotations

from typing import cast

from telegram.ext import ContextTypes

from bot.core import Core

CORE_KEY = "core"
SEEN_UNKNOWN_KEY = "unknown_chats_logged"


def core(context: ContextTypes.DEFAULT_TYPE) -> Core:
    """The core the runtime put into ``bot_data``."""
    return cast(Core, context.bot_data[CORE_KEY])
