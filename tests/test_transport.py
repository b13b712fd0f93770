"""The aiohttp transport under python-telegram-bot: what reaches the server, what the library
gets back, and how failures map to the errors the sender retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import BodyPartReader, web
from telegram import Bot, InputFile, ReplyParameters
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.domain import Delivery, DeliveryResult
from handlers.telegram.notifier import failure
from handlers.telegram.transport import AiohttpRequest
from tests.conftest import free_port
from tests.helpers import serve

TOKEN = "123:TRANSPORT"


class FakeApi:
    """A Bot API that records requests and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.answer: tuple[int, dict[str, Any]] = (200, {"ok": True, "result": True})
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        fields: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            async for part in await request.multipart():
                assert isinstance(part, BodyPartReader)
                fields[part.name or ""] = (part.filename, await part.read())
        else:
            fields = dict(await request.post())
        self.requests.append((method, fields))
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body = self.answer
        return web.json_response(body, status=status)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, str]]:
    fake = FakeApi()
    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/{{method}}", fake.handle)
    port = free_port()
    runner = await serve(app, port)
    try:
        yield fake, f"http://127.0.0.1:{port}/bot"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def bot_on(base_url: str, request: AiohttpRequest | None = None) -> AsyncIterator[Bot]:
    """A bot over an initialized transport (``AiohttpRequest(4)`` unless given), shut after."""
    request = request or AiohttpRequest(4)
    await request.initialize()
    try:
        yield Bot(TOKEN, base_url=base_url, request=request)
    finally:
        await request.shutdown()


def ok(result: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A successful Bot API answer."""
    return 200, {"ok": True, "result": result}


def refused(status: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
    """A Bot API error answer."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body


async def test_a_send_arrives_as_a_form_and_the_answer_is_parsed(
    api: tuple[FakeApi, str],
) -> None:
    fake, base = api
    chat = {"id": -100, "type": "supergroup", "title": "群"}
    fake.answer = ok({"message_id": 7, "date": 0, "chat": chat, "text": "已收到"})
    async with bot_on(base) as bot:
        sent = await bot.send_message(-100, "已收到 #1", reply_parameters=ReplyParameters(5))
    assert sent.message_id == 7
    assert sent.text == "已收到"
    method, fields = fake.requests[0]
    assert method == "sendMessage"
    assert fields["chat_id"] == "-100"
    assert fields["text"] == "已收到 #1"
    assert json.loads(fields["reply_parameters"])["message_id"] == 5


async def test_files_go_as_multipart(api: tuple[FakeApi, str]) -> None:
    fake, base = api
    document = {"file_id": "f", "file_unique_id": "u"}
    chat = {"id": 42, "type": "private"}
    fake.answer = ok({"message_id": 8, "date": 0, "chat": chat, "document": document})
    async with bot_on(base) as bot:
        await bot.send_document(42, InputFile(b"a,b\n1,2\n", filename="figures.csv"))
    method, fields = fake.requests[0]
    assert method == "sendDocument"
    assert fields["chat_id"] == (None, b"42")
    assert fields["document"] == ("figures.csv", b"a,b\n1,2\n")


async def test_telegram_errors_reach_the_library_as_its_errors(api: tuple[FakeApi, str]) -> None:
    fake, base = api
    async with bot_on(base) as bot:
        fake.answer = refused(429, "Too Many Requests: retry after 7", retry_after=7)
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(-100, "x")
        assert failure(retry.value) == DeliveryResult(
            Delivery.FAILED, retry_after=7.0, reason=str(retry.value)
        )  # the sender waits as told
        fake.answer = refused(400, "Bad Request: chat not found")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(-100, "x")


async def test_a_slow_answer_is_a_timeout_and_no_server_a_network_error(
    api: tuple[FakeApi, str],
) -> None:
    fake, base = api
    fake.delay = 1.0
    async with bot_on(base, AiohttpRequest(4, read_timeout=0.2)) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(-100, "x")
    async with bot_on(f"http://127.0.0.1:{free_port()}/bot", AiohttpRequest(1)) as closed:
        with pytest.raises(NetworkError) as refusal:
            await closed.send_message(-100, "x")
        assert not isinstance(refusal.value, TimedOut)


async def test_it_must_be_initialized_and_can_be_restarted() -> None:
    request = AiohttpRequest(1)
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:1/", "POST")
    await request.initialize()
    await request.shutdown()
    await request.initialize()  # python-telegram-bot may initialize again after a shutdown
    await request.shutdown()
    with pytest.raises(ValueError, match="at least 1"):
        AiohttpRequest(0)


async def test_a_proxy_from_the_environment_is_used_unless_the_host_is_exempt(
    api: tuple[FakeApi, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY / NO_PROXY as httpx honoured them (read once when the session opens)."""
    fake, base = api
    proxy = base.removesuffix("/bot")  # the fake API answers requests sent through it
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "exempt.invalid")
    request = AiohttpRequest(1, connect_timeout=1.0)
    # api.invalid does not resolve: only a request through the proxy can be answered.
    async with bot_on("http://api.invalid/bot", request) as through:
        assert await through.delete_webhook() is True
        assert fake.requests[-1][0] == "deleteWebhook"
        exempt = Bot(TOKEN, base_url="http://exempt.invalid/bot", request=request)
        with pytest.raises(NetworkError):  # went direct, and the name does not resolve
            await exempt.delete_webhook()
        assert len(fake.requests) == 1
