"""Webhook mode: Telegram posts each update to us instead of the bot polling for it.

Telegram counts an update as delivered when we answer 200, and posts it again otherwise. So
the update is checked, then kept in the inbox (one transaction) and only then answered 200
and queued for handling: a crash after the answer loses nothing (it is replayed on start),
and a second post of the same update, to this process or another behind the same proxy, is
answered 200 and dropped.

Refused, each logged: a post without the right ``X-Telegram-Bot-Api-Secret-Token`` (403,
compared in constant time), a body over :data:`MAX_UPDATE_BYTES` (413), and anything that is
not one JSON object with a positive integer ``update_id`` (400). While the bot is starting or
stopping the answer is 503, so Telegram tries again later.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from telegram import Update
from telegram.ext import Application

from bot.services.inbox import Inbox

logger = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# A text message is at most 4,096 characters; with entities, a quoted reply and a photo's
# sizes an update stays far below this.
MAX_UPDATE_BYTES = 256 * 1024


class BadUpdate(ValueError):
    """The body is not an update we can handle; the message says why (logged)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


def parse_update(body: bytes) -> dict[str, Any]:
    """The update as a dict, or :class:`BadUpdate`."""
    if len(body) > MAX_UPDATE_BYTES:
        raise BadUpdate("update too large", 413)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadUpdate(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadUpdate(f"expected a JSON object, got {type(data).__name__}")
    update_id = data.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int) or update_id <= 0:
        raise BadUpdate("update_id missing or not a positive integer")
    return data


class WebhookEndpoint:
    """The aiohttp handler; ``application`` is set once python-telegram-bot has started."""

    def __init__(self, secret: str, inbox: Inbox) -> None:
        self._secret = secret.encode()
        self._inbox = inbox
        self.application: Application | None = None

    def _refuse(self, status: int, reason: str, request: web.Request) -> web.Response:
        logger.warning("webhook: refused %s from %s: %s", status, request.remote, reason)
        return web.json_response({"ok": False, "description": reason}, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        """Check, keep, answer, queue."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return self._refuse(403, "wrong or missing secret token", request)
        application = self.application
        if application is None or not application.running:
            return web.json_response({"ok": False, "description": "starting"}, status=503)
        try:
            data, update = await self._read(request, application)
        except BadUpdate as exc:
            return self._refuse(exc.status, str(exc), request)
        try:
            fresh = await self._inbox.keep_many([(update.update_id, data)])
        except IntegrityError:  # another process kept the same update this very moment
            fresh = set()
        except Exception:
            logger.exception("webhook: could not keep update %s; Telegram will retry", data)
            return web.json_response({"ok": False, "description": "try again"}, status=500)
        if update.update_id in fresh:
            await application.update_queue.put(update)
        else:
            logger.info("update %s arrived again; not handled twice", update.update_id)
        return web.json_response({"ok": True})

    @staticmethod
    async def _read(
        request: web.Request, application: Application
    ) -> tuple[dict[str, Any], Update]:
        if (request.content_length or 0) > MAX_UPDATE_BYTES:
            raise BadUpdate("update too large", 413)
        data = parse_update(await request.content.read(MAX_UPDATE_BYTES + 1))
        try:
            update = Update.de_json(data, application.bot)
        except Exception as exc:  # python-telegram-bot could not read it as an update
            raise BadUpdate(f"not an update: {type(exc).__name__}: {exc}") from None
        if update is None:
            raise BadUpdate("not an update")
        return data, update
