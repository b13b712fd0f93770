"""A bare python-telegram-bot echo bot: the yardstick for benchmarks/load.py.

    python -m benchmarks.echo_bot TOKEN BASE_URL

Replies to every text message with its text, as a reply; nothing else. Polling settings are
the same as the real bot's (handlers/runtime.py), so the difference measured is our work.
It runs on asyncio's own event loop and python-telegram-bot's default HTTP transport
(httpx), as a bare bot would; ``ECHO_UVLOOP=1`` runs it on uvloop like the bot, and
``ECHO_AIOHTTP=1`` on the bot's aiohttp transport (handlers/telegram/transport.py), to see how
much of the gap each closes.
"""

from __future__ import annotations

import asyncio
import os
import sys

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters
from telegram.request import BaseRequest, HTTPXRequest


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say it back."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text, do_quote=True)


def main() -> None:
    """Poll until killed."""
    token, base_url = sys.argv[1], sys.argv[2]
    transport: type[BaseRequest] = HTTPXRequest
    if os.environ.get("ECHO_AIOHTTP") == "1":  # the bot's transport, for comparison
        from handlers.telegram.transport import AiohttpRequest  # noqa: PLC0415

        transport = AiohttpRequest
    application = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        .request(transport(connection_pool_size=64))  # type: ignore[call-arg]
        .get_updates_request(transport(connection_pool_size=1))  # type: ignore[call-arg]
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    if os.environ.get("ECHO_UVLOOP") == "1":  # the same event loop as the bot, for comparison
        import uvloop  # noqa: PLC0415

        asyncio.set_event_loop(uvloop.new_event_loop())
    application.run_polling(poll_interval=0.0, timeout=10, allowed_updates=[Update.MESSAGE])


if __name__ == "__main__":
    main()
