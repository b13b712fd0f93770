"""The aiohttp transport under python-telegram-bot: what reaches the server, what the library
gets back, and how failures map to the errors the sender retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
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


async def test_a_send_arrives_as_a_form_and_the_answer_is_parsed(
    api: tuple[FakeApi, str],
) -> None:
    fake, base = api
    request = AiohttpRequest(4)
    await request.initialize()
    bot = Bot(TOKEN, base_url=base, request=request)
    fake.answer = (
        200,
        {
            "ok": True,
            "result": {
                "message_id": 7,
                "date": 0,
                "chat": {"id": -100, "type": "supergroup", "title": "群"},
                "text": "已收到",
            },
        },
    )
    try:
        sent = await bot.send_message(-100, "已收到 #1", reply_parameters=ReplyParameters(5))
    finally:
        await request.shutdown()
    assert sent.message_id == 7
    assert sent.text == "已收到"
    method, fields = fake.requests[0]
    assert method == "sendMessage"
    assert fields["chat_id"] == "-100"
    assert fields["text"] == "已收到 #1"
    assert json.loads(fields["reply_parameters"])["message_id"] == 5


async def test_files_go_as_multipart(api: tuple[FakeApi, str]) -> None:
    fake, base = api
    request = AiohttpRequest(4)
    await request.initialize()
    bot = Bot(TOKEN, base_url=base, request=request)
    fake.answer = (
        200,
        {
            "ok": True,
            "result": {
                "message_id": 8,
                "date": 0,
                "chat": {"id": 42, "type": "private"},
                "document": {"file_id": "f", "file_unique_id": "u"},
            },
        },
    )
    try:
        await bot.send_document(42, InputFile(b"a,b\n1,2\n", filename="figures.csv"))
    finally:
        await request.shutdown()
    method, fields = fake.requests[0]
    assert method == "sendDocument"
    assert fields["chat_id"] == (None, b"42")
    assert fields["document"] == ("figures.csv", b"a,b\n1,2\n")


async def test_telegram_errors_reach_the_library_as_its_errors(api: tuple[FakeApi, str]) -> None:
    fake, base = api
    request = AiohttpRequest(4)
    await request.initialize()
    bot = Bot(TOKEN, base_url=base, request=request)
    try:
        fake.answer = (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        )
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(-100, "x")
        assert failure(retry.value) == DeliveryResult(
            Delivery.FAILED, retry_after=7.0, reason=str(retry.value)
        )  # the sender waits as told
        fake.answer = (
            400,
            {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
        )
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(-100, "x")
    finally:
        await request.shutdown()


async def test_a_slow_answer_is_a_timeout_and_no_server_a_network_error(
    api: tuple[FakeApi, str],
) -> None:
    fake, base = api
    request = AiohttpRequest(4, read_timeout=0.2)
    await request.initialize()
    bot = Bot(TOKEN, base_url=base, request=request)
    fake.delay = 1.0
    try:
        with pytest.raises(TimedOut):
            await bot.send_message(-100, "x")
    finally:
        await request.shutdown()

    nobody = AiohttpRequest(1)
    await nobody.initialize()
    closed = Bot(TOKEN, base_url=f"http://127.0.0.1:{free_port()}/bot", request=nobody)
    try:
        with pytest.raises(NetworkError) as refused:
            await closed.send_message(-100, "x")
        assert not isinstance(refused.value, TimedOut)
    finally:
        await nobody.shutdown()


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
    await request.initialize()
    try:
        # api.invalid does not resolve: only a request through the proxy can be answered.
        through = Bot(TOKEN, base_url="http://api.invalid/bot", request=request)
        assert await through.delete_webhook() is True
        assert fake.requests[-1][0] == "deleteWebhook"
        exempt = Bot(TOKEN, base_url="http://exempt.invalid/bot", request=request)
        with pytest.raises(NetworkError):  # went direct, and the name does not resolve
            await exempt.delete_webhook()
        assert len(fake.requests) == 1
    finally:
        await request.shutdown()
