"""Staff in private chat: buttons and commands through the real handlers and the sandbox,
with domain refusals turned into polite answers."""

from __future__ import annotations

from typing import Any

from handlers.runtime import Runtime
from sandbox.world import World
from tests.helpers import GROUP_G01, RESIDENT, bot_messages_after, quiet_for, toast_for

WANG, LI = 10002, 10001


async def open_ticket(world: World) -> dict[str, Any]:
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    pings = await bot_messages_after(world, WANG, since)
    assert pings, "the property manager was not pinged"
    # The group's answer goes out beside the ping, in either order: wait for it too, so
    # what a test reads from the group afterwards is what came next.
    assert await bot_messages_after(world, GROUP_G01, since), "the resident was not answered"
    return pings[0]


async def test_buttons_act_and_refusals_are_polite(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    world = runtime.sandbox.world
    ping = await open_ticket(world)

    since = world.version
    await world.user_presses(LI, WANG, ping["message_id"], "t:1:accept")  # not on this ladder
    assert await toast_for(world, LI, since) == (
        "工单 #1 目前不由您负责，无法操作。如需协助请联系当前责任人。"
    )
    since = world.version
    await world.user_presses(RESIDENT, WANG, ping["message_id"], "t:1:accept")
    assert "不在本社区工作人员名单" in await toast_for(world, RESIDENT, since)
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:drop_table")
    assert await toast_for(world, WANG, since) == "无法识别的操作"

    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:accept")
    assert (await toast_for(world, WANG, since)).startswith("✅ 工单 #1 已接单。")
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:accept")
    assert await toast_for(world, WANG, since) == "工单 #1 当前状态为“已接单”，不能接单。"
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:999:accept")
    assert await toast_for(world, WANG, since) == "没有找到工单 #999。"


async def test_commands_plan_and_resolve_tell_the_resident(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    world = runtime.sandbox.world
    await open_ticket(world)

    since = world.version
    await world.user_says(WANG, WANG, "/plan 1 马上")
    usage = await bot_messages_after(world, WANG, since)
    assert usage[0]["text"].startswith("格式：/plan 工单号")

    since = world.version
    await world.user_says(WANG, WANG, "/plan 1 一般 关闭分阀，师傅20分钟内到场")
    told = await bot_messages_after(world, GROUP_G01, since)
    assert told[0]["text"].startswith("#1 处理方案：关闭分阀，师傅20分钟内到场。预计")
    answer = await bot_messages_after(world, WANG, since)
    assert answer[0]["text"] == "✅ 工单 #1 已提交方案。"

    since = world.version
    await world.user_says(WANG, WANG, "/resolve 1 已更换管件")
    told = await bot_messages_after(world, GROUP_G01, since)
    assert told[0]["text"] == "#1 已办结：已更换管件。您对处理结果满意吗？"
    assert [b["text"] for b in told[0]["buttons"][0]] == ["满意", "基本满意", "不满意"]
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
        events = [e.kind for e in await uow.tickets.events(1)]
    assert ticket is not None
    assert ticket.status.value == "resolved"
    # The plan reached the group before the resolve was typed; the sender records "replied"
    # once Telegram confirmed it, which may come just after the resolve.
    assert events[:4] == ["opened", "assigned", "accepted", "planned"]
    assert sorted(events[4:]) == ["replied", "resolved"]

    since = world.version
    await world.user_says(WANG, WANG, "/resolve 1")
    again = await bot_messages_after(world, WANG, since)
    assert again[0]["text"] == "工单 #1 当前状态为“已办结待评价”，不能办结。"


async def test_the_resident_rates_in_the_group_and_only_they_count(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    world = runtime.sandbox.world
    await open_ticket(world)
    since = world.version
    await world.user_says(WANG, WANG, "/accept 1")
    await bot_messages_after(world, WANG, since)
    accepted = (await bot_messages_after(world, GROUP_G01, since))[0]  # queued, then sent
    assert accepted["text"] == "#1 物业王管家已接单，正在了解情况。"
    since = world.version
    await world.user_says(WANG, WANG, "/resolve 1 已修好")
    asked = (await bot_messages_after(world, GROUP_G01, since))[0]

    since = world.version
    await world.user_presses(5000002, GROUP_G01, asked["message_id"], "r:1:unsatisfied")
    assert await toast_for(world, 5000002, since) == "只有报告这件事的居民可以评价哦。"
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert ticket.status.value == "resolved"

    since = world.version
    await world.user_presses(RESIDENT, GROUP_G01, asked["message_id"], "r:1:satisfied")
    assert await toast_for(world, RESIDENT, since) == "已收到您的评价"
    # The rating buttons are taken off the question (an edit) and the thanks is queued.
    after = await bot_messages_after(world, GROUP_G01, since, count=2)
    assert "#1 感谢您的评价！如有新的问题，随时在群里说。" in [m["text"] for m in after]
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert (ticket.status.value, ticket.rating and ticket.rating.value) == ("closed", "satisfied")
    edited = world.find(GROUP_G01, asked["message_id"])
    assert edited is not None
    assert edited.reply_markup is None  # the buttons are gone once rated

    since = world.version
    await world.user_presses(RESIDENT, GROUP_G01, asked["message_id"], "r:1:unsatisfied")
    assert await toast_for(world, RESIDENT, since) == "这个工单已经评价过了，谢谢！"


async def test_my_tickets_and_one_ticket_with_its_history(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    world = runtime.sandbox.world
    await open_ticket(world)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "2号楼的水管爆了，水哗哗往外喷")  # urgent
    await bot_messages_after(world, WANG, since)

    since = world.version
    await world.user_says(WANG, WANG, "/mytickets")
    listing = (await bot_messages_after(world, WANG, since))[0]["text"]
    lines = listing.splitlines()
    assert lines[0] == "您的待处理工单（2）："
    assert lines[1].startswith("🔴🚨 #2 报修｜待接单")  # urgent first
    assert lines[2].startswith("🟢 #1 报修｜待接单")

    since = world.version
    await world.user_says(WANG, WANG, "/ticket 1")
    shown = (await bot_messages_after(world, WANG, since))[0]["text"]
    assert shown.startswith("🟢 工单 #1（待接单）")
    assert "处理记录：" in shown
    assert "派单：网格G01物业管家" in shown

    since = world.version
    await world.user_says(LI, LI, "/ticket 1")  # not on this repair's ladder
    refused = (await bot_messages_after(world, LI, since))[0]["text"]
    assert refused == "工单 #1 目前不由您负责，无法操作。如需协助请联系当前责任人。"
    since = world.version
    await world.user_says(LI, LI, "/mytickets")
    assert (await bot_messages_after(world, LI, since))[0]["text"] == "您目前没有待处理的工单 👍"


async def test_residents_reply_to_ask_progress_or_withdraw(runtime: Runtime) -> None:
    assert runtime.sandbox is not None
    world = runtime.sandbox.world
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    ack = (await bot_messages_after(world, GROUP_G01, since))[0]

    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "进度怎么样了？", reply_to=ack["message_id"])
    answer = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert answer["text"] == "#1 等待接单，已通知负责人。"

    since = world.version
    await world.user_says(5000002, GROUP_G01, "不用了", reply_to=ack["message_id"])
    assert await quiet_for(world, GROUP_G01, since)  # not their ticket: nothing happens

    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "/status")
    listing = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert listing["text"] == "您的工单：\n#1 等待接单，已通知负责人。"

    since = world.version
    await world.user_says(
        RESIDENT, GROUP_G01, "师傅来过了，已经好了，不用了", reply_to=ack["message_id"]
    )
    answer = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert answer["text"] == "#1 已撤销，感谢告知！"
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
        assert ticket is not None
        assert ticket.status.value == "cancelled"
        assert await uow.timers.pending(1) == []

    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "/status")
    listing = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert listing["text"] == "您目前没有未办结的工单。"
