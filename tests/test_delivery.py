"""What Telegram may send, each handled deliberately (through the real application and the
sandbox Bot API): redeliveries, edits, photos with and without captions, service messages,
other bots' messages, unknown groups; and every reply goes through the outbox."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from handlers.runtime import Runtime
from sandbox.world import World
from storage.models import InboxRow
from tests.helpers import (
    GROUP_G01,
    RESIDENT,
    bot_messages_after,
    quiet_for,
    toast_for,
    world_of,
)

WANG = 10002
LI = 10001


def message_payload(world: World, message_id: int, **fields: Any) -> dict[str, Any]:
    """A group message from the resident as Telegram would send it, with extra fields."""
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": {"id": GROUP_G01, "type": "supergroup", "title": "幸福小区1-3号楼业主群"},
        "from": world.users[RESIDENT].as_api(),
        **fields,
    }


async def tickets_of(runtime: Runtime) -> list[tuple[int, str, str]]:
    async with runtime.core.uows() as uow:
        found = []
        for number in range(1, 20):
            ticket = await uow.tickets.get(number)
            if ticket is not None:
                found.append((ticket.id, ticket.category.value, ticket.text))
        return found


async def test_a_redelivered_update_changes_nothing(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    sent = await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await bot_messages_after(world, GROUP_G01, since)
    await bot_messages_after(world, WANG, since)
    since = world.version
    # Telegram sends the same message again (the bot crashed before confirming it).
    payload = message_payload(world, sent.message_id, text="3号楼电梯坏了")
    await world.deliver_raw({"message": payload})
    after = await bot_messages_after(world, GROUP_G01, since, wait=0.5)
    assert after == [], after
    assert await quiet_for(world, WANG, since, 0.0)
    assert [t[0] for t in await tickets_of(runtime)] == [1]
    async with runtime.core.uows() as uow:
        assert len(await uow.outbox.for_ticket(1)) == 2  # one answer, one ping: once each


async def test_a_fetched_update_is_kept_exactly_as_telegram_sent_it(runtime: Runtime) -> None:
    """The inbox keeps each polled batch as the Bot API returned it (fields the library
    does not know included), so a replay after a crash sees what Telegram sent."""
    world = world_of(runtime)
    since = world.version
    message = message_payload(world, 950, text="3号楼电梯坏了", future_field={"kept": [1, 2]})
    await world.deliver_raw({"message": message, "future_update_field": True})
    assert await bot_messages_after(world, GROUP_G01, since)
    async with runtime.core.uows() as uow:
        session = uow.tickets.session  # type: ignore[attr-defined]
        kept = [row.payload for row in await session.scalars(select(InboxRow))]
    mine = [p for p in kept if p.get("message", {}).get("message_id") == 950]
    assert len(mine) == 1, kept
    assert mine[0] == {
        "update_id": mine[0]["update_id"],
        "message": message,
        "future_update_field": True,
    }


async def test_an_edit_updates_a_new_ticket_and_classifies_it_again(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    sent = await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await bot_messages_after(world, GROUP_G01, since)
    await bot_messages_after(world, WANG, since)

    since = world.version
    await world.user_edits(
        RESIDENT, GROUP_G01, sent.message_id, "3号楼楼上邻居天天半夜吵架，吵得没法睡"
    )
    card = (await bot_messages_after(world, LI, since))[0]  # a dispute: the grid worker's
    assert "✏️ 居民修改了消息" in card["text"]
    assert "天天半夜吵架" in card["text"]
    away = (await bot_messages_after(world, WANG, since))[0]
    assert away["text"].startswith("工单 #1 已由居民修改消息后更正为“纠纷”")
    assert await quiet_for(world, GROUP_G01, since, 0.3)  # no second ticket, no second answer
    assert await tickets_of(runtime) == [(1, "dispute", "3号楼楼上邻居天天半夜吵架，吵得没法睡")]

    # Once someone took it, edits change nothing.
    since = world.version
    await world.user_presses(LI, LI, card["message_id"], "t:1:accept")
    await bot_messages_after(world, GROUP_G01, since)
    since = world.version
    await world.user_edits(RESIDENT, GROUP_G01, sent.message_id, "算了不用了")
    assert await quiet_for(world, LI, since, 0.5)
    assert (await tickets_of(runtime))[0][2] == "3号楼楼上邻居天天半夜吵架，吵得没法睡"


async def test_photos_service_messages_and_edits_of_chatter(runtime: Runtime) -> None:
    world = world_of(runtime)
    photo = [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}]
    since = world.version
    # A photo with a caption is a report like any text.
    await world.deliver_raw(
        {"message": message_payload(world, 901, photo=photo, caption="2号楼水管爆了，快来人")}
    )
    ack = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert "工单号 #1" in ack["text"]
    since = world.version
    # A photo without a caption, someone joining, a pinned message: nothing to answer.
    await world.deliver_raw({"message": message_payload(world, 902, photo=photo)})
    joined = world.users[RESIDENT].as_api()
    await world.deliver_raw({"message": message_payload(world, 903, new_chat_members=[joined])})
    await world.deliver_raw(
        {"message": message_payload(world, 904, pinned_message=message_payload(world, 901))}
    )
    # An edit of a message that opened no ticket does not open one.
    chatter = await world.user_says(RESIDENT, GROUP_G01, "大家早上好")
    await world.user_edits(RESIDENT, GROUP_G01, chatter.message_id, "3号楼电梯坏了")
    assert await quiet_for(world, GROUP_G01, since, 0.6)
    assert [t[0] for t in await tickets_of(runtime)] == [1]


async def test_a_burst_alert_is_resolved_from_its_button(runtime: Runtime) -> None:
    world = world_of(runtime)
    zhao = 20001
    since = world.version
    for resident in (RESIDENT, 5000002, 5000003):
        await world.user_says(resident, GROUP_G01, "3号楼停水了，家里一滴水都没有")
    alert = (await bot_messages_after(world, zhao, since))[0]
    assert alert["text"].startswith("🔴 工单预警：幸福社区3号楼15分钟内收到 3 起报修（停水）")
    notice = await bot_messages_after(world, GROUP_G01, since, count=4)
    assert any(m["text"].startswith("📢 已知悉3号楼停水") for m in notice)

    since = world.version
    await world.user_presses(WANG, zhao, alert["message_id"], "i:1:resolve")
    assert await toast_for(world, WANG, since) == "抱歉，预警事件由社区、街道工作人员或管理员办结。"
    await world.user_presses(zhao, zhao, alert["message_id"], "i:1:bogus")
    assert await toast_for(world, zhao, since) == "无法识别的操作"
    since = world.version
    await world.user_presses(zhao, zhao, alert["message_id"], "i:1:resolve")
    assert await toast_for(world, zhao, since) == "✅ 预警事件 #1 已办结，1 个工单已通知居民评价。"
    told = await bot_messages_after(world, GROUP_G01, since, count=3)
    assert told[0]["text"] == "#1 已办结：预警事件 #1 已统一处理完毕。您对处理结果满意吗？"
    assert len(told) == 3  # the two neighbours who said "me too" hear it under their messages
