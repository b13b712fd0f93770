"""The whole loop through the real application (sandbox Bot API, polling, handlers, core):
点单 → 派单 → 接单 → 处理方案 → 办结 → 评单, and its branches: off duty and the backup post,
转派, "me too", unreachable staff, forged presses, private reports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers.runtime import Runtime
from sandbox.world import World
from tests.helpers import (
    GROUP_G01,
    RESIDENT,
    bot_messages_after,
    quiet_for,
    toast_for,
    world_of,
)

LI, WANG, LIU, CHEN, ZHAO, ADMIN = 10001, 10002, 10003, 10004, 20001, 90001
NEIGHBOUR, MS_CHEN = 5000002, 5000003


async def says(
    world: World, user: int, chat: int, text: str, *, to: int, count: int = 1
) -> list[dict[str, Any]]:
    """``user`` says ``text`` in ``chat``; the bot's next ``count`` messages in chat ``to``."""
    since = world.version
    await world.user_says(user, chat, text)
    found = await bot_messages_after(world, to, since, count)
    assert len(found) >= count, f"expected {count} bot messages in {to} after {text!r}: {found}"
    return found


async def press(world: World, user: int, message: dict[str, Any], data: str) -> str:
    """``user`` presses a button (data as given, forged or not) under ``message``."""
    since = world.version
    await world.user_presses(user, message["chat_id"], message["message_id"], data)
    return await toast_for(world, user, since)


async def said(world: World, chat: int, since: int, prefix: str) -> dict[str, Any]:
    """The bot's message in ``chat`` after ``since`` that starts with ``prefix`` (waiting for
    it: replies to different chats may arrive in either order)."""
    for count in range(1, 6):
        found = await bot_messages_after(world, chat, since, count)
        for message in found:
            if message["text"].startswith(prefix):
                return message
        if len(found) < count:
            break
    raise AssertionError(f"no bot message starting {prefix!r} in {chat}")


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {b["text"]: b["data"] for row in message["buttons"] for b in row}


async def events(runtime: Runtime, ticket_id: int) -> list[tuple[str, str]]:
    async with runtime.core.uows() as uow:
        return [(e.kind, e.note) for e in await uow.tickets.events(ticket_id)]


