"""The 5321 engine: every transition, deadline, reminder, escalation and restart catch-up,
driven by a fake clock so whole days run in milliseconds."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from bot.clock import FakeClock
from bot.config import CommunityFile
from bot.core import Core, build_core
from bot.directory import StaffMember
from bot.domain import (
    TRANSITIONS,
    Action,
    AtTopLevel,
    Colour,
    Delivery,
    DeliveryResult,
    IllegalTransition,
    NotAllowed,
    Notice,
    Rating,
    StaleTicket,
    Ticket,
    TicketStatus,
    Tier,
    Timer,
)
from bot.services import sla
from bot.services.intake import IncomingMessage
from bot.services.tickets import BOT_ACTOR, resident_actor, staff_actor
from storage.uow import SqlUnitOfWorkFactory
from tests.helpers import without_me_too

GROUP_G01 = -1001000000001
RESIDENT = 5000001
WANG, LIU, ZHAO, SUN, LI = 10002, 10003, 20001, 30001, 10001  # Telegram ids in the demo file


class Recorder:
    """A notifier that keeps what it was asked to send; ``fail`` makes deliveries fail."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []
        self.fail = False
        self.refusing: set[int] = set()  # chats that refuse for good (never pressed Start)

    async def deliver(self, notice: Notice) -> DeliveryResult:
        self.sent.append(notice)
        if notice.chat_id in self.refusing:
            return DeliveryResult(Delivery.REFUSED, reason="Forbidden: bot can't initiate")
        return DeliveryResult(Delivery.FAILED if self.fail else Delivery.SENT)

    def to(self, chat_id: int) -> list[str]:
        return [n.text for n in self.sent if n.chat_id == chat_id]

    def take(self) -> list[Notice]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def core(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock, recorder: Recorder
) -> Core:
    return await build_core(uows, without_me_too(demo_file), clock, recorder)


async def report(core: Core, text: str = "3号楼电梯坏了", message_id: int = 1) -> Ticket:
    result = await core.intake.receive_group_message(
        IncomingMessage(GROUP_G01, message_id, RESIDENT, "张阿姨", text, core.clock.now())
    )
    assert result.ticket is not None
    return result.ticket


async def run_until(core: Core, clock: FakeClock, until: datetime) -> None:
    """Move the fake clock to each due timer in turn, firing it exactly on time."""
    while (due := await core.scheduler.next_due()) is not None and due <= until:
        if due > clock.now():
            clock.advance(due - clock.now())
        await core.scheduler.run_due()
    if until > clock.now():
        clock.advance(until - clock.now())


async def ticket_now(core: Core, ticket_id: int) -> Ticket:
    async with core.uows() as uow:
        ticket = await uow.tickets.get(ticket_id)
    assert ticket is not None
    return ticket


async def kinds(core: Core, ticket_id: int) -> list[str]:
    async with core.uows() as uow:
        return [e.kind for e in await uow.tickets.events(ticket_id)]


def member(core: Core, staff_id: str) -> StaffMember:
    found = core.directory.current.member(staff_id)
    assert found is not None
    return found


# -- opening ------------------------------------------------------------------------------


