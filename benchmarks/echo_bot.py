"""A bare python-telegram-bot echo bot: the yardstick for benchmarks/load.py.

    python -m benchmarks.echo_bot TOKEN BASE_URL

Replies to every text message with its text, as a reply; nothing else. Polling settings are
the same as the real bot's (handlers/runtime.py), so the difference measured is our work.
It runs on asyncio's own event loop, as a bare bot would; ``ECHO_UVLOOP=1`` runs it on
uvloop like the bot, to see how much of the gap the loop alone closes.
"""

from __future__ import annotations

import asyncio
import os
import sys

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say it back."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text, do_quote=True)


def main() -> None:
    """Poll until killed."""
    token, base_url = sys.argv[1], sys.argv[2]
    application = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        .request(HTTPXRequest(connection_pool_size=64))
        .get_updates_request(HTTPXRequest(connection_pool_size=1))
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    if os.environ.get("ECHO_UVLOOP") == "1":  # the same event loop as the bot, for comparison
        import uvloop  # noqa: PLC0415

        asyncio.set_event_loop(uvloop.new_event_loop())
    application.run_polling(poll_interval=0.0, timeout=10, allowed_updates=[Update.MESSAGE])


if __name__ == "__main__":
    main()
