"""HTTP surface of the sandbox: the Bot API for the bot, a JSON API and a page for people."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.directory import Directory
from sandbox.world import BotApiError, User, World

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SANDBOX_TOKEN = "7000000001:SANDBOX-local-token"
MAX_BODY = 1024 * 1024
_dumps = functools.partial(json.dumps, ensure_ascii=False)
_INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "reply_to_message_id", "user_id"}
_FLOAT_PARAMS = {"timeout"}
_JSON_PARAMS = {"reply_markup", "reply_parameters", "allowed_updates", "entities", "commands"}

ROLE_LABELS = {
    "grid_worker": "网格员",
    "property": "物业管家",
    "community": "社区",
    "street": "街道",
    "admin": "管理员",
}
# People to play in the page. Staff come from the community file; residents are made up.
DEMO_RESIDENTS = (
    (5000001, "张阿姨"),
    (5000002, "李大爷"),
    (5000003, "陈女士"),
    (5000004, "赵先生"),
)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result}, dumps=_dumps)


def _error(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )


async def _params(request: web.Request) -> dict[str, Any]:
    """Bot API parameters from the query string, a form or a JSON body, typed as Telegram does."""
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise BotApiError(400, "Bad Request: parameters must be a JSON object")
            raw.update(body)
        else:
            form = await request.post()
            raw.update({k: v for k, v in form.items() if isinstance(v, str)})
    typed: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            if key in _INT_PARAMS and isinstance(value, str):
                typed[key] = int(value)
            elif key in _FLOAT_PARAMS and isinstance(value, str):
                typed[key] = float(value)
            elif key in _JSON_PARAMS and isinstance(value, str):
                typed[key] = json.loads(value)
            else:
                typed[key] = value
        except ValueError:
            raise BotApiError(400, f"Bad Request: invalid {key}") from None
    return typed


def _require(params: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in params:
            raise BotApiError(400, f"Bad Request: {name} is required")


def _entities(params: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``entities`` as sent (a JSON list of MessageEntity objects); anything else is refused."""
    raw = params.get("entities")
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BotApiError(400, "Bad Request: can't parse entities") from None
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise BotApiError(400, "Bad Request: can't parse entities")
    return raw


def _reply_to(params: dict[str, Any]) -> tuple[int | None, bool]:
    """The message replied to, and whether a missing one may be ignored (as Telegram's
    ``allow_sending_without_reply`` says)."""
    reply_parameters = params.get("reply_parameters")
    if isinstance(reply_parameters, dict) and "message_id" in reply_parameters:
        lenient = bool(reply_parameters.get("allow_sending_without_reply"))
        return int(reply_parameters["message_id"]), lenient
    value = params.get("reply_to_message_id")
    lenient = str(params.get("allow_sending_without_reply", "")).lower() == "true"
    return (int(value) if value is not None else None), lenient


@dataclass
class Faults:
    """Trouble the sandbox can make on ``sendMessage``, for tests of the bot's sender: a 429
    with ``retry_after``, a 502, or a stall longer than the client waits (the message is
    then not delivered). Every message that is accepted is logged with its time, so a test
    can check the limits the way Telegram counts them."""

    flood: float = 0.0  # share of sends answered 429
    bad_gateway: float = 0.0  # … answered 502
    stall: float = 0.0  # … that hang for ``stall_seconds`` and fail
    retry_after: int = 1
    stall_seconds: float = 6.0
    seed: int = 0
    answered: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def maybe_fail(self) -> None:
        """Raise (or stall) as the dice say; count what was done."""
        roll = self._rng.random()
        if roll < self.flood:
            self.answered["429"] = self.answered.get("429", 0) + 1
            raise FloodError(self.retry_after)
        roll -= self.flood
        if roll < self.bad_gateway:
            self.answered["502"] = self.answered.get("502", 0) + 1
            raise BotApiError(502, "Bad Gateway")
        roll -= self.bad_gateway
        if roll < self.stall:
            self.answered["stall"] = self.answered.get("stall", 0) + 1
            await asyncio.sleep(self.stall_seconds)
            raise BotApiError(504, "Gateway Timeout")


