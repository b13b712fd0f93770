"""kill -9 in the middle of a burst: every request keeps exactly one ticket, and every
resident and assignee hears once.

The bot runs as a real subprocess (``python -m bot``) with a token, against a Bot API test
server (the sandbox) served by this test. Updates the killed process fetched but never
confirmed are delivered again after the restart, as Telegram does.

Sending is at least once by nature: a message Telegram accepted just before the kill, whose
"sent" mark never reached the database, is sent again. Those are exactly the outbox rows
left in state ``sending``; the test reads them from the database between the kill and the
restart and allows a second copy only of them. Everything else must arrive exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.config import CommunityFile
from sandbox.server import SandboxServer
from sandbox.world import Message, User, World
from tests.conftest import free_port
from tests.helpers import serve, wait_until

TOKEN = "123:CRASH-test"
GROUPS = (-1001000000001, -1001000000002)
RESIDENTS = range(6000001, 6000041)  # forty residents
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def bot_api(demo_file: CommunityFile) -> AsyncIterator[tuple[World, int]]:
    directory = demo_file.directory
    server = SandboxServer.for_directory(directory, TOKEN, staff_started=True)
    for user_id in RESIDENTS:
        server.world.add_user(User(id=user_id, first_name=f"居民{user_id % 100}"))
    app = web.Application()
    server.add_routes(app)
    port = free_port()
    runner = await serve(app, port)
    yield server.world, port
    await runner.cleanup()


def start_bot(api_port: int, database: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{api_port}/bot",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "WEB_PORT": str(free_port()),
        "SEND_GROUP_PER_MINUTE": "600",  # this test is about crashes, not limits
        "SEND_CHAT_PER_SECOND": "20",
        "LOG_LEVEL": "INFO",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def bot_replies(world: World, chat_id: int) -> list[Message]:
    return [m for m in world.messages.get(chat_id, []) if m.from_id == world.bot.id]


async def test_kill_9_mid_burst_loses_nothing_and_doubles_nothing(
    bot_api: tuple[World, int], tmp_path: Path
) -> None:
    world, port = bot_api
    database, log = tmp_path / "crash.db", tmp_path / "bot.log"
    process = start_bot(port, database, log)
    try:
        first = await world.user_says(RESIDENTS[0], GROUPS[0], "1号楼1单元水管漏水了")
        assert await wait_until(lambda: bot_replies(world, GROUPS[0]), 60), log.read_text()
        said: list[Message] = [first]
        for n, resident in enumerate(RESIDENTS[1:], start=1):
            group = GROUPS[n % 2]
            building = 1 + n % 3 if group == GROUPS[0] else 4 + n % 3
            text = f"{building}号楼{n % 5 + 1}单元{n}0{n % 4 + 1}室水管漏水了，快来看看"
            said.append(await world.user_says(resident, group, text))
            if n == 12:  # kill in the middle of the burst, while it is being answered
                await asyncio.sleep(0.3)
                process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(process.wait, 10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    # Between the kill and the restart: what was caught mid-send may arrive twice.
    with sqlite3.connect(database) as db:
        ambiguous = {
            (chat, reply_to, text)
            for chat, reply_to, text in db.execute(
                "SELECT chat_id, reply_to, text FROM outbox WHERE state = 'sending'"
            )
        }

    process = start_bot(port, database, log)
    try:

        def answered() -> bool:
            replied = {(m.chat_id, m.reply_to) for g in GROUPS for m in bot_replies(world, g)}
            return all((m.chat_id, m.message_id) in replied for m in said)

        assert await wait_until(answered, 90), log.read_text()[-3000:]
        await asyncio.sleep(1.0)  # anything sent twice would show up now
    finally:
        process.send_signal(signal.SIGTERM)
        # Waited for off the loop: the Bot API server in this process must keep answering.
        await asyncio.to_thread(process.wait, 30)

    with sqlite3.connect(database) as db:
        tickets = {
            (chat, message): ticket
            for ticket, chat, message in db.execute("SELECT id, chat_id, message_id FROM tickets")
        }
        reports = {
            (chat, message): ticket
            for ticket, chat, message in db.execute(
                "SELECT ticket_id, chat_id, message_id FROM ticket_reports"
            )
        }
        assignees = dict(
            db.execute(
                "SELECT t.id, s.telegram_id FROM tickets t JOIN staff s ON s.id = t.assignee_id"
            )
        )
        pending = db.execute("SELECT count(*) FROM outbox WHERE state != 'sent'").fetchone()[0]
    # Exactly one ticket (or "me too" report) per request, none for anything else.
    for message in said:
        key = (message.chat_id, message.message_id)
        assert (key in tickets) != (key in reports), f"message {key}: not exactly one ticket"
    assert len(tickets) + len(reports) == len(said)
    assert pending == 0

    # Every resident was answered once (a second copy only of what was mid-send).
    for group in GROUPS:
        copies = Counter((m.reply_to, m.text) for m in bot_replies(world, group))
        for (reply_to, text), count in copies.items():
            if count > 1:
                assert (group, reply_to, text) in ambiguous, f"sent twice: {text}"
    # Every assignee got each new ticket once (as its own card or in a list).
    for ticket, telegram_id in assignees.items():
        cards = [
            m
            for m in world.messages.get(telegram_id, [])
            if f"#{ticket}｜" in m.text or f"工单 #{ticket}｜" in m.text
        ]
        assert cards, f"#{ticket} never reached its assignee {telegram_id}"
        if len(cards) > 1:
            assert any(text == cards[0].text for _c, _r, text in ambiguous), f"#{ticket} twice"
    assert "Traceback" not in log.read_text()
