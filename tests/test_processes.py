"""Two ``python -m bot`` processes on one PostgreSQL, fed by one webhook behind a proxy.

The test plays Telegram (the sandbox Bot API server, posting updates to the webhook URL) and
the reverse proxy (alternating between the two processes, and skipping one that is down).
Deadlines are seconds long here, so both processes' schedulers race for the same timers.

It checks that nothing is done twice and nothing is lost: one ticket per request; every
outbox row sent exactly once (the messages the Bot API received are exactly the rows marked
sent, none twice); no deadline acted on twice (no follow-up timer scheduled twice); a keyword
change made by another process reaches both within a second; and when the sending process
stops, the other takes over and answers the rest.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from bot.clock import SystemClock
from bot.config import load_community_file
from bot.core import build_core
from bot.settings import DEMO_COMMUNITY_FILE
from handlers.telegram.webhook import SECRET_HEADER
from sandbox.server import SandboxServer
from sandbox.world import Message, User, World
from storage.db import create_engine, migrate, session_factory
from storage.uow import SqlUnitOfWorkFactory
from tests.conftest import POSTGRES_SKIP, POSTGRES_URL, free_port, reset_postgres
from tests.helpers import serve, wait_until

pytestmark = pytest.mark.postgres

TOKEN = "456:TWO-processes"
SECRET = "two_processes_secret"
GROUPS = (-1001000000001, -1001000000002)
RESIDENTS = range(7000001, 7000041)
ROOT = Path(__file__).resolve().parents[1]
Popen = subprocess.Popen[bytes]
FAST_SLA = {
    "  understand: 5m": "  understand: 3s",
    "  plan: 5m": "  plan: 3s",
    "  reply: 5m": "  reply: 3s",
    "  resolve: {general: 30m, major: 2h, complex: 1d}": (
        "  resolve: {general: 12s, major: 15s, complex: 20s}"
    ),
}


@dataclass
class Proxy:
    """A reverse proxy in front of the processes: round robin, skipping one that is down."""

    backends: list[str] = field(default_factory=list)
    forwarded: Counter[str] = field(default_factory=Counter)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {SECRET_HEADER: request.headers.get(SECRET_HEADER, "")}
        headers["Content-Type"] = "application/json"
        start = next(self._turn)
        async with aiohttp.ClientSession() as http:
            for step in range(len(self.backends)):
                backend = self.backends[(start + step) % len(self.backends)]
                try:
                    async with http.post(backend, data=body, headers=headers) as response:
                        if response.status >= 500:
                            continue
                        self.forwarded[backend] += 1
                        return web.Response(status=response.status)
                except aiohttp.ClientError:
                    continue
        return web.Response(status=502)


def _fast_community_file(tmp_path: Path) -> Path:
    source = DEMO_COMMUNITY_FILE.read_text(encoding="utf-8")
    for old, new in FAST_SLA.items():
        assert old in source, old
        source = source.replace(old, new)
    path = tmp_path / "community.yaml"
    path.write_text(source, encoding="utf-8")
    return path


@pytest.fixture
async def postgres_url() -> str:
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    await reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@dataclass
class Deployment:
    world: World
    proxy: Proxy
    community_file: Path
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]


def _start(web_port: int, api_port: int, proxy_port: int, config: Path, log: Path) -> Popen:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{api_port}/bot",
        "DATABASE_URL": POSTGRES_URL or "",
        "COMMUNITY_CONFIG": str(config),
        "WEB_PORT": str(web_port),
        "WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/hook",
        "WEBHOOK_SECRET": SECRET,
        "SEND_GROUP_PER_MINUTE": "6000",  # about sharing work, not about limits
        "SEND_CHAT_PER_SECOND": "100",
        "SEND_GLOBAL_PER_SECOND": "1000",
        "LOG_LEVEL": "INFO",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.fixture
async def deployment(postgres_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    del postgres_url  # asked for its effect: skipped without PostgreSQL, emptied with it
    config = _fast_community_file(tmp_path)
    server = SandboxServer.for_directory(
        load_community_file(config).directory, TOKEN, staff_started=True
    )
    for user_id in RESIDENTS:
        server.world.add_user(User(id=user_id, first_name=f"居民{user_id % 100}"))
    api_app = web.Application()
    server.add_routes(api_app)
    api_port, proxy_port = free_port(), free_port()
    proxy = Proxy()
    proxy_app = web.Application()
    proxy_app.router.add_post("/hook", proxy.handle)
    runners = [await serve(api_app, api_port), await serve(proxy_app, proxy_port)]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    # The first process migrates and seeds; the second starts once the first is up.
    for name in ("a", "b"):
        web_port = free_port()
        logs[name] = tmp_path / f"bot-{name}.log"
        processes[name] = _start(web_port, api_port, proxy_port, config, logs[name])
        proxy.backends.append(f"http://127.0.0.1:{web_port}/hook")
        log = logs[name]
        started = await wait_until(lambda: "webhook set" in log.read_text(), 60)  # noqa: B023
        assert started, log.read_text()[-3000:]
    try:
        yield Deployment(server.world, proxy, config, processes, logs)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            await asyncio.to_thread(process.wait, 30)
        for runner in runners:
            await runner.cleanup()


def _bot_messages(world: World) -> list[Message]:
    return [m for ms in world.messages.values() for m in ms if m.from_id == world.bot.id]


def _replied(world: World, said: list[Message]) -> bool:
    replies = {(m.chat_id, m.reply_to) for m in _bot_messages(world)}
    return all((m.chat_id, m.message_id) in replies for m in said)


async def _scalar(query: str) -> int:
    engine = create_engine(POSTGRES_URL or "")
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text(query))).scalar() or 0)
    finally:
        await engine.dispose()


async def _burst(world: World, residents: range, start: int) -> list[Message]:
    said = []
    for n, resident in enumerate(residents, start=start):
        group = GROUPS[n % 2]
        building = 1 + n % 3 if group == GROUPS[0] else 4 + n % 3
        words = f"{building}号楼{n % 5 + 1}单元{n}0{n % 4 + 1}室水管漏水了，快来看看"
        said.append(await world.user_says(resident, group, words))
    return said


async def test_two_processes_share_the_work_and_nothing_happens_twice(
    deployment: Deployment,
) -> None:
    world, proxy = deployment.world, deployment.proxy
    said = await _burst(world, RESIDENTS[:24], 1)
    assert await wait_until(lambda: _replied(world, said), 60), deployment.logs["a"].read_text()[
        -2000:
    ]
    # Both processes took updates from the proxy.
    assert len(proxy.forwarded) == 2
    assert all(count >= 5 for count in proxy.forwarded.values()), proxy.forwarded

    # A keyword added by a third process reaches both within a second.
    engine = create_engine(POSTGRES_URL or "")
    await migrate(engine)
    admin_core = await build_core(
        SqlUnitOfWorkFactory(session_factory(engine)),
        load_community_file(deployment.community_file),
        SystemClock(),
    )
    before = len(_bot_messages(world))
    await admin_core.keywords.put("admin", "xingfu", "repair", "蓝鲸灯", weight=3.0)
    await engine.dispose()
    await asyncio.sleep(1.0)
    fresh = [
        await world.user_says(RESIDENTS[30], GROUPS[0], "1号楼的蓝鲸灯又不亮了"),
        await world.user_says(RESIDENTS[31], GROUPS[1], "4号楼门口蓝鲸灯一闪一闪"),
    ]
    assert await wait_until(lambda: _replied(world, fresh), 15), "new keyword not used everywhere"
    assert len(_bot_messages(world)) > before

    # The sending process stops; the other one takes over sending and handles the rest.
    sender = next(
        name for name, log in deployment.logs.items() if "now sends the outbox" in log.read_text()
    )
    other = "b" if sender == "a" else "a"
    deployment.processes[sender].send_signal(signal.SIGTERM)
    await asyncio.to_thread(deployment.processes[sender].wait, 30)
    later = await _burst(world, RESIDENTS[24:30], 25)
    assert await wait_until(lambda: _replied(world, later), 60), deployment.logs[other].read_text()[
        -3000:
    ]
    assert "now sends the outbox" in deployment.logs[other].read_text()

    # Let the seconds-long deadlines run out (reminders, breaches, escalations), then count.
    await asyncio.sleep(8)
    everything = [*said, *fresh, *later]
    tickets = await _scalar("SELECT count(*) FROM tickets")
    reports = await _scalar("SELECT count(*) FROM ticket_reports")
    assert tickets + reports == len(everything)
    unsent = await _scalar("SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')")
    deadline = time.monotonic() + 30
    while unsent and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        unsent = await _scalar("SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')")
    assert unsent == 0
    # Escalated tickets keep getting seconds-long deadlines: stop the last process before
    # comparing counts, or a deadline firing between two counts looks like one done twice.
    deployment.processes[other].send_signal(signal.SIGTERM)
    await asyncio.to_thread(deployment.processes[other].wait, 30)
    sent_rows = await _scalar("SELECT count(*) FROM outbox WHERE state = 'sent'")
    assert len(_bot_messages(world)) == sent_rows  # each row once, and nothing else
    acted = await _scalar(
        "SELECT count(*) FROM timers"
        " WHERE outcome IN ('reminded', 'escalated', 'breach', 'breach at top')"
    )
    assert acted > len(everything)  # the schedulers really raced for many deadlines
    fired = await _scalar(
        "SELECT count(*) FROM timers"
        " WHERE kind = 'breach' AND outcome IN ('escalated', 'breach', 'breach at top')"
    )
    assert fired > 0
    # Each deadline acted on once: one breach event per breached timer, and no notice to
    # staff twice (a notice names the ticket, the stage and the level).
    breaches = await _scalar("SELECT count(*) FROM ticket_events WHERE kind = 'breach'")
    assert breaches == fired
    staff_chats = {
        m.telegram_id for m in load_community_file(deployment.community_file).directory.staff
    }
    notices = Counter((m.chat_id, m.text) for m in _bot_messages(world) if m.chat_id in staff_chats)
    assert notices
    assert [key for key, count in notices.items() if count > 1] == []
    for name, log in deployment.logs.items():
        assert "Traceback" not in log.read_text(), (name, log.read_text()[-3000:])
