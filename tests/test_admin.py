"""Issue 6: admins change routing words live (commands and services), known answers told at
once, the figures and the weekly note."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.config import CommunityFile
from bot.core import Core, build_core
from bot.domain import DISTRICT, Rating, TicketStatus, Tier
from bot.services import figures as figures_module
from bot.services.intake import IncomingMessage, Outcome
from bot.services.keywords import BadKeyword
from bot.services.tickets import resident_actor, staff_actor
from handlers.runtime import Runtime
from storage.uow import SqlUnitOfWorkFactory
from tests.helpers import GROUP_G01, RESIDENT, bot_messages_after, toast_for, world_of
from tests.test_lifecycle import Recorder

ADMIN, LI, WANG = 90001, 10001, 10002
MACHINE = "老机器又撂挑子了"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def core(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock, recorder: Recorder
) -> Core:
    return await build_core(uows, demo_file, clock, recorder)


async def say(core: Core, text: str, message_id: int, sender: int = RESIDENT) -> Outcome:
    result = await core.intake.receive_group_message(
        IncomingMessage(GROUP_G01, message_id, sender, "居民", text, core.clock.now())
    )
    return result.outcome


async def test_an_admin_teaches_the_bot_a_word_and_can_take_it_back(core: Core) -> None:
    """STORIES.md scene 8: try it, what-if, save, it works at once, audit, roll back."""
    assert await say(core, MACHINE, 1) is Outcome.NOT_REQUEST
    assert await say(core, "那台老机器撂挑子好几天了", 2) is Outcome.NOT_REQUEST
    assert await say(core, "谢谢大家", 3) is Outcome.NOT_REQUEST
    assert (await core.keywords.try_text("xingfu", MACHINE)).category == "none"

    # Weight 4, the admins' default (the web form offers it): a word that decides alone, so the
    # story holds by design. At 3 it hung on the wording model's pull on this text, which moves
    # with every retraining (-0.5 after rounds 134-136 left it 0.007 under the bar).
    whatif = await core.keywords.what_if("xingfu", "repair", "撂挑子", weight=4.0)
    assert whatif.looked_at == 3
    assert sorted(r.text for r in whatif.new_tickets) == sorted(
        [MACHINE, "那台老机器撂挑子好几天了"]
    )
    assert whatif.stopped == []
    # A preview changes nothing.
    assert (await core.keywords.try_text("xingfu", MACHINE)).category == "none"

    change = await core.keywords.put("staff:admin", "xingfu", "repair", "撂挑子", weight=4.0)
    assert change is not None
    assert change.before is None
    assert change.after == (4.0, True)
    result = await core.keywords.try_text("xingfu", MACHINE)
    assert result.category == "repair"
    assert any(e.word == "撂挑子" for e in result.evidence)
    assert await say(core, MACHINE, 4) is Outcome.OPENED
    # Only this community: the other one still reads it as chatter.
    assert (await core.keywords.try_text("heping", MACHINE)).category == "none"

    history = await core.keywords.history()
    assert [(c.actor, c.scope, c.word, c.before, c.after) for c in history] == [
        ("staff:admin", "xingfu", "撂挑子", None, (4.0, True))
    ]
    undo = await core.keywords.rollback("staff:admin", history[0].id)
    assert undo is not None
    assert undo.after is None
    assert undo.note == f"撤销 #{history[0].id}"
    assert (await core.keywords.try_text("xingfu", MACHINE)).category == "none"
    assert await core.keywords.rollback("staff:admin", history[0].id) is None  # already so


async def test_a_community_can_switch_off_a_district_word(core: Core) -> None:
    await core.keywords.put("staff:admin", DISTRICT, "repair", "撂挑子", weight=4.0)
    assert (await core.keywords.try_text("heping", MACHINE)).category == "repair"
    await core.keywords.put("staff:admin", "heping", "repair", "撂挑子", enabled=False)
    assert (await core.keywords.try_text("heping", MACHINE)).category == "none"
    assert (await core.keywords.try_text("xingfu", MACHINE)).category == "repair"
    own = await core.keywords.entries("heping")
    assert [(e.word, e.enabled) for e in own] == [("撂挑子", False)]


@pytest.mark.parametrize(
    ("category", "word", "weight", "reason"),
    [
        ("weather", "下雨", 2.0, "category"),
        ("repair", "   ", 2.0, "word"),
        ("repair", "x" * 101, 2.0, "word"),
        ("repair", "re:(", 2.0, "word"),
        ("repair", "a&", 2.0, "word"),
        ("repair", "漏水", 0.0, "weight"),
        ("repair", "漏水", -1.0, "weight"),
        ("repair", "漏水", float("nan"), "weight"),
        ("repair", "漏水", 1000.0, "weight"),
    ],
)
async def test_bad_keyword_edits_are_refused_and_change_nothing(
    core: Core, category: str, word: str, weight: float, reason: str
) -> None:
    with pytest.raises(BadKeyword) as caught:
        await core.keywords.put("staff:admin", DISTRICT, category, word, weight=weight)
    assert caught.value.reason == reason
    assert await core.keywords.history() == []


async def test_unknown_scope_and_missing_rules_are_refused(core: Core) -> None:
    with pytest.raises(BadKeyword) as caught:
        await core.keywords.put("staff:admin", "nowhere", "repair", "漏水", weight=2)
    assert caught.value.reason == "scope"
    with pytest.raises(BadKeyword) as caught:
        await core.keywords.delete("staff:admin", DISTRICT, "repair", "从来没有这个词")
    assert caught.value.reason == "missing"
    with pytest.raises(BadKeyword):
        await core.keywords.rollback("staff:admin", 999)


async def test_yaml_export_and_import_round_trip_all_or_nothing(core: Core) -> None:
    exported = await core.keywords.export_yaml(DISTRICT)
    assert exported.startswith("# keywords of the district\nkeywords:\n  repair:\n")
    report = await core.keywords.import_yaml("staff:admin", "heping", exported)
    district = [e for e in await core.keywords.entries(DISTRICT) if e.enabled]
    assert report.added == len(district)
    assert report.changed == 0
    again = await core.keywords.import_yaml("staff:admin", "heping", exported)
    assert (again.added, again.changed, again.unchanged) == (0, 0, len(district))

    before = len(await core.keywords.history(limit=100_000))
    for bad in ("keywords: [1, 2", "- just a list", "keywords:\n  repair: {好词: 2, 坏词: -5}"):
        with pytest.raises(BadKeyword) as caught:
            await core.keywords.import_yaml("staff:admin", "heping", bad)
        assert caught.value.reason in ("yaml", "weight")
    assert len(await core.keywords.history(limit=100_000)) == before
    assert "好词" not in {e.word for e in await core.keywords.entries("heping")}


async def test_known_answer_is_told_at_once_and_counted_apart(
    core: Core, recorder: Recorder
) -> None:
    result = await core.intake.receive_group_message(
        IncomingMessage(GROUP_G01, 7, RESIDENT, "张阿姨", "请问居住证明怎么开？", core.clock.now())
    )
    assert result.outcome is Outcome.OPENED
    assert result.ticket is not None
    assert result.reply is not None
    assert "工单号 #1" in result.reply
    assert "党群服务中心" in result.reply
    assert [(b.label, b.data) for b in result.buttons] == [("已解决，谢谢", "x:1")]
    assert result.ticket.answered
    queued = recorder.take()  # delivered inline: no sender loop runs in these tests
    assert [(n.chat_id, n.kind, n.buttons) for n in queued[:1]] == [
        (GROUP_G01, "ack", result.buttons)
    ]
    assert queued[0].text == result.reply
    # A district answer serves communities without their own.
    answer = await core.answers.match("heping", "老年卡在哪办")
    assert answer is not None
    assert answer.scope == DISTRICT

    with pytest.raises(Exception, match="may not"):
        await core.tickets.settled_by_answer(1, resident_actor(5000002))
    ticket = await core.tickets.settled_by_answer(1, resident_actor(RESIDENT))
    assert ticket.status is TicketStatus.CLOSED
    assert ticket.rating is Rating.SATISFIED
    assert any("居民确认告知内容已解决问题" in n.text for n in recorder.take())
    start, end = core.figures.local_range(1)
    board = await core.figures.dashboard(start, end)
    assert (board.total.answered, board.total.received, board.total.resolved) == (1, 1, 1)


async def test_figures_count_completion_on_time_and_satisfaction(
    core: Core, clock: FakeClock
) -> None:
    wang = core.directory.current.member("wang")
    assert wang is not None
    staff = staff_actor(wang)
    # #1: on time everywhere, satisfied.
    await say(core, "3号楼电梯坏了", 1)
    await core.tickets.accept(1, staff)
    await core.tickets.plan(1, staff, Tier.GENERAL, "马上派师傅")
    await core.tickets.resolve(1, staff)
    await core.tickets.rate(1, resident_actor(RESIDENT), Rating.SATISFIED)
    # #2: accepted late (after 5 minutes), still open.
    await say(core, "2号楼楼道灯不亮了", 2)
    clock.advance(timedelta(minutes=7))
    await core.tickets.accept(2, staff)
    # #3: withdrawn by the resident: not counted as received.
    await say(core, "1号楼水管漏水了", 3)
    await core.tickets.cancel(3, resident_actor(RESIDENT), "不用了")

    start, end = core.figures.local_range(7)
    board = await core.figures.dashboard(start, end)
    total = board.total
    assert (total.received, total.resolved, total.cancelled) == (2, 1, 1)
    assert total.completion.value == 0.5
    assert (total.on_time["understand"].part, total.on_time["understand"].whole) == (1, 2)
    assert total.on_time["resolve:general"].value == 1.0
    assert total.satisfaction.value == 1.0
    assert sum(sum(day.values()) for day in board.by_day.values()) == 2
    assert set(board.by_grid) == {"G01"}
    assert [t.id for t, _ in board.open_tickets] == [2]
    assert board.by_staff["wang"].received == 2
    assert board.open_count == 1


async def test_dashboard_lists_the_most_pressing_open_tickets_and_counts_them_all(
    core: Core, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A district has ~1,700 open tickets: the page lists the most pressing ones and the
    count says how many there are in all."""
    monkeypatch.setattr(figures_module, "OPEN_LISTED", 2)
    for n, text in enumerate(("3号楼电梯坏了", "2号楼楼道灯不亮了", "1号楼水管漏水了"), 1):
        await say(core, text, n)
        clock.advance(timedelta(minutes=1))
    board = await core.figures.dashboard(*core.figures.local_range(1))
    assert board.open_count == 3
    listed = [t for t, _ in board.open_tickets]
    async with core.uows() as uow:
        everything = await uow.tickets.all_open()
    assert len(everything) == 3
    assert [t.id for t in listed] == [t.id for t in everything[:2]]
    dues = [t.resolve_due_at for t in everything]
    assert None not in dues
    assert dues == sorted(dues)  # type: ignore[type-var]


