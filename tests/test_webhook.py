"""Webhook mode: updates posted to the bot, the secret header checked, bad posts refused."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.settings import Settings, SettingsError, load_settings
from handlers.runtime import Runtime
from handlers.telegram.webhook import MAX_UPDATE_BYTES, SECRET_HEADER
from storage.models import InboxRow, TicketRow
from tests.helpers import GROUP_G01, RESIDENT, bot_messages_after, world_of

SECRET = "s3cret_Token-1"
PATH = "/telegram/hook"


@pytest.fixture
def settings(database_url: str, port: int) -> Settings:
    """The sandbox posting updates to the bot's own webhook."""
    return load_settings(
        DATABASE_URL=database_url,
        WEB_PORT=port,
        WEBHOOK_URL=f"http://127.0.0.1:{port}{PATH}",
        WEBHOOK_SECRET=SECRET,
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _update(update_id: int, message_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": GROUP_G01, "type": "supergroup", "title": "幸福里1-3号楼"},
            "from": {"id": RESIDENT, "is_bot": False, "first_name": "张阿姨"},
            "text": text,
        },
    }


async def _post(
    http: aiohttp.ClientSession, runtime: Runtime, body: bytes, secret: str | None = SECRET
) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    url = f"{runtime.web_url.rstrip('/')}{PATH}" if runtime.web_url else ""
    async with http.post(url, data=body, headers=headers) as response:
        return response.status


async def _count(runtime: Runtime, model: type[InboxRow] | type[TicketRow]) -> int:
    async with runtime.core.uows() as uow:
        session = uow.tickets.session  # type: ignore[attr-defined]
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_sandbox_posts_to_the_webhook_and_the_bot_answers(runtime: Runtime) -> None:
    sandbox = runtime.sandbox
    assert sandbox is not None
    assert sandbox.webhook is not None
    assert sandbox.webhook.url.endswith(PATH)
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    replies = await bot_messages_after(world, GROUP_G01, since)
    assert replies[0]["text"].startswith("已收到您的报修，工单号 #1")
    assert sandbox.webhook.answers.get(200, 0) >= 1
    assert set(sandbox.webhook.answers) == {200}
    assert world.pending_updates() == 0  # nothing waits for a getUpdates


async def test_posts_without_the_right_secret_are_refused_with_403(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    body = json.dumps(_update(900_001, 990_001, "5号楼电梯坏了")).encode()
    assert await _post(http, runtime, body, secret=None) == 403
    assert await _post(http, runtime, body, secret="wrong") == 403
    assert await _post(http, runtime, body, secret=SECRET + "x") == 403
    assert await _count(runtime, InboxRow) == 0
    assert await _count(runtime, TicketRow) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"\xff\xfe binary", 400),
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"message": {}}', 400),
        (b'{"update_id": "7"}', 400),
        (b'{"update_id": true}', 400),
        (b'{"update_id": -3}', 400),
        (json.dumps({"update_id": 5, "pad": "x" * MAX_UPDATE_BYTES}).encode(), 413),
    ],
)
async def test_bad_payloads_are_refused_and_nothing_is_kept(
    runtime: Runtime, http: aiohttp.ClientSession, body: bytes, status: int
) -> None:
    assert await _post(http, runtime, body) == status
    assert await _count(runtime, InboxRow) == 0
    # The bot still works afterwards.
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    assert await bot_messages_after(world, GROUP_G01, since)


async def test_an_update_posted_twice_is_handled_once(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    world = world_of(runtime)
    since = world.version
    body = json.dumps(_update(900_002, 990_002, "5号楼楼道灯坏了")).encode()
    assert await _post(http, runtime, body) == 200
    assert await _post(http, runtime, body) == 200  # Telegram retried: same answer
    replies = await bot_messages_after(world, GROUP_G01, since)
    assert len(replies) == 1
    assert "工单号 #1" in replies[0]["text"]
    assert await _count(runtime, TicketRow) == 1


def test_a_webhook_needs_a_secret_of_telegrams_alphabet() -> None:
    with pytest.raises(SettingsError, match=r"^setting WEBHOOK_SECRET: required"):
        load_settings(WEBHOOK_URL="https://bot.example.org/tg")
    with pytest.raises(SettingsError, match=r"^setting WEBHOOK_SECRET: expected"):
        load_settings(WEBHOOK_URL="https://bot.example.org/tg", WEBHOOK_SECRET="has space")
    with pytest.raises(SettingsError, match=r"^setting WEBHOOK_URL"):
        load_settings(WEBHOOK_URL="bot.example.org/tg", WEBHOOK_SECRET="abc")
    settings = load_settings(WEBHOOK_URL="https://bot.example.org/tg/in", WEBHOOK_SECRET="abc")
    assert settings.webhook_path == "/tg/in"
    assert load_settings().webhook_path is None