class FloodError(BotApiError):
    """429 Too Many Requests, with Telegram's retry_after."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, f"Too Many Requests: retry after {retry_after}")
        self.retry_after = retry_after


@dataclass
class Webhook:
    """Where the sandbox posts updates (set by ``setWebhook``), and what came back."""

    url: str
    secret: str | None
    task: asyncio.Task[None] | None = None
    answers: dict[int, int] = field(default_factory=dict)  # status -> count

    async def post(self, http: aiohttp.ClientSession, update: dict[str, Any]) -> int:
        """One attempt; the HTTP status, or 0 when the bot could not be reached."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.secret} if self.secret else {}
        try:
            async with http.post(self.url, json=update, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.info("sandbox: webhook %s unreachable: %s", self.url, exc)
            status = 0
        self.answers[status] = self.answers.get(status, 0) + 1
        return status


class SandboxServer:
    """Routes for the Bot API (``/bot<token>/<method>``), the page API and the page itself."""

    def __init__(self, world: World, token: str = SANDBOX_TOKEN) -> None:
        self.world = world
        self.token = token
        self.faults: Faults | None = None
        self.webhook: Webhook | None = None

    @classmethod
    def with_people(
        cls,
        groups: Iterable[tuple[int, str]],
        staff: Iterable[tuple[int, str, str]],
        token: str = SANDBOX_TOKEN,
    ) -> SandboxServer:
        """A sandbox with the given groups (chat id, title), staff (id, name, role) and the
        made-up residents."""
        world = World(
            bot=User(
                id=int(token.split(":", 1)[0]),
                first_name="网格助手",
                is_bot=True,
                username="grid5321_bot",
                kind="bot",
            )
        )
        for chat_id, title in groups:
            world.add_group(chat_id, title)
        for user_id, name in DEMO_RESIDENTS:
            world.add_user(User(id=user_id, first_name=name, kind="resident", label="居民"))
        for user_id, name, role in staff:
            world.add_user(
                User(id=user_id, first_name=name, kind="staff", label=ROLE_LABELS.get(role, role))
            )
        return cls(world, token)

    @classmethod
    def for_directory(
        cls, directory: Directory, token: str = SANDBOX_TOKEN, *, staff_started: bool = False
    ) -> SandboxServer:
        """A sandbox with the groups and staff of a community file. ``staff_started``: as if
        every staff member had pressed Start already, so private pings reach them at once."""
        server = cls.with_people(
            groups=[(g.chat_id, g.name) for g in directory.groups],
            staff=[(m.telegram_id, m.name, m.role.value) for m in directory.staff],
            token=token,
        )
        if staff_started:
            for member in directory.staff:
                server.world.open_private(member.telegram_id)
        return server

    def add_routes(self, app: web.Application) -> None:
        """Attach the sandbox to an aiohttp application."""
        app.router.add_route("*", "/bot{token}/{method}", self.bot_api)
        app.router.add_get("/", self.page)
        app.router.add_get("/sandbox/api/world", self.api_world)
        app.router.add_get("/sandbox/api/poll", self.api_poll)
        app.router.add_post("/sandbox/api/send", self.api_send)
        app.router.add_post("/sandbox/api/press", self.api_press)
        app.router.add_static("/sandbox/static", STATIC)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.world.close()
        await self._stop_webhook()

    # -- Bot API --------------------------------------------------------------------------

    async def bot_api(self, request: web.Request) -> web.Response:
        """Dispatch one Bot API call the way Telegram's server answers it."""
        method = request.match_info["method"].lower()
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "Request Entity Too Large")
        try:
            params = await _params(request)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                return _error(404, "Not Found: method not found")
            result = await handler(params)
        except FloodError as exc:
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": exc.description,
                    "parameters": {"retry_after": exc.retry_after},
                },
                status=429,
            )
        except BotApiError as exc:
            logger.info("sandbox: %s refused: %s", method, exc.description)
            return _error(exc.code, exc.description)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "Bad Request: can't parse request")
        return _ok(result)

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return {
            **self.world.bot.as_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active;"
                " use deleteWebhook to delete the webhook first",
            )
        return await self.world.get_updates(
            offset=int(params.get("offset", 0)),
            limit=int(params.get("limit", 100)),
            wait_seconds=min(float(params.get("timeout", 0)), 50.0),
        )

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        _require(params, "chat_id", "text")
        if self.faults is not None:
            await self.faults.maybe_fail()
        reply_to, lenient = _reply_to(params)
        return await self.world.bot_sends(
            chat_id=params["chat_id"],
            text=str(params["text"]),
            reply_to=reply_to,
            allow_sending_without_reply=lenient,
            reply_markup=params.get("reply_markup"),
            entities=_entities(params),
        )

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        _require(params, "chat_id", "message_id", "text")
        return await self.world.bot_edits(
            params["chat_id"], params["message_id"], str(params["text"]), params.get("reply_markup")
        )

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        _require(params, "chat_id", "message_id")
        return await self.world.bot_edits(
            params["chat_id"], params["message_id"], None, params.get("reply_markup")
        )

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        _require(params, "callback_query_id")
        callback_id = str(params["callback_query_id"])
        await self.world.bot_answers_callback(callback_id, str(params.get("text", "")))
        return True

    async def _m_getchat(self, params: dict[str, Any]) -> Any:
        _require(params, "chat_id")
        chat = self.world.chats.get(params["chat_id"])
        if chat is None:
            raise BotApiError(400, "Bad Request: chat not found")
        return chat.as_api(self.world.users)

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": self.world.pending_updates(),
        }

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        _require(params, "url")
        url, secret = str(params["url"]), params.get("secret_token")
        if not url:  # Telegram: an empty URL removes the webhook
            await self._stop_webhook()
            return True
        if not url.startswith(("http://", "https://")):
            raise BotApiError(400, "Bad Request: bad webhook: invalid URL")
        await self._stop_webhook()
        self.webhook = Webhook(url, str(secret) if secret else None)
        self.webhook.task = asyncio.create_task(self._push(self.webhook), name="sandbox-webhook")
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        await self._stop_webhook()
        return True

    async def _stop_webhook(self) -> None:
        hook, self.webhook = self.webhook, None
        if hook is not None and hook.task is not None:
            hook.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hook.task

    async def _push(self, hook: Webhook) -> None:
        """Post each update to the webhook, in order, until it answers 200 (as Telegram
        does, retrying with a growing pause); stop when the webhook is removed."""
        offset = 0
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self.world.closed:
                updates = await self.world.get_updates(offset, 100, 10.0)
                for update in updates:
                    pause = 0.1
                    while not self.world.closed:
                        status = await hook.post(http, update)
                        if status == 200:
                            break
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, 5.0)
                    offset = update["update_id"] + 1

    async def _true(self, params: dict[str, Any]) -> Any:
        return True

    _m_sendchataction = _true
    _m_setmycommands = _m_deletemycommands = _m_close = _m_logout = _true

    async def _m_getmycommands(self, params: dict[str, Any]) -> Any:
        return []

    # -- page API -------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.FileResponse:
        """The web chat page."""
        return web.FileResponse(STATIC / "index.html")

    async def api_world(self, request: web.Request) -> web.Response:
        """Who can be played and which groups exist."""
        world = self.world
        return web.json_response(
            {
                "bot": world.bot.as_api(),
                "users": [
                    {"id": u.id, "name": u.first_name, "kind": u.kind, "label": u.label}
                    for u in world.users.values()
                ],
                "groups": [
                    {"id": c.id, "title": c.title}
                    for c in world.chats.values()
                    if c.type != "private"
                ],
                "version": world.version,
            },
            dumps=_dumps,
        )

    async def api_poll(self, request: web.Request) -> web.Response:
        """Long-poll for changes after ``since``."""
        try:
            since = int(request.query.get("since", "0"))
            timeout = min(float(request.query.get("timeout", "25")), 55.0)
        except ValueError:
            return web.json_response({"error": "since and timeout must be numbers"}, status=400)
        return web.json_response(await self.world.wait_changes(since, timeout), dumps=_dumps)

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BotApiError(400, "body must be JSON") from None
        if not isinstance(body, dict):
            raise BotApiError(400, "body must be a JSON object")
        return body

    async def api_send(self, request: web.Request) -> web.Response:
        """A person types a message."""
        try:
            body = await self._json_body(request)
            message = await self.world.user_says(
                int(body["user_id"]),
                int(body["chat_id"]),
                str(body.get("text", "")),
                int(body["reply_to"]) if body.get("reply_to") else None,
            )
        except (KeyError, ValueError, TypeError):
            return web.json_response({"error": "user_id, chat_id and text are needed"}, status=400)
        except BotApiError as exc:
            return web.json_response({"error": exc.description}, status=exc.code)
        return web.json_response({"ok": True, "message_id": message.message_id})

    async def api_press(self, request: web.Request) -> web.Response:
        """A person presses an inline button."""
        try:
            body = await self._json_body(request)
            user_id = int(body["user_id"])
            callback_id = await self.world.user_presses(
                user_id, int(body["chat_id"]), int(body["message_id"]), str(body["data"])
            )
        except (KeyError, ValueError, TypeError):
            return web.json_response(
                {"error": "user_id, chat_id, message_id and data are needed"}, status=400
            )
        except BotApiError as exc:
            return web.json_response({"error": exc.description}, status=exc.code)
        return web.json_response({"ok": True, "callback_id": callback_id})