async def test_full_loop_with_buttons_and_nothing_private_in_the_group(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼2单元501电梯坏了，我电话13812345678")
    ack = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert ack["text"].startswith("已收到您的报修，工单号 #1（3号楼2单元）")
    assert "5分钟内联系您" in ack["text"]
    assert "501" not in ack["text"]
    assert "138" not in ack["text"]
    ping = (await bot_messages_after(world, WANG, since))[0]
    assert "位置：3号楼2单元501室" in ping["text"]  # staff see the room, in private
    assert "138****5678" in ping["text"]
    assert list(buttons(ping)) == ["接单", "处理方案", "办结", "上报", "转派", "分类有误"]

    assert (await press(world, WANG, ping, "t:1:accept")).startswith("✅ 工单 #1 已接单。")
    # 处理方案: the tier first, then one line of plan.
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:plan")
    tiers = (await bot_messages_after(world, WANG, since))[0]
    assert tiers["text"].startswith("工单 #1 处理方案：请选择问题类型")
    assert list(buttons(tiers)) == ["一般", "较大", "特别复杂"]
    since = world.version
    await world.user_presses(WANG, WANG, tiers["message_id"], "p:1:general")
    asked = (await bot_messages_after(world, WANG, since))[0]
    assert asked["text"].startswith("工单 #1（一般问题）：请直接回复一句话处理方案")
    # The group's "已接单" notice may still be on its way: look for the plan among them.
    since = world.version
    await world.user_says(WANG, WANG, "师傅20分钟内到场，有事打13900001111")
    told = await said(
        world, GROUP_G01, since, "#1 处理方案：师傅20分钟内到场，有事打[电话已隐藏]。预计"
    )
    assert told["reply_to"] is not None

    # 办结 with a note, then the resident's rating closes it.
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:resolve")
    prompt = await said(world, WANG, since, "工单 #1 办结：")
    assert list(buttons(prompt)) == ["直接办结"]
    asked_rating = (await says(world, WANG, WANG, "已更换控制板", to=GROUP_G01))[0]
    assert asked_rating["text"] == "#1 已办结：已更换控制板。您对处理结果满意吗？"
    assert list(buttons(asked_rating)) == ["满意", "基本满意", "不满意"]
    assert await press(world, RESIDENT, asked_rating, "r:1:satisfied") == "已收到您的评价"
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert (ticket.status.value, ticket.rating and ticket.rating.value) == ("closed", "satisfied")
    assert ticket.tier.value == "general"
    kinds = [kind for kind, _ in await events(runtime, 1)]
    assert kinds[:4] == ["opened", "assigned", "accepted", "planned"]
    # "replied" is recorded when Telegram confirms the plan was sent: before or just after
    # the resolve the assignee typed at once.
    assert sorted(kinds[4:6]) == ["replied", "resolved"]
    assert kinds[6:] == ["rated", "closed"]


async def test_off_duty_hands_over_to_the_backup_and_on_duty_takes_back(runtime: Runtime) -> None:
    world = world_of(runtime)
    await says(world, RESIDENT, GROUP_G01, "3号楼电梯坏了", to=WANG)  # #1, not accepted yet
    answer = (await says(world, WANG, WANG, "/offduty", to=WANG))[0]["text"]
    assert "已设为下班" in answer
    assert "待接单的工单已转给备岗：#1" in answer
    handed = await bot_messages_after(world, LIU, 0)
    assert any(m["text"].startswith("🟢 🔁 备岗接替：王管家已下班") for m in handed)
    assert ("assigned", "备岗接替（王管家下班）：刘网格") in await events(runtime, 1)

    # A new report while the property manager is off goes straight to the backup post.
    since = world.version
    await world.user_says(NEIGHBOUR, GROUP_G01, "2号楼楼道灯坏了")
    ack = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert "网格员刘网格将在5分钟内联系您" in ack["text"]
    assert await bot_messages_after(world, LIU, since)
    assert await quiet_for(world, WANG, since)
    assert ("assigned", "备岗接替：网格G01备岗（王管家不在岗）：刘网格") in await events(runtime, 2)
    async with runtime.core.uows() as uow:
        second = await uow.tickets.get(2)
    assert second is not None
    assert (second.assignee_id, second.level) == ("liu", 1)

    answer = (await says(world, WANG, WANG, "/onduty", to=WANG))[0]["text"]
    assert answer.startswith("☀️ 已上岗。您的排班：全天")
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "1号楼水管漏水了")
    assert await bot_messages_after(world, WANG, since)


async def test_reassign_passes_the_ticket_within_the_grid(runtime: Runtime) -> None:
    world = world_of(runtime)
    ping = (await says(world, RESIDENT, GROUP_G01, "3号楼电梯坏了", to=WANG))[0]
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:reassign")
    choice = (await bot_messages_after(world, WANG, since))[0]
    assert choice["text"] == "工单 #1 转派给谁？"
    assert buttons(choice) == {"李网格": "a:1:li", "刘网格": "a:1:liu", "赵书记": "a:1:zhao"}

    # A forged target outside the grid and community is refused.
    assert await press(world, WANG, choice, "a:1:sun") == "只能转派给本网格或本社区的工作人员。"
    assert await press(world, WANG, choice, "a:1:li") == "✅ 工单 #1 已转派。"
    got = (await bot_messages_after(world, LI, since))[0]
    assert got["text"].startswith("🟢 🔁 王管家转派给您的工单")
    assert "处理记录" in got["text"]
    assert (await press(world, LI, got, "t:1:accept")).startswith("✅ 工单 #1 已接单。")
    assert ("assigned", "转派（王管家）：李网格") in await events(runtime, 1)