async def test_weekly_note_goes_to_each_group_once_a_week(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    # The fake clock starts on Monday 2026-11-23, 19:00 in Shanghai: last week had nothing.
    clock.advance(timedelta(days=-3))  # Friday: report something this week
    await say(core, "3号楼电梯坏了", 1)
    recorder.take()
    clock.advance(timedelta(days=3))  # Monday again, after 09:00
    assert await core.weekly.post_if_due() == 1
    notes = recorder.take()
    assert [n.chat_id for n in notes] == [GROUP_G01]
    assert notes[0].text.startswith("📊 上周收到诉求 1 件，办结 0 件，按时 0 件，满意 0 件。")
    assert await core.weekly.post_if_due() == 0  # once per week, restarts included
    clock.advance(timedelta(days=7))
    await say(core, "5号楼楼道灯坏了", 2)
    recorder.take()
    clock.advance(timedelta(days=7))
    # Two processes deciding at the same moment: one posts, the other finds it done.
    posted = await asyncio.gather(core.weekly.post_if_due(), core.weekly.post_if_due())
    assert sorted(posted) == [0, 1]
    assert len(recorder.take()) == 1
    assert await core.weekly.post_if_due() == 0  # nothing reported in that week


async def test_admin_commands_in_private_chat(runtime: Runtime) -> None:
    world = world_of(runtime)

    async def command(user: int, text: str) -> str:
        since = world.version
        await world.user_says(user, user, text)
        found = await bot_messages_after(world, user, since)
        assert found, f"no answer to {text!r}"
        return str(found[0]["text"])

    assert (await command(ADMIN, "/kw add 报修 撂挑子 2.5")).startswith("✅ 已添加【报修】撂挑子")
    assert "撂挑子 2.5" in await command(ADMIN, "/kw list repair")
    assert (await command(ADMIN, "/kw add repair 撂挑子 4")).startswith("✅ 已修改")
    assert "类别：报修" in await command(ADMIN, f"/classify {MACHINE}")
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, MACHINE)
    assert "工单号 #1" in (await bot_messages_after(world, GROUP_G01, since))[0]["text"]
    assert (await command(ADMIN, "/kw del repair 撂挑子")).startswith("🗑 已删除【报修】撂挑子")
    assert "类别：非诉求" in await command(ADMIN, f"/classify {MACHINE}")
    assert "未知类别" in await command(ADMIN, "/kw add weather 下雨")
    assert "权重需为" in await command(ADMIN, "/kw add repair 漏 abc")
    assert "用法" in await command(ADMIN, "/kw")
    assert "近7天：收到诉求 1 件" in await command(ADMIN, "/report")
    # Staff who are not admins, and residents, are refused.
    assert await command(LI, "/kw list") == "此命令仅限管理员使用。"
    assert await command(RESIDENT, "/classify 电梯坏了") == "此命令仅限管理员使用。"
    history = await runtime.core.keywords.history()
    assert [c.actor for c in history] == ["staff:admin"] * 3


async def test_settling_by_answer_through_the_group_button(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "社保卡丢了在哪里补办")
    reply = (await bot_messages_after(world, GROUP_G01, since))[0]
    assert "社保窗口" in reply["text"]
    data = reply["buttons"][0][0]["data"]
    since = world.version
    await world.user_presses(5000002, GROUP_G01, reply["message_id"], data)
    assert await toast_for(world, 5000002, since) == "只有提出诉求的居民本人可以确认。"
    since = world.version
    await world.user_presses(RESIDENT, GROUP_G01, reply["message_id"], data)
    assert (await toast_for(world, RESIDENT, since)).startswith("好的，工单 #1 已关闭")
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.get(1)
    assert ticket is not None
    assert ticket.status is TicketStatus.CLOSED
    assert ticket.answered
