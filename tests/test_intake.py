"""Intake service: requests become tickets with a Chinese acknowledgement; the rest is quiet."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.clock import FakeClock
from bot.config import CommunityFile
from bot.core import Core, build_core
from bot.domain import Category
from bot.services.intake import IncomingMessage, Outcome
from storage.uow import SqlUnitOfWorkFactory

GROUP_G01 = -1001000000001  # 幸福小区1-3号楼业主群: G01, property 王管家, grid worker 李网格
GROUP_G03 = -1001000000003  # 幸福里7-10号楼: G03, no property company


@pytest.fixture
async def core(uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock) -> Core:
    return await build_core(uows, demo_file, clock)


def said(text: str, chat_id: int = GROUP_G01, message_id: int = 1) -> IncomingMessage:
    return IncomingMessage(
        chat_id=chat_id,
        message_id=message_id,
        sender_id=5000001,
        sender_name="张阿姨",
        text=text,
        sent_at=datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
    )


async def test_repair_opens_a_ticket_for_the_property_manager(core: Core, clock: FakeClock) -> None:
    result = await core.intake.receive_group_message(said("3号楼电梯坏了"))
    assert result.outcome is Outcome.OPENED
    assert result.ticket is not None
    ticket = result.ticket
    assert ticket.category is Category.REPAIR
    assert ticket.assignee_id == "wang"
    assert ticket.created_at == clock.now()
    assert ticket.location == {"building": "3"}
    assert (
        result.reply
        == f"已收到您的报修，工单号 #{ticket.id}（3号楼）。物业王管家将在5分钟内联系您。"
    )
    async with core.uows() as uow:
        stored = await uow.tickets.by_message(GROUP_G01, 1)
        events = await uow.tickets.events(ticket.id)
    assert stored == ticket
    assert [e.kind for e in events] == ["opened", "assigned"]
    assert events[1].note == "网格G01物业管家：王管家"


@pytest.mark.parametrize(
    ("text", "category", "who"),
    [
        ("楼上半夜装修吵死了，天天扰民", Category.DISPUTE, "网格员李网格"),
        ("社保卡在哪里补办？", Category.SERVICE, "网格员李网格"),
    ],
)
async def test_disputes_and_services_go_to_the_grid_worker(
    core: Core, text: str, category: Category, who: str
) -> None:
    result = await core.intake.receive_group_message(said(text))
    assert result.ticket is not None
    assert result.ticket.category is category
    assert result.ticket.assignee_id == "li"
    assert result.reply is not None
    assert who in result.reply


async def test_grid_without_property_sends_repairs_to_the_grid_worker(core: Core) -> None:
    result = await core.intake.receive_group_message(said("8号楼下水道堵了", chat_id=GROUP_G03))
    assert result.ticket is not None
    assert result.ticket.assignee_id == "zhou"


async def test_building_named_in_text_overrides_the_group_grid(core: Core) -> None:
    # Posted in the 1-3号楼 group, but building 5 belongs to grid G02 (陈管家).
    result = await core.intake.receive_group_message(said("5号楼楼道灯不亮了"))
    assert result.ticket is not None
    assert result.ticket.grid_id == "G02"
    assert result.ticket.assignee_id == "chen"


@pytest.mark.parametrize(
    "text", ["谢谢王师傅！", "大家早上好", "明天停水通知：9点到12点", "团购鸡蛋接龙"]
)
async def test_chatter_gets_no_ticket_and_no_reply(core: Core, text: str) -> None:
    result = await core.intake.receive_group_message(said(text))
    assert result.outcome is Outcome.NOT_REQUEST
    assert result.reply is None
    async with core.uows() as uow:
        assert await uow.tickets.by_message(GROUP_G01, 1) is None


async def test_unknown_group_is_ignored(core: Core) -> None:
    result = await core.intake.receive_group_message(said("3号楼电梯坏了", chat_id=-999))
    assert result.outcome is Outcome.UNKNOWN_GROUP
    assert result.reply is None


async def test_the_same_message_twice_opens_one_ticket(core: Core) -> None:
    first = await core.intake.receive_group_message(said("3号楼电梯坏了"))
    second = await core.intake.receive_group_message(said("3号楼电梯坏了"))
    assert first.outcome is Outcome.OPENED
    assert second.outcome is Outcome.DUPLICATE
    assert second.ticket == first.ticket
    assert second.reply is None


async def test_a_me_too_message_twice_joins_once(core: Core) -> None:
    opened = await core.intake.receive_group_message(said("3号楼电梯坏了"))
    neighbour = replace(said("3号楼电梯又坏了", message_id=2), sender_id=5000002)
    joined = await core.intake.receive_group_message(neighbour)
    again = await core.intake.receive_group_message(neighbour)  # Telegram sent it again
    assert (opened.outcome, joined.outcome, again.outcome) == (
        Outcome.OPENED,
        Outcome.ME_TOO,
        Outcome.DUPLICATE,
    )
    assert opened.ticket is not None
    assert again.ticket is not None
    assert again.ticket.id == opened.ticket.id  # found through its report
    assert again.reply is None
    async with core.uows() as uow:
        ticket = await uow.tickets.get(opened.ticket.id)
        reports = await uow.reports.for_ticket(opened.ticket.id)
        assert await uow.reports.add(reports[0]) is False  # attached already
    assert ticket is not None
    assert ticket.households == 2
    assert [r.message_id for r in reports] == [2]


async def test_forged_characters_are_stored_not_crashed_on(core: Core) -> None:
    message = said("3号楼电梯坏了\x00\ud800！")
    result = await core.intake.receive_group_message(message)
    assert result.outcome is Outcome.OPENED
    async with core.uows() as uow:
        stored = await uow.tickets.by_message(GROUP_G01, 1)
    assert stored is not None
    assert stored.text == "3号楼电梯坏了?！"


async def test_urgent_acknowledgement_says_help_is_coming(core: Core) -> None:
    result = await core.intake.receive_group_message(said("5号楼电梯困人了！！"))
    assert result.ticket is not None
    assert result.ticket.urgent
    assert result.reply is not None
    assert result.reply.startswith("🚨 紧急情况已收到")


async def test_group_reply_never_repeats_room_or_phone(core: Core) -> None:
    result = await core.intake.receive_group_message(
        said("3号楼2单元501厕所漏水了，电话13812345678")
    )
    assert result.ticket is not None
    assert result.reply is not None
    assert "（3号楼2单元）" in result.reply
    assert "501" not in result.reply
    assert "13812345678" not in result.reply
    assert result.ticket.location["room"] == "501"  # kept for staff, not shown in the group


async def test_very_long_message_is_classified_and_stored_truncated(core: Core) -> None:
    text = "3号楼电梯坏了，" + "真的很着急" * 2000
    result = await core.intake.receive_group_message(said(text))
    assert result.outcome is Outcome.OPENED
    assert result.ticket is not None
    assert len(result.ticket.text) == 4000


async def test_keyword_changes_take_effect_after_a_reload(core: Core) -> None:
    assert (await core.intake.receive_group_message(said("老家伙又趴窝了"))).outcome is (
        Outcome.NOT_REQUEST
    )
    async with core.uows() as uow:
        await uow.keywords.add_many("xingfu", {"repair": {"趴窝": 4.0}}, core.clock.now())
        await uow.commit()
    await core.rules.reload(["xingfu"])
    result = await core.intake.receive_group_message(said("老家伙又趴窝了", message_id=2))
    assert result.outcome is Outcome.OPENED
    # the other community keeps its own rules
    assert core.rules.rules_for("heping").words("repair").get("趴窝") is None


async def test_long_messages_are_classified_off_the_event_loop(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    offloaded: list[int] = []
    real = asyncio.to_thread

    async def spy(function, *args):  # type: ignore[no-untyped-def]
        offloaded.append(len(args[0]))
        return await real(function, *args)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    await core.intake.receive_group_message(said("3号楼电梯坏了"))
    assert offloaded == []
    long_text = "3号楼电梯坏了" + "。" * 500
    await core.intake.receive_group_message(said(long_text, message_id=2))
    assert offloaded == [len(long_text)]