async def test_me_too_joins_the_open_ticket_and_hears_the_outcome(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    await says(world, RESIDENT, GROUP_G01, "3号楼电梯坏了", to=WANG)
    # The group's answer may come after the ping: both out before the next message.
    await said(world, GROUP_G01, since, "已收到您的报修，工单号 #1")
    since = world.version
    await world.user_says(NEIGHBOUR, GROUP_G01, "我们这电梯也停了")
    joined = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert joined["text"].startswith("已并入工单 #1（同一问题已有2户反映）")
    note = (await bot_messages_after(world, WANG, since))[0]
    assert note["text"].startswith("➕ 工单 #1 又有居民反映同一问题（共2户）")

    # Another building, or another fault, is another ticket.
    other_building = await says(world, MS_CHEN, GROUP_G01, "2号楼电梯坏了", to=GROUP_G01)
    assert "工单号 #2" in other_building[0]["text"]
    other_fault = await says(world, NEIGHBOUR, GROUP_G01, "3号楼楼道灯坏了", to=GROUP_G01)
    assert "工单号 #3" in other_fault[0]["text"]

    await says(world, WANG, WANG, "/accept 1", to=WANG)
    since = world.version
    await world.user_says(WANG, WANG, "/resolve 1 已更换主板")
    asked = await said(world, GROUP_G01, since, "#1 已办结：已更换主板。")
    also = await said(world, GROUP_G01, since, "#1 您反映的问题已办结：已更换主板。感谢您的反映！")
    assert asked["reply_to"] != also["reply_to"]  # each under their own message
    assert not also["buttons"]  # only the reporter rates
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert ticket.households == 2


async def test_unreachable_staff_are_mentioned_in_the_group_and_admins_told(
    runtime: Runtime,
) -> None:
    world = world_of(runtime)
    world.chats.pop(WANG)  # 王管家 never pressed Start
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    posted = await bot_messages_after(world, GROUP_G01, since, count=2)
    mention = posted[1]
    assert mention["text"].startswith("📣 王管家：工单 #1（报修，3号楼）已派给您")
    assert mention["mentions"] == [WANG]
    told = (await bot_messages_after(world, ADMIN, since))[0]
    assert told["text"].startswith("⚠️ 无法私聊联系王管家（wang），工单 #1 的通知未能送达")

    # Another ticket: the group hears again, the admin is not told twice.
    since = world.version
    await world.user_says(NEIGHBOUR, GROUP_G01, "1号楼水管漏水")
    assert len(await bot_messages_after(world, GROUP_G01, since, count=2)) == 2
    assert await quiet_for(world, ADMIN, since)

    # Once they press Start, pings reach them privately and the group is left alone.
    welcome = (await says(world, WANG, WANG, "/start", to=WANG))[0]
    assert welcome["text"].startswith("您好，王管家！您已开通工单通知")
    since = world.version
    await world.user_says(MS_CHEN, GROUP_G01, "2号楼路灯不亮了")
    assert await bot_messages_after(world, WANG, since)
    assert len(await bot_messages_after(world, GROUP_G01, since, count=2, wait=1.0)) == 1


async def test_forged_and_foreign_presses_are_refused(runtime: Runtime) -> None:
    world = world_of(runtime)
    ping = (await says(world, RESIDENT, GROUP_G01, "3号楼电梯坏了", to=WANG))[0]
    not_yours = "工单 #1 目前不由您负责，无法操作。如需协助请联系当前责任人。"
    assert await press(world, LI, ping, "p:1:general") == not_yours
    assert await press(world, LI, ping, "d:1:resolve") == not_yours
    assert await press(world, LI, ping, "t:1:reassign") == not_yours
    assert await press(world, LI, ping, "a:1:li") == not_yours
    assert "不在本社区工作人员名单" in await press(world, RESIDENT, ping, "t:1:plan")
    assert await press(world, WANG, ping, "p:1:huge") == "无法识别的操作"
    assert await press(world, WANG, ping, "x:1:accept") == "无法识别的操作"
    assert await press(world, WANG, ping, "t:1:accept:extra") == "无法识别的操作"
    assert await press(world, WANG, ping, "d:99:resolve") == "没有找到工单 #99。"
    # 办结 before acceptance is refused up front, not after asking for a note.
    assert await press(world, WANG, ping, "t:1:resolve") == "工单 #1 当前状态为“待接单”，不能办结。"
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert (ticket.status.value, ticket.assignee_id) == ("new", "wang")


async def test_a_dialogue_answer_goes_to_the_right_ticket_and_can_be_cancelled(
    runtime: Runtime,
) -> None:
    world = world_of(runtime)
    ping = (await says(world, RESIDENT, GROUP_G01, "3号楼电梯坏了", to=WANG))[0]
    assert (await says(world, WANG, WANG, "随便说一句", to=WANG))[0]["text"].startswith(
        "当前没有进行中的操作"
    )
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:escalate")
    prompt = await said(world, WANG, since, "工单 #1 上报：")
    assert list(buttons(prompt)) == ["直接上报"]
    assert (await says(world, WANG, WANG, "/cancel", to=WANG))[0]["text"] == "已取消。"
    assert (await says(world, WANG, WANG, "需要换整台电机", to=WANG))[0]["text"].startswith(
        "当前没有进行中的操作"
    )
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:escalate")
    await said(world, WANG, since, "工单 #1 上报：")
    since = world.version
    await world.user_says(WANG, WANG, "需要换整台电机，超出物业权限")
    assert (await said(world, WANG, since, "✅"))["text"] == "✅ 工单 #1 已上报。"
    assert ("escalated", "手动上报：需要换整台电机，超出物业权限 → 备岗") in await events(
        runtime, 1
    )
    assert await bot_messages_after(world, LIU, since)


async def test_private_report_asks_where_the_resident_lives_once(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(MS_CHEN, MS_CHEN, "我家厨房水管漏水了，5号楼1单元302")
    asked = await bot_messages_after(world, MS_CHEN, since, count=2)
    assert asked[0]["text"].startswith("收到！为了转给负责您楼栋的网格员")
    assert buttons(asked[1]) == {"幸福社区": "h:xingfu", "和平社区": "h:heping"}
    assert await press(world, MS_CHEN, asked[1], "h:nowhere") == "无法识别的选项，请重新发送 /home"

    since = world.version
    await world.user_presses(MS_CHEN, MS_CHEN, asked[1]["message_id"], "h:xingfu")
    which = (await bot_messages_after(world, MS_CHEN, since))[0]
    assert which["text"] == "幸福社区：请问您住在几号楼？"
    assert list(buttons(which))[:3] == ["1号楼", "2号楼", "3号楼"]
    assert len(buttons(which)) == 10

    since = world.version
    await world.user_presses(MS_CHEN, MS_CHEN, which["message_id"], "h:xingfu:5")
    assert await said(world, MS_CHEN, since, "已记下：幸福社区5号楼")
    assert await said(world, MS_CHEN, since, "已收到您的报修，工单号 #1（5号楼1单元）")
    ping = (await bot_messages_after(world, CHEN, since))[0]  # G02's property manager
    assert "位置：5号楼1单元302室" in ping["text"]

    # Updates come back privately; the groups hear nothing about it.
    since = world.version
    await world.user_presses(CHEN, CHEN, ping["message_id"], "t:1:accept")
    accepted = (await bot_messages_after(world, MS_CHEN, since))[0]
    assert accepted["text"] == "#1 物业陈管家已接单，正在了解情况。"
    assert await quiet_for(world, GROUP_G01, since, 0.2)
    assert await quiet_for(world, -1001000000002, since, 0.0)

    # The home is remembered: the next report goes straight in.
    second = await says(world, MS_CHEN, MS_CHEN, "楼道灯不亮了", to=MS_CHEN)
    assert second[0]["text"].startswith("已收到您的报修，工单号 #2（5号楼）")
    chatter = await says(world, MS_CHEN, MS_CHEN, "谢谢你们", to=MS_CHEN)
    assert chatter[0]["text"].startswith("您好！如需报修")


async def test_staff_say_a_message_was_no_request_and_the_admins_see_it(runtime: Runtime) -> None:
    """分类有误 → 不是诉求: the ticket is withdrawn, the resident told kindly, the message goes
    to the review queue (though the classifier was sure of it), and the admin page shows it."""
    world = world_of(runtime)
    ping = (await says(world, RESIDENT, GROUP_G01, "3号楼电梯坏了", to=WANG))[0]
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:relabel")
    asked = await said(world, WANG, since, "工单 #1 目前判为“报修”")
    assert list(buttons(asked)) == ["纠纷", "服务", "不是诉求"]  # not the category it has
    assert await press(world, WANG, asked, "l:1:bogus") == "无法识别的操作"
    assert (
        await press(world, NEIGHBOUR, asked, "l:1:none")
        == "抱歉，您不在本社区工作人员名单中，无法处理工单。"
    )

    since = world.version
    toast = await press(world, WANG, asked, "l:1:none")
    assert toast.startswith("✅ 工单 #1 已撤销（不是诉求），已告知居民。")
    told = await said(world, GROUP_G01, since, "您好，工作人员看过了")
    assert "工单 #1 已撤销" in told["text"]
    assert told["reply_to"] is not None
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert ticket.status.value == "cancelled"
    assert ("relabelled", "报修 → 不是诉求（王管家）") in await events(runtime, 1)
    # Pressing again on the old card: the ticket is no longer open.
    assert "不能更正分类" in await press(world, WANG, asked, "l:1:dispute")

    queue = await runtime.core.keywords.review_queue(0.6)
    relabelled = [m for m in queue if m.ticket_id == 1]
    assert [(m.text, m.relabel) for m in relabelled] == [("3号楼电梯坏了", "none")]
    assert relabelled[0].confidence >= 0.6  # there because staff said so, not for doubt
    now = runtime.clock.now()
    figures = await runtime.core.figures.dashboard(now - timedelta(days=1), now + timedelta(days=1))
    assert (figures.total.cancelled, figures.total.received) == (1, 0)  # not counted as received


async def test_staff_re_file_a_repair_as_a_dispute_and_it_moves_to_the_grid_worker(
    runtime: Runtime,
) -> None:
    world = world_of(runtime)
    ping = (await says(world, RESIDENT, GROUP_G01, "3号楼电梯坏了", to=WANG))[0]
    since = world.version
    await world.user_presses(WANG, WANG, ping["message_id"], "t:1:relabel")
    asked = await said(world, WANG, since, "工单 #1 目前判为“报修”")
    since = world.version
    toast = await press(world, WANG, asked, "l:1:dispute")
    assert toast.startswith("✅ 工单 #1 已改为“纠纷”，现由李网格负责。")
    card = (await bot_messages_after(world, LI, since))[0]  # disputes go to the grid worker
    assert "🔁 王管家将工单类别由“报修”更正为“纠纷”，转给您处理\n工单 #1｜纠纷" in card["text"]
    assert "分类有误" in buttons(card)
    assert await quiet_for(world, GROUP_G01, since, 0.2)  # the resident is not bothered
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert (ticket.category.value, ticket.assignee_id, ticket.status.value) == (
        "dispute",
        "li",
        "new",
    )
    assert ("relabelled", "报修 → 纠纷（王管家）；转给李网格") in await events(runtime, 1)
    # 王管家 no longer holds it; 李网格 can act on it.
    assert "#1" in await press(world, WANG, ping, "t:1:accept")
    assert (await press(world, LI, card, "t:1:accept")).startswith("✅ 工单 #1 已接单。")