async def test_a_new_ticket_carries_its_deadlines_and_pings_the_assignee(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    ticket = await report(core)
    start = clock.now()
    assert ticket.accept_due_at == start + timedelta(minutes=5)
    assert ticket.resolve_due_at == start + timedelta(hours=2)  # 电梯: a major problem
    pings = recorder.to(WANG)
    assert len(pings) == 1
    assert f"工单 #{ticket.id}" in pings[0]
    assert "请在 19:05 前接单" in pings[0]  # 11:00 UTC is 19:00 in Shanghai
    assert "3号楼" in pings[0]
    ping = next(n for n in recorder.sent if n.chat_id == WANG)
    assert [b.label for b in ping.buttons] == [
        "接单",
        "处理方案",
        "办结",
        "上报",
        "转派",
        "分类有误",
    ]
    async with core.uows() as uow:
        pending = await uow.timers.pending(ticket.id)
    assert [(t.kind, t.stage, t.due_at - start) for t in pending] == [
        ("remind", "understand", timedelta(minutes=4)),
        ("breach", "understand", timedelta(minutes=5)),
        ("day_end", "", timedelta(hours=1)),  # 20:00 local
        ("remind", "resolve", timedelta(minutes=96)),
        ("breach", "resolve", timedelta(hours=2)),
    ]


async def test_urgent_tickets_reach_the_community_at_once_and_are_red(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    ticket = await report(core, "3号楼电梯困人了！！")
    assert ticket.urgent
    assert len(recorder.to(WANG)) == 1
    assert len(recorder.to(ZHAO)) == 1
    assert "紧急" in recorder.to(ZHAO)[0]
    assert sla.colour(ticket, core.directory.current.sla, clock.now()) is Colour.RED


def test_phone_numbers_are_masked_in_the_quote() -> None:
    from bot.texts.staff import quote

    assert quote("电梯坏了 联系13812345678") == "电梯坏了 联系138****5678"


# -- reminders and escalation -------------------------------------------------------------


async def test_several_tickets_at_once_each_acted_on_once_and_in_order(
    core: Core, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler acting on several tickets at once (as on PostgreSQL): every due timer
    is acted on once, and one ticket's timers still go one after another, earliest first."""
    core.scheduler.concurrency = 4
    tickets = [await report(core, f"{n}号楼电梯坏了", message_id=n) for n in range(1, 8)]
    order: list[tuple[int, str]] = []
    running: set[int] = set()
    overlapped = False
    fire = core.tickets.fire

    async def watched(timer: Timer) -> str:
        nonlocal overlapped
        order.append((timer.ticket_id, timer.kind))
        assert timer.ticket_id not in running, "one ticket's timers overlapped"
        running.add(timer.ticket_id)
        await asyncio.sleep(0.001)  # a round trip's wait: the other workers go on meanwhile
        overlapped = overlapped or len(running) > 1
        try:
            return await fire(timer)
        finally:
            running.discard(timer.ticket_id)

    monkeypatch.setattr(core.tickets, "fire", watched)
    clock.advance(timedelta(minutes=6))  # the reminder (4 min) and the breach (5 min) are due
    fired: list[str] = []
    core.scheduler.on_fired = lambda _due, _at, outcome: fired.append(outcome)
    assert await core.scheduler.run_due() == 2 * len(tickets)
    assert overlapped  # several tickets really were in hand at once
    assert sorted(fired) == ["escalated"] * len(tickets) + ["skipped"] * len(tickets)
    for ticket in tickets:
        assert [kind for t, kind in order if t == ticket.id] == ["remind", "breach"]
        now = await ticket_now(core, ticket.id)
        assert now.level == ticket.level + 1
    assert await core.scheduler.run_due() == 0  # nothing twice


async def test_nobody_accepts_the_ticket_climbs_every_level_on_time(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    ticket = await report(core)
    start = clock.now()
    recorder.take()
    await run_until(core, clock, start + timedelta(minutes=3, seconds=59))
    assert recorder.take() == []
    await run_until(core, clock, start + timedelta(minutes=4))
    reminder = recorder.take()
    assert [n.chat_id for n in reminder] == [WANG]
    assert "提醒" in reminder[0].text
    assert "还剩60秒" in reminder[0].text

    await run_until(core, clock, start + timedelta(minutes=5))
    sent = recorder.take()
    assert {n.chat_id for n in sent} == {LIU, WANG}
    to_backup = next(n for n in sent if n.chat_id == LIU)
    assert "超时上报" in to_backup.text
    assert "处理记录" in to_backup.text  # the history so far goes with it
    assert "已上报至备岗" in next(n for n in sent if n.chat_id == WANG).text
    climbed = await ticket_now(core, ticket.id)
    assert (climbed.level, climbed.assignee_id) == (1, "liu")
    assert climbed.accept_due_at == start + timedelta(minutes=10)

    await run_until(core, clock, start + timedelta(minutes=10))
    assert {n.chat_id for n in recorder.take()} == {LIU, ZHAO}  # reminder to liu, then up
    assert (await ticket_now(core, ticket.id)).assignee_id == "zhao"
    await run_until(core, clock, start + timedelta(minutes=15))
    assert SUN in {n.chat_id for n in recorder.take()}
    top = await ticket_now(core, ticket.id)
    assert (top.level, top.assignee_id) == (3, "sun")

    # Nobody above the street: the breach is recorded and the street pinged again.
    await run_until(core, clock, start + timedelta(minutes=20))
    last = recorder.take()
    assert [n.chat_id for n in last if "最高层级" in n.text] == [SUN]
    assert (await ticket_now(core, ticket.id)).level == 3
    history = await kinds(core, ticket.id)
    assert history.count("breach") == 4
    assert history.count("escalated") == 3
    async with core.uows() as uow:
        notes = [e.note for e in await uow.tickets.events(ticket.id) if e.kind == "assigned"]
    assert notes == [
        "网格G01物业管家：王管家",
        "网格G01备岗：刘网格",
        "幸福社区：赵书记",
        "街道：孙主任",
    ]


async def test_every_stage_deadline_escalates_when_missed(core: Core, clock: FakeClock) -> None:
    ticket = await report(core)
    start = clock.now()
    wang = staff_actor(member(core, "wang"))
    await core.tickets.accept(ticket.id, wang)
    accepted = await ticket_now(core, ticket.id)
    assert accepted.plan_due_at == start + timedelta(minutes=5)
    await run_until(core, clock, start + timedelta(minutes=5))  # no plan in 5 minutes
    after_plan_breach = await ticket_now(core, ticket.id)
    assert after_plan_breach.level == 1
    assert after_plan_breach.status is TicketStatus.ACCEPTED

    liu = staff_actor(member(core, "liu"))
    await core.tickets.plan(ticket.id, liu, Tier.GENERAL, "关闭分阀，师傅到场更换")
    planned = await ticket_now(core, ticket.id)
    assert planned.resolve_due_at == start + timedelta(minutes=30)  # report + general tier
    assert planned.replied_at == clock.now()  # told the resident the moment it was saved
    await run_until(core, clock, start + timedelta(minutes=30))
    resolved_late = await ticket_now(core, ticket.id)
    assert resolved_late.level == 2
    assert resolved_late.resolve_due_at == start + timedelta(minutes=60)  # re-armed for zhao
    assert "breach" in await kinds(core, ticket.id)


async def test_a_plan_the_resident_never_saw_breaches_the_reply_stage(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    ticket = await report(core)
    wang = staff_actor(member(core, "wang"))
    await core.tickets.accept(ticket.id, wang)
    recorder.fail = True
    await core.tickets.plan(ticket.id, wang, Tier.MAJOR, "联系电梯公司维修")
    recorder.fail = False
    recorder.take()
    planned = await ticket_now(core, ticket.id)
    assert planned.replied_at is None
    assert planned.reply_due_at is not None
    await run_until(core, clock, planned.reply_due_at)
    assert any("未能自动发给居民" in text for text in recorder.to(WANG))
    assert (await ticket_now(core, ticket.id)).level == 0  # the bot's failure, not the assignee's


# -- the happy path and the resident's side ------------------------------------------------


async def test_the_whole_loop_tells_the_resident_each_step(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    ticket = await report(core)
    wang = staff_actor(member(core, "wang"))
    clock.advance(timedelta(minutes=2))
    await core.tickets.accept(ticket.id, wang)
    clock.advance(timedelta(minutes=3))
    await core.tickets.plan(ticket.id, wang, Tier.GENERAL, "关闭3单元分阀，师傅20分钟内到场")
    clock.advance(timedelta(minutes=20))
    await core.tickets.resolve(ticket.id, wang, "已更换管件")
    to_group = [n for n in recorder.sent if n.chat_id == GROUP_G01]
    assert all(n.reply_to == 1 for n in to_group)
    assert [n.text for n in to_group] == [
        f"已收到您的报修，工单号 #{ticket.id}（3号楼）。物业王管家将在5分钟内联系您。",
        f"#{ticket.id} 物业王管家已接单，正在了解情况。",
        f"#{ticket.id} 处理方案：关闭3单元分阀，师傅20分钟内到场。预计19:30前处理完。",
        f"#{ticket.id} 已办结：已更换管件。您对处理结果满意吗？",
    ]
    done = await ticket_now(core, ticket.id)
    assert done.status is TicketStatus.RESOLVED
    assert (done.accepted_at, done.planned_at, done.resolved_at) == (
        ticket.created_at + timedelta(minutes=2),
        ticket.created_at + timedelta(minutes=5),
        ticket.created_at + timedelta(minutes=25),
    )
    async with core.uows() as uow:
        pending = await uow.timers.pending(ticket.id)
    assert [t.kind for t in pending] == ["autoclose"]
    # No answer from the resident in 24 hours: closed, and recorded as not rated.
    assert done.resolved_at is not None
    await run_until(core, clock, done.resolved_at + timedelta(hours=24))
    closed = await ticket_now(core, ticket.id)
    assert closed.status is TicketStatus.CLOSED
    async with core.uows() as uow:
        last = (await uow.tickets.events(ticket.id))[-1]
    assert (last.kind, last.note, last.actor) == ("closed", "未评价", "bot")
    assert await kinds(core, ticket.id) == [
        "opened",
        "assigned",
        "accepted",
        "planned",
        "replied",
        "resolved",
        "closed",
    ]


async def test_unsatisfied_reopens_one_level_up_with_fresh_deadlines(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    ticket = await report(core, "楼上半夜装修吵死了，天天扰民")  # a dispute: grid worker 李网格
    li = staff_actor(member(core, "li"))
    await core.tickets.plan(ticket.id, li, Tier.GENERAL, "上门调解")
    await core.tickets.resolve(ticket.id, li)
    clock.advance(timedelta(hours=1))
    recorder.take()
    with pytest.raises(NotAllowed):
        await core.tickets.reopen(ticket.id, resident_actor(RESIDENT + 1), "不满意")
    await core.tickets.reopen(ticket.id, resident_actor(RESIDENT), "还是很吵")
    again = await ticket_now(core, ticket.id)
    assert again.status is TicketStatus.REOPENED
    assert (again.level, again.assignee_id) == (1, "liu")  # G01's backup post
    assert again.accept_due_at == clock.now() + timedelta(minutes=5)
    assert LIU in {n.chat_id for n in recorder.sent}
    assert "accepted" in await kinds(core, ticket.id)  # the first attempt stays in history
    await core.tickets.accept(ticket.id, staff_actor(member(core, "liu")))


async def test_cancel_and_merge_stop_the_clocks(core: Core, clock: FakeClock) -> None:
    first = await report(core, "3号楼停水了", message_id=1)
    second = await report(core, "3号楼也停水了", message_id=2)
    third = await report(core, "3号楼电梯坏了", message_id=3)
    zhao = staff_actor(member(core, "zhao"))
    await core.tickets.merge(second.id, first.id, zhao)
    await core.tickets.cancel(third.id, resident_actor(RESIDENT), "不用了")
    with pytest.raises(NotAllowed):
        await core.tickets.merge(first.id, first.id, zhao)
    async with core.uows() as uow:
        assert await uow.timers.pending(second.id) == []
        assert await uow.timers.pending(third.id) == []
    assert (await ticket_now(core, second.id)).merged_into == first.id
    with pytest.raises(IllegalTransition):
        await core.tickets.merge(first.id, second.id, zhao)  # into a closed ticket


# -- day end ------------------------------------------------------------------------------


async def test_day_end_asks_for_a_follow_up_plan_and_the_resident_is_told(
    core: Core, clock: FakeClock, recorder: Recorder
) -> None:
    ticket = await report(core, "楼顶漏雨，顶楼墙都湿了")
    wang = staff_actor(member(core, "wang"))
    await core.tickets.plan(ticket.id, wang, Tier.COMPLEX, "联系防水公司勘查")
    recorder.take()
    day_end = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    await run_until(core, clock, day_end - timedelta(seconds=1))
    assert not [n for n in recorder.sent if "今天未能办结" in n.text]
    await run_until(core, clock, day_end)
    asked = [n for n in recorder.take() if "今天未能办结" in n.text]
    assert [n.chat_id for n in asked] == [WANG]
    assert f"/followup {ticket.id}" in asked[0].text
    await core.tickets.follow_up(ticket.id, wang, "明天上午9点防水公司到场勘查")
    told = recorder.to(GROUP_G01)
    plan = "明天上午9点防水公司到场勘查"
    assert told == [f"#{ticket.id} 今天暂时无法处理完毕，后续安排：{plan}。我们会持续跟进。"]
    async with core.uows() as uow:
        pending = {(t.kind, t.due_at) for t in await uow.timers.pending(ticket.id)}
    assert ("day_end", day_end + timedelta(days=1)) in pending  # asked again tomorrow if open


def test_next_day_end_is_local_and_strictly_later() -> None:
    day_end = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    at = sla.next_day_end
    assert at(day_end - timedelta(hours=3), time_of(20), "Asia/Shanghai") == day_end
    assert at(day_end, time_of(20), "Asia/Shanghai") == day_end + timedelta(days=1)


def time_of(hour: int) -> time:
    return time(hour, 0)


# -- colours ------------------------------------------------------------------------------


async def test_colours_follow_the_time_used(core: Core, clock: FakeClock) -> None:
    ticket = await report(core)
    policy = core.directory.current.sla
    start = clock.now()
    assert sla.colour(ticket, policy, start) is Colour.GREEN
    assert sla.colour(ticket, policy, start + timedelta(minutes=3, seconds=59)) is Colour.GREEN
    assert sla.colour(ticket, policy, start + timedelta(minutes=4)) is Colour.YELLOW
    assert sla.colour(ticket, policy, start + timedelta(minutes=5)) is Colour.RED
    closed = replace(ticket, status=TicketStatus.CLOSED)
    assert sla.colour(closed, policy, start + timedelta(days=3)) is Colour.NONE


# -- refusals -----------------------------------------------------------------------------


async def _ticket_in(core: Core, status: TicketStatus, message_id: int) -> Ticket:
    ticket = await report(core, "3号楼电梯坏了", message_id=message_id)
    wang = staff_actor(member(core, "wang"))
    steps = {
        TicketStatus.NEW: [],
        TicketStatus.ACCEPTED: ["accept"],
        TicketStatus.PLANNED: ["plan"],
        TicketStatus.RESOLVED: ["plan", "resolve"],
        TicketStatus.CLOSED: ["plan", "resolve", "close"],
        TicketStatus.REOPENED: ["plan", "resolve", "reopen"],
        TicketStatus.CANCELLED: ["cancel"],
        TicketStatus.MERGED: ["merge"],
    }[status]
    for step in steps:
        if step == "accept":
            await core.tickets.accept(ticket.id, wang)
        elif step == "plan":
            await core.tickets.plan(ticket.id, wang, Tier.GENERAL, "处理")
        elif step == "resolve":
            await core.tickets.resolve(ticket.id, wang)
        elif step == "close":
            await core.tickets.close(ticket.id, resident_actor(RESIDENT))
        elif step == "reopen":
            await core.tickets.reopen(ticket.id, resident_actor(RESIDENT), "不满意")
        elif step == "cancel":
            await core.tickets.cancel(ticket.id, resident_actor(RESIDENT))
        elif step == "merge":
            other = await report(core, "3号楼电梯也坏了", message_id=message_id + 500)
            await core.tickets.merge(ticket.id, other.id, wang)
    got = await ticket_now(core, ticket.id)
    assert got.status is status
    return got


@pytest.mark.parametrize("status", list(TicketStatus))
async def test_every_action_is_allowed_exactly_from_its_statuses(
    core: Core, status: TicketStatus
) -> None:
    admin = staff_actor(member(core, "admin"))
    for number, action in enumerate(Action):
        ticket = await _ticket_in(core, status, message_id=100 + number)
        target = await report(core, "3号楼电梯坏了", message_id=900 + number)
        into = target.id
        calls = {
            Action.ACCEPT: lambda t: core.tickets.accept(t, admin),
            Action.PLAN: lambda t: core.tickets.plan(t, admin, Tier.MAJOR, "方案"),
            Action.RESOLVE: lambda t: core.tickets.resolve(t, admin),
            Action.CLOSE: lambda t: core.tickets.close(t, admin),
            Action.REOPEN: lambda t: core.tickets.reopen(t, admin, "不满意"),
            Action.ESCALATE: lambda t: core.tickets.escalate(t, admin, "无力解决"),
            Action.REASSIGN: lambda t: core.tickets.reassign(t, admin, "li", "请网格员协助"),
            Action.FOLLOW_UP: lambda t: core.tickets.follow_up(t, admin, "明天处理"),
            Action.CANCEL: lambda t: core.tickets.cancel(t, admin),
            Action.MERGE: lambda t: core.tickets.merge(t, into, admin),  # noqa: B023
            Action.RATE: lambda t: core.tickets.rate(t, resident_actor(RESIDENT), Rating.BASICALLY),
            Action.RELABEL: lambda t: core.tickets.relabel(t, admin, "service"),
        }
        if status in TRANSITIONS[action]:
            await calls[action](ticket.id)
        else:
            with pytest.raises(IllegalTransition):
                await calls[action](ticket.id)
            assert (await ticket_now(core, ticket.id)).status is status  # nothing changed


async def test_only_the_assignee_or_someone_above_may_act(core: Core) -> None:
    ticket = await report(core)
    li = staff_actor(member(core, "li"))  # the grid worker: not on this repair's ladder
    with pytest.raises(NotAllowed):
        await core.tickets.accept(ticket.id, li)
    with pytest.raises(NotAllowed):
        await core.tickets.accept(ticket.id, resident_actor(RESIDENT))  # residents cannot accept
    await core.tickets.escalate(ticket.id, staff_actor(member(core, "wang")), "需要社区协调")
    wang = staff_actor(member(core, "wang"))
    with pytest.raises(NotAllowed):  # it left wang's level
        await core.tickets.accept(ticket.id, wang)
    await core.tickets.accept(ticket.id, staff_actor(member(core, "zhao")))  # community: above


async def test_escalating_past_the_street_is_refused(core: Core) -> None:
    ticket = await report(core)
    admin = staff_actor(member(core, "admin"))
    for _ in range(3):
        await core.tickets.escalate(ticket.id, admin, "无力解决")
    with pytest.raises(AtTopLevel):
        await core.tickets.escalate(ticket.id, admin, "无力解决")


async def test_a_stale_save_is_refused_and_the_step_retried(core: Core) -> None:
    ticket = await report(core)
    async with core.uows() as uow:
        await uow.tickets.save(replace(ticket, level=1), core.clock.now())
        await uow.commit()
    async with core.uows() as uow:
        with pytest.raises(StaleTicket):
            await uow.tickets.save(replace(ticket, level=2), core.clock.now())
    # The service reads fresh data, so accepting after a concurrent change still works.
    accepted = await core.tickets.accept(ticket.id, staff_actor(member(core, "admin")))
    assert accepted.level == 1
    assert accepted.status is TicketStatus.ACCEPTED


# -- restarts -----------------------------------------------------------------------------


async def test_after_a_restart_overdue_deadlines_act_at_once(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock
) -> None:
    first = await build_core(uows, demo_file, clock, Recorder())
    ticket = await report(first)
    # The process dies; an hour passes; a new process starts on the same database.
    clock.advance(timedelta(hours=1))
    recorder = Recorder()
    second = await build_core(uows, demo_file, clock, recorder)
    await second.scheduler.run_due()
    after = await ticket_now(second, ticket.id)
    assert after.level == 1  # one missed deadline, one level; the new one runs from now
    assert after.accept_due_at == clock.now() + timedelta(minutes=5)
    assert not [n for n in recorder.sent if "提醒" in n.text]  # obsolete reminders dropped
    assert LIU in {n.chat_id for n in recorder.sent}
    async with second.uows() as uow:
        assert await uow.timers.due(clock.now(), 10) == []


async def test_a_timer_fires_once_even_if_asked_twice(core: Core, clock: FakeClock) -> None:
    ticket = await report(core)
    clock.advance(timedelta(minutes=5))
    async with core.uows() as uow:
        due = await uow.timers.due(clock.now(), 10)
    breach = next(t for t in due if t.kind == "breach")
    assert await core.tickets.fire(breach) == "escalated"
    assert await core.tickets.fire(breach) == "already done"
    assert (await ticket_now(core, ticket.id)).level == 1


async def test_bot_actor_is_recorded_for_automatic_steps(core: Core, clock: FakeClock) -> None:
    ticket = await report(core)
    await run_until(core, clock, clock.now() + timedelta(minutes=5))
    async with core.uows() as uow:
        escalations = [e for e in await uow.tickets.events(ticket.id) if e.kind == "escalated"]
    assert escalations[0].actor == BOT_ACTOR.label
    assert escalations[0].note == "超时上报：接单（了解情况）逾期 → 备岗"


# -- the resident's rating (评单) ------------------------------------------------------------


async def _resolved(core: Core) -> Ticket:
    ticket = await report(core)
    wang = staff_actor(member(core, "wang"))
    await core.tickets.plan(ticket.id, wang, Tier.GENERAL, "更换管件")
    return await core.tickets.resolve(ticket.id, wang, "已更换")


async def test_the_resolved_message_asks_the_resident_to_rate(
    core: Core, recorder: Recorder
) -> None:
    ticket = await _resolved(core)
    ask = recorder.sent[-1]
    assert ask.chat_id == GROUP_G01
    assert ask.reply_to == 1
    assert [(b.label, b.data) for b in ask.buttons] == [
        ("满意", f"r:{ticket.id}:satisfied"),
        ("基本满意", f"r:{ticket.id}:basically"),
        ("不满意", f"r:{ticket.id}:unsatisfied"),
    ]


@pytest.mark.parametrize("rating", [Rating.SATISFIED, Rating.BASICALLY])
async def test_a_good_rating_closes_the_ticket(
    core: Core, recorder: Recorder, rating: Rating
) -> None:
    ticket = await _resolved(core)
    closed = await core.tickets.rate(ticket.id, resident_actor(RESIDENT), rating)
    assert closed.status is TicketStatus.CLOSED
    assert closed.rating is rating
    assert recorder.sent[-1].text == f"#{ticket.id} 感谢您的评价！如有新的问题，随时在群里说。"
    async with core.uows() as uow:
        assert await uow.timers.pending(ticket.id) == []
    with pytest.raises(IllegalTransition):  # rated once
        await core.tickets.rate(ticket.id, resident_actor(RESIDENT), Rating.UNSATISFIED)


async def test_only_the_reporter_rates(core: Core) -> None:
    ticket = await _resolved(core)
    with pytest.raises(NotAllowed):
        await core.tickets.rate(ticket.id, resident_actor(RESIDENT + 1), Rating.SATISFIED)
    with pytest.raises(NotAllowed):  # staff cannot rate their own work
        await core.tickets.rate(ticket.id, staff_actor(member(core, "admin")), Rating.SATISFIED)
    assert (await ticket_now(core, ticket.id)).status is TicketStatus.RESOLVED


async def test_unsatisfied_reopens_and_escalates(core: Core, recorder: Recorder) -> None:
    ticket = await _resolved(core)
    recorder.take()
    again = await core.tickets.rate(ticket.id, resident_actor(RESIDENT), Rating.UNSATISFIED)
    assert again.status is TicketStatus.REOPENED
    assert again.rating is Rating.UNSATISFIED
    assert (again.level, again.assignee_id) == (1, "liu")
    assert LIU in {n.chat_id for n in recorder.sent}
    assert (await kinds(core, ticket.id))[-4:] == ["rated", "reopened", "escalated", "assigned"]


async def test_only_a_refusal_for_good_falls_back_to_the_group(
    core: Core, recorder: Recorder, clock: FakeClock
) -> None:
    recorder.fail = True  # Telegram unreachable for a moment: nobody is mentioned or reported
    await report(core)
    assert [(n.chat_id, n.kind) for n in recorder.take()] == [(GROUP_G01, "ack"), (WANG, "ping")]
    async with core.uows() as uow:
        assert await uow.outbox.count_pending() == 2  # both kept for a retry: nothing lost
        assert (await uow.presence.get_many(["wang"])).get("wang") is None

    recorder.fail = False
    recorder.refusing = {WANG}  # 王管家 never pressed Start
    clock.advance(timedelta(seconds=2))  # the retries fall due
    await report(core, "2号楼水管漏水", message_id=2)
    sent = recorder.take()

    def to(chat: int) -> list[tuple[str, int | None]]:
        return [(n.kind, n.ticket_id) for n in sent if n.chat_id == chat]

    # Each chat in the order its messages were queued; the second ticket waited its turn.
    assert to(GROUP_G01) == [("ack", 1), ("ack", 2), ("mention", 1), ("mention", 2)]
    assert to(WANG) == [("ping", 1), ("ping", 2)]
    assert to(90001) == [("unreachable", 1)]  # the admins hear once per person
    async with core.uows() as uow:
        assert await uow.outbox.count_pending() == 0
        presence = (await uow.presence.get_many(["wang"]))["wang"]
    assert presence.unreachable_since is not None
