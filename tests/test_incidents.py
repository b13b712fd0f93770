"""工单预警: reports of the same thing piling up become one incident, handled as one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.config import CommunityFile
from bot.core import Core, build_core
from bot.domain import NotAllowed, TicketStatus
from bot.services.intake import IncomingMessage
from bot.services.tickets import staff_actor
from storage.uow import SqlUnitOfWorkFactory
from tests.helpers import GROUP_G01, RESIDENT, without_me_too
from tests.test_outbox import Telegram

ZHAO, QIAN, WANG = 20001, 20002, 10002
GROUP_G02, GROUP_G03 = -1001000000002, -1001000000003


@pytest.fixture
async def core_and_telegram(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock
) -> tuple[Core, Telegram]:
    telegram = Telegram(clock)
    core = await build_core(uows, without_me_too(demo_file), clock, telegram)
    return core, telegram


async def post(core: Core, text: str, n: int, chat: int = GROUP_G01) -> None:
    await core.intake.receive_group_message(
        IncomingMessage(chat, n, RESIDENT + n, f"居民{n}", text, core.clock.now())
    )


async def test_three_reports_in_one_building_open_one_incident(
    core_and_telegram: tuple[Core, Telegram], clock: FakeClock
) -> None:
    core, telegram = core_and_telegram
    await post(core, "3号楼停水了", 1)
    clock.advance(timedelta(minutes=4))
    await post(core, "3号楼2单元也停水了，什么时候来水", 2)
    assert telegram.texts(ZHAO) == []  # two are not yet a burst
    clock.advance(timedelta(minutes=6))
    await post(core, "3号楼怎么停水了", 3)
    alert = telegram.texts(ZHAO)
    assert len(alert) == 1
    assert alert[0].startswith(
        "🔴 工单预警：幸福社区3号楼15分钟内收到 3 起报修（停水）：#1 #2 #3。"
    )
    assert "预警事件 #1" in alert[0]
    button = next(n for _, n in telegram.arrived if n.chat_id == ZHAO).buttons
    assert [(b.label, b.data) for b in button] == [("事件办结", "i:1:resolve")]
    notices = [t for t in telegram.texts(GROUP_G01) if t.startswith("📢")]
    assert notices == [
        "📢 已知悉3号楼停水，社区和网格员正在处理，无需重复报告。"
        "处理进展会在这里告诉大家，谢谢大家！"
    ]

    # A fourth report joins quietly; another building and a service question stay apart.
    clock.advance(timedelta(minutes=2))
    await post(core, "3号楼2单元停水，一直没水", 4)
    await post(core, "3号楼楼道灯坏了", 5)  # the same building, another thing
    await post(core, "社保卡在哪里补办", 6)
    assert len(telegram.texts(ZHAO)) == 1
    assert len([t for t in telegram.texts(GROUP_G01) if t.startswith("📢")]) == 1
    async with core.uows() as uow:
        grouped = [t.id for t in await uow.incidents.open_tickets(1)]
        history = [e.note for e in await uow.tickets.events(4)]
        lamp = await uow.tickets.get(5)
    assert grouped == [1, 2, 3, 4]
    assert lamp is not None
    assert lamp.incident_id is None
    assert "归入预警事件 #1" in history

    # Resolved as one: only community staff (or street, admins) may; every resident is asked.
    wang = core.directory.current.member("wang")
    zhao = core.directory.current.member("zhao")
    assert wang is not None
    assert zhao is not None
    with pytest.raises(NotAllowed):
        await core.incidents.resolve(1, staff_actor(wang))
    telegram.arrived.clear()
    incident, count = await core.incidents.resolve(
        1, staff_actor(zhao), "主水管已抢修完毕，恢复供水"
    )
    assert count == 4
    asked = [n for _, n in telegram.arrived if n.chat_id == GROUP_G01]
    assert [n.ticket_id for n in asked] == [1, 2, 3, 4]
    assert asked[0].text == "#1 已办结：主水管已抢修完毕，恢复供水。您对处理结果满意吗？"
    assert asked[0].reply_to == 1
    async with core.uows() as uow:
        statuses = {(await uow.tickets.get(n)).status for n in (1, 2, 3, 4)}  # type: ignore[union-attr]
        other = await uow.tickets.get(5)
        resolved = await uow.incidents.get(1)
    assert statuses == {TicketStatus.RESOLVED}
    assert other is not None
    assert other.status == TicketStatus.NEW
    assert resolved is not None
    assert resolved.resolved_at == clock.now()
    # A new report after it was resolved may open a new incident later; this one is done.
    assert (await core.incidents.resolve(1, staff_actor(zhao)))[1] == 0
    assert incident.building == "3"


async def test_five_reports_across_the_community_open_a_community_incident(
    core_and_telegram: tuple[Core, Telegram], clock: FakeClock
) -> None:
    core, telegram = core_and_telegram
    for n, (building, chat) in enumerate(
        [("1", GROUP_G01), ("2", GROUP_G01), ("4", GROUP_G02), ("5", GROUP_G02), ("7", GROUP_G03)],
        start=1,
    ):
        await post(core, f"{building}号楼停电了", n, chat)
        clock.advance(timedelta(minutes=2))
    alert = telegram.texts(ZHAO)
    assert len(alert) == 1
    assert alert[0].startswith("🔴 工单预警：幸福社区多处15分钟内收到 5 起报修（停电）")
    for chat in (GROUP_G01, GROUP_G02, GROUP_G03):
        assert [t for t in telegram.texts(chat) if t.startswith("📢 已知悉小区多处停电")], chat
    assert telegram.texts(QIAN) == []  # another community's staff are not alerted


async def test_reports_spread_over_more_than_the_window_open_nothing(
    core_and_telegram: tuple[Core, Telegram], clock: FakeClock
) -> None:
    core, telegram = core_and_telegram
    for n in range(1, 4):
        await post(core, "3号楼停水了", n)
        clock.advance(timedelta(minutes=8))
    assert telegram.texts(ZHAO) == []
