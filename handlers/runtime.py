"""The composition root: builds storage, the core, the web server and the Telegram bot.

Kept out of ``bot/`` so the core never imports ``telegram`` or ``aiohttp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

import nlp
from bot.clock import SystemClock
from bot.config import load_community_file
from bot.core import Core, build_core
from bot.domain import DISTRICT
from bot.ports import Clock
from bot.services.ratelimit import RateLimits
from bot.settings import Settings
from handlers import telegram as telegram_handlers
from handlers import web as admin_web
from handlers.telegram.deps import CORE_KEY
from handlers.telegram.inbox import InboxApplication, KeepingBot, KeepingQueue
from handlers.telegram.notifier import TelegramNotifier
from handlers.telegram.transport import AiohttpRequest
from handlers.telegram.webhook import WebhookEndpoint
from handlers.web import ops
from sandbox.server import SANDBOX_TOKEN, SandboxServer
from storage.coordination import Coordination, coordination_for
from storage.db import concurrent_steps, create_engine, migrate, session_factory
from storage.uow import SqlUnitOfWorkFactory

logger = logging.getLogger(__name__)
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]


class StartupError(Exception):
    """Start-up cannot go on; the message names the setting to fix and fits on one line."""


@dataclass
class _Parts:
    engine: AsyncEngine
    core: Core
    application: Application
    web_runner: web.AppRunner | None
    sandbox: SandboxServer | None
    web_url: str | None
    coordination: Coordination


def _file_url(base_url: str) -> str:
    return base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class Runtime:
    """Everything one bot process runs; ``start`` and ``stop`` are safe to await from tests."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._parts: _Parts | None = None

    @property
    def core(self) -> Core:
        """The running core."""
        assert self._parts is not None, "runtime not started"
        return self._parts.core

    @property
    def sandbox(self) -> SandboxServer | None:
        """The sandbox, when running without a token."""
        return self._parts.sandbox if self._parts else None

    @property
    def web_url(self) -> str | None:
        """Where the web server listens, e.g. http://127.0.0.1:8080/."""
        return self._parts.web_url if self._parts else None

    async def start(self) -> None:
        """Migrate, seed, warm up the classifier, start the web server and the bot."""
        community_file = load_community_file(self.settings.COMMUNITY_CONFIG)
        engine = create_engine(self.settings.DATABASE_URL)
        try:
            await migrate(engine)
            limits = RateLimits(
                group_per_minute=self.settings.SEND_GROUP_PER_MINUTE,
                chat_per_second=self.settings.SEND_CHAT_PER_SECOND,
                global_per_second=self.settings.SEND_GLOBAL_PER_SECOND,
            )
            core = await build_core(
                SqlUnitOfWorkFactory(session_factory(engine)),
                community_file,
                self.clock,
                limits=limits,
            )
            core.scheduler.concurrency = concurrent_steps(engine)
        except (OperationalError, DBAPIError, OSError) as exc:
            await engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StartupError(f"setting DATABASE_URL: cannot use the database: {reason}") from None
        coordination = self._coordinate(core)
        try:
            await coordination.start()
        except (OSError, asyncpg.PostgresError) as exc:
            await engine.dispose()
            raise StartupError(f"setting DATABASE_URL: cannot coordinate: {exc}") from None
        # jieba's dictionaries take about a second to load: do it now, off the event loop,
        # so no resident's message waits for it.
        await asyncio.to_thread(nlp.warm_up)
        sandbox = self._sandbox(core) if self.settings.sandbox else None
        webhook = None
        if self.settings.WEBHOOK_SECRET is not None:
            webhook = WebhookEndpoint(self.settings.WEBHOOK_SECRET.get_secret_value(), core.inbox)
        web_runner, web_url = None, None
        try:
            web_runner, web_url = await self._start_web(core, sandbox, webhook)
            application = await self._start_telegram(
                core, web_url if sandbox else None, webhook, coordination
            )
        except BaseException:
            await coordination.stop()
            await self._cleanup(engine, web_runner)
            raise
        core.sender.notifier = TelegramNotifier(application.bot)
        # Whatever was queued before the stop goes out now (from the sending process; what a
        # crash caught mid-send was made pending again when this process took that role).
        core.sender.start()
        core.journal.start()
        core.scheduler.start()  # acts at once on whatever fell due while the bot was down
        core.weekly.start()
        core.figures.start()
        self._parts = _Parts(engine, core, application, web_runner, sandbox, web_url, coordination)
        logger.info(
            "web admin at %sadmin/ (set a password: python -m bot set-password ID)", web_url
        )
        if sandbox is not None:
            logger.info(
                "sandbox ready: open %s in a browser (no token, no internet needed)", web_url
            )
        else:
            logger.info(
                "bot @%s is %s %s",
                application.bot.username,
                "fed by a webhook from" if webhook else "polling",
                self.settings.TELEGRAM_API_BASE_URL or "Telegram",
            )

    def _coordinate(self, core: Core) -> Coordination:
        """Wire this process to the others on the same database (storage/coordination.py)."""
        coordination = coordination_for(self.settings.DATABASE_URL)
        core.inbox.owner = coordination.instance
        core.inbox.gone = coordination.dead
        core.sender.may_send = lambda: coordination.leading

        async def lead() -> None:
            await core.sender.resume()  # what the previous sender was sending goes again
            core.sender.wake()

        async def reload(scope: str) -> None:
            known = [c.id for c in core.directory.current.communities]
            await core.rules.reload(
                known if scope in (DISTRICT, "") else [scope] if scope in known else []
            )

        coordination.on_lead = lead
        coordination.on_signal = {
            "grid_outbox": lambda _payload: core.sender.wake(),
            "grid_timers": lambda _payload: core.scheduler.wake(),
            "grid_keywords": reload,
        }
        coordination.on_reconnect = lambda: reload("")
        return coordination

    @staticmethod
    def _sandbox(core: Core) -> SandboxServer:
        # The demo's staff have "started" the bot already, so pings reach them from the
        # first ticket; a real deployment needs each person to send /start once.
        return SandboxServer.for_directory(core.directory.current, staff_started=True)

    async def _start_web(
        self, core: Core, sandbox: SandboxServer | None, webhook: WebhookEndpoint | None
    ) -> tuple[web.AppRunner, str]:
        """The web admin under /admin, /healthz and /metrics, the webhook when one is set,
        and, without a token, the sandbox at /."""
        settings = self.settings
        app = web.Application(client_max_size=1024 * 1024)
        if webhook is not None and settings.webhook_path is not None:
            app.router.add_post(settings.webhook_path, webhook.handle)
        if sandbox is not None:
            sandbox.add_routes(app)
        admin_web.add_routes(app, core, secure_cookies=settings.WEB_SECURE_COOKIES)
        ops.add_routes(app, core)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.WEB_HOST, settings.WEB_PORT)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise StartupError(
                f"setting WEB_PORT: cannot listen on {settings.WEB_HOST}:{settings.WEB_PORT}:"
                f" {exc.strerror or exc}"
            ) from None
        port = runner.addresses[0][1]
        return runner, f"http://{_connect_host(settings.WEB_HOST)}:{port}/"

    async def _start_telegram(
        self,
        core: Core,
        sandbox_url: str | None,
        webhook: WebhookEndpoint | None,
        coordination: Coordination,
    ) -> Application:
        settings = self.settings
        base_url: str | None
        if sandbox_url is not None:
            token, base_url = SANDBOX_TOKEN, f"{sandbox_url}bot"
        else:
            assert settings.TELEGRAM_BOT_TOKEN is not None
            token = settings.TELEGRAM_BOT_TOKEN.get_secret_value()
            base_url = settings.TELEGRAM_API_BASE_URL
        # Our own request objects, so a failed start can close their HTTP clients.
        requests = (AiohttpRequest(connection_pool_size=64), AiohttpRequest(connection_pool_size=1))
        urls: dict[str, str] = {}
        if base_url:
            urls = {"base_url": base_url, "base_file_url": _file_url(base_url)}
        bot = KeepingBot(
            token,
            request=requests[0],
            get_updates_request=requests[1],
            inbox=core.inbox,
            **urls,
        )
        queue = KeepingQueue()
        queue.bot = bot
        builder = (
            Application.builder().application_class(InboxApplication).update_queue(queue).bot(bot)
        )
        application = builder.build()
        assert isinstance(application, InboxApplication)
        application.inbox = core.inbox
        application.metrics = core.metrics
        application.bot_data[CORE_KEY] = core
        telegram_handlers.register(application)
        try:
            await application.initialize()
        except InvalidToken:
            await asyncio.gather(*(r.shutdown() for r in requests))
            raise StartupError(
                "setting TELEGRAM_BOT_TOKEN: the Bot API server rejected the token"
            ) from None
        except TelegramError as exc:
            await asyncio.gather(*(r.shutdown() for r in requests))
            setting = "TELEGRAM_API_BASE_URL" if base_url else "TELEGRAM_BOT_TOKEN"
            where = base_url or "api.telegram.org"
            raise StartupError(
                f"setting {setting}: cannot reach the Bot API at {where}: {exc}"
            ) from None
        await application.start()

        # Fetched before a crash but never handled: handled now, before anything new; and
        # from now on, what another process kept and could not handle before it died.
        async def orphans() -> None:
            await queue.replay(await core.inbox.undone(), application)

        await orphans()
        coordination.on_orphans = orphans
        if webhook is not None:
            assert settings.WEBHOOK_URL is not None
            assert settings.WEBHOOK_SECRET is not None
            webhook.application = application
            await self._set_webhook(application, settings.WEBHOOK_URL, settings.WEBHOOK_SECRET)
            return application
        assert application.updater is not None
        await application.updater.start_polling(
            poll_interval=0.0, timeout=10, allowed_updates=ALLOWED_UPDATES
        )
        return application

    @staticmethod
    async def _set_webhook(application: Application, url: str, secret: SecretStr) -> None:
        """Tell Telegram where to post (every process of a deployment sets the same URL)."""
        try:
            await application.bot.set_webhook(
                url,
                secret_token=secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
                max_connections=40,
            )
        except TelegramError as exc:
            await application.stop()
            await application.shutdown()
            raise StartupError(f"setting WEBHOOK_URL: the Bot API refused it: {exc}") from None
        logger.info("webhook set: Telegram posts updates to %s", url)

    async def _cleanup(self, engine: AsyncEngine, web_runner: web.AppRunner | None) -> None:
        if web_runner is not None:
            await web_runner.cleanup()
        await engine.dispose()

    async def stop(self) -> None:
        """Stop polling, finish in-flight updates, close the web server and the database."""
        parts, self._parts = self._parts, None
        if parts is None:
            return
        application = parts.application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()  # updates being handled finish (and queue their replies)
        await parts.core.journal.stop()  # their log lines and done marks are written
        await parts.core.scheduler.stop()
        await parts.core.weekly.stop()
        await parts.core.figures.stop()
        await parts.core.sender.stop()  # sends in flight finish; the rest waits in the outbox
        await parts.coordination.stop()  # another process may send from now on
        await application.shutdown()
        await self._cleanup(parts.engine, parts.web_runner)
        logger.info("stopped")


async def run(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    runtime = Runtime(settings)
    await runtime.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runtime.stop()


async def set_admin_password(settings: Settings, staff_id: str, password: str) -> None:
    """Store an admin's web password (the database is migrated and seeded first)."""
    community_file = load_community_file(settings.COMMUNITY_CONFIG)
    engine = create_engine(settings.DATABASE_URL)
    try:
        await migrate(engine)
        core = await build_core(
            SqlUnitOfWorkFactory(session_factory(engine)), community_file, SystemClock()
        )
        await core.auth.set_password(staff_id, password)
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StartupError(f"setting DATABASE_URL: cannot use the database: {reason}") from None
    finally:
        await engine.dispose()
