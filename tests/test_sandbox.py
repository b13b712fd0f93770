"""The sandbox answers like the Bot API: form or JSON parameters, Telegram's error shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sandbox.server import SANDBOX_TOKEN, SandboxServer
from tests.helpers import GROUP_G01, RESIDENT

STAFF = 10001


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    server = SandboxServer.with_people(
        groups=[(GROUP_G01, "幸福小区1-3号楼业主群")], staff=[(STAFF, "李网格", "grid_worker")]
    )
    app = web.Application()
    server.add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def api(method: str) -> str:
    return f"/bot{SANDBOX_TOKEN}/{method}"


async def test_get_me_and_unknown_method(client: TestClient[web.Request, web.Application]) -> None:
    me = await (await client.post(api("getMe"))).json()
    assert me["ok"]
    assert me["result"]["is_bot"]
    response = await client.post(api("noSuchMethod"))
    assert response.status == 404
    assert (await response.json())["description"] == "Not Found: method not found"


async def test_send_with_form_fields_as_python_telegram_bot_posts_them(
    client: TestClient[web.Request, web.Application],
) -> None:
    markup = {"inline_keyboard": [[{"text": "接单", "callback_data": "acc:1"}]]}
    response = await client.post(
        api("sendMessage"),
        data={"chat_id": str(GROUP_G01), "text": "你好", "reply_markup": json.dumps(markup)},
    )
    body = await response.json()
    assert body["ok"], body
    assert body["result"]["chat"]["id"] == GROUP_G01
    assert body["result"]["reply_markup"] == markup


async def test_telegram_errors(client: TestClient[web.Request, web.Application]) -> None:
    cases = [
        ({"chat_id": -42, "text": "x"}, 400, "Bad Request: chat not found"),
        ({"chat_id": STAFF, "text": "x"}, 403, "Forbidden: bot can't initiate conversation"),
        ({"chat_id": GROUP_G01, "text": "  "}, 400, "Bad Request: message text is empty"),
        ({"chat_id": GROUP_G01, "text": "长" * 4097}, 400, "Bad Request: message is too long"),
        ({"chat_id": GROUP_G01}, 400, "Bad Request: text is required"),
        ({"chat_id": "abc", "text": "x"}, 400, "Bad Request: invalid chat_id"),
    ]
    for params, status, description in cases:
        response = await client.post(api("sendMessage"), json=params)
        body = await response.json()
        assert response.status == status, params
        assert body["ok"] is False
        assert body["error_code"] == status
        assert body["description"].startswith(description), body


async def test_private_chat_opens_after_the_person_writes_first(
    client: TestClient[web.Request, web.Application],
) -> None:
    sent = await client.post(
        "/sandbox/api/send", json={"user_id": STAFF, "chat_id": STAFF, "text": "/start"}
    )
    assert sent.status == 200
    response = await client.post(api("sendMessage"), json={"chat_id": STAFF, "text": "您好"})
    assert (await response.json())["ok"]


async def test_updates_follow_telegram_offset_rules(
    client: TestClient[web.Request, web.Application],
) -> None:
    for text in ("一", "二"):
        await client.post(
            "/sandbox/api/send", json={"user_id": RESIDENT, "chat_id": GROUP_G01, "text": text}
        )
    first = (await (await client.post(api("getUpdates"), json={"timeout": 0})).json())["result"]
    assert [u["message"]["text"] for u in first] == ["一", "二"]
    assert first[0]["message"]["chat"]["type"] == "supergroup"
    confirm = first[-1]["update_id"] + 1
    rest = await (await client.post(api("getUpdates"), json={"offset": confirm})).json()
    assert rest["result"] == []


async def test_button_press_becomes_a_callback_query(
    client: TestClient[web.Request, web.Application],
) -> None:
    markup = {"inline_keyboard": [[{"text": "满意", "callback_data": "rate:1:good"}]]}
    sent = await (
        await client.post(
            api("sendMessage"),
            json={"chat_id": GROUP_G01, "text": "满意吗？", "reply_markup": markup},
        )
    ).json()
    message_id = sent["result"]["message_id"]
    pressed = await client.post(
        "/sandbox/api/press",
        json={
            "user_id": RESIDENT,
            "chat_id": GROUP_G01,
            "message_id": message_id,
            "data": "rate:1:good",
        },
    )
    assert pressed.status == 200
    updates = (await (await client.post(api("getUpdates"))).json())["result"]
    query = updates[-1]["callback_query"]
    assert query["data"] == "rate:1:good"
    assert query["from"]["id"] == RESIDENT
    assert query["message"]["message_id"] == message_id
    answered = await client.post(
        api("answerCallbackQuery"), json={"callback_query_id": query["id"], "text": "已收到"}
    )
    assert (await answered.json())["result"] is True
    poll = await (await client.get("/sandbox/api/poll?since=0&timeout=0")).json()
    assert poll["toasts"] == [{"user_id": RESIDENT, "text": "已收到", "version": poll["version"]}]


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1,2]", json.dumps({"user_id": "x"}).encode(), b"\xff\xfe\x00"],
)
async def test_page_api_refuses_bad_input_clearly(
    client: TestClient[web.Request, web.Application], body: bytes
) -> None:
    response = await client.post(
        "/sandbox/api/send", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "error" in await response.json()


async def test_page_is_served(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    assert "网格助手" in page
    assert "/sandbox/api/poll" in page
