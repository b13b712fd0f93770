"""The outbox and its sender: nothing lost, order kept per chat, limits never exceeded,
retries after 429 / 5xx, refusals dropped with a reason, bursts coalesced.

Time is simulated: the wall clock is a FakeClock and the sender's monotonic clock follows it,
so a minute of Telegram limits takes milliseconds and every figure is exact.
"""

from __future__ import annotations

import logging
import random
import re
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.config import CommunityFile
from bot.core import Core, build_core
from bot.domain import Delivery, DeliveryResult, Notice
from bot.services.intake import IncomingMessage
from bot.services.outbox import Sender
from bot.services.ratelimit import RateLimits, SlidingWindow
from storage.uow import SqlUnitOfWorkFactory
from tests.helpers import GROUP_G01, RESIDENT, without_me_too

WANG, LIU = 10002, 10003
GROUP_G02 = -1001000000002
START = FakeClock().now()


class Telegram:
    """A scripted Bot API: records what arrived and when; ``script`` decides each answer."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.arrived: list[tuple[float, Notice]] = []
        self.attempts: list[Notice] = []
        self.script: Callable[[Notice], DeliveryResult] = lambda _n: DeliveryResult(Delivery.SENT)

    def now(self) -> float:
        return (self.clock.now() - START).total_seconds()

    async def deliver(self, notice: Notice) -> DeliveryResult:
        self.attempts.append(notice)
        result = self.script(notice)
        if result.outcome == Delivery.SENT:
            self.arrived.append((self.now(), notice))
        return result

    def texts(self, chat_id: int) -> list[str]:
        return [n.text for _, n in self.arrived if n.chat_id == chat_id]


@pytest.fixture
async def core(uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock) -> Core:
    # No notifier yet: whatever the core queues stays in the outbox, as after a crash.
    return await build_core(uows, without_me_too(demo_file), clock)


async def post(core: Core, text: str, message_id: int, chat: int = GROUP_G01) -> None:
    await core.intake.receive_group_message(
        IncomingMessage(chat, message_id, RESIDENT + message_id, "居民", text, core.clock.now())
    )


def wire(core: Core, clock: FakeClock, limits: RateLimits | None = None) -> Telegram:
    """A sender on simulated time in place of the core's own; returns the fake Telegram."""
    telegram = Telegram(clock)
    sender = Sender(core.uows, clock, limits, telegram, monotonic=telegram.now)
    sender.after_delivery = core.tickets.after_delivery
    sender.inline = False  # the test drives the loop's passes itself (see run())
    core.sender = sender
    core.tickets.kick = sender.kick
    return telegram


async def run(core: Core, clock: FakeClock, seconds: float) -> None:
    """Drive the sender's loop by hand for ``seconds`` of simulated time."""
    end = clock.now() + timedelta(seconds=seconds)
    telegram = core.sender.notifier
    assert isinstance(telegram, Telegram)
    while clock.now() < end:
        tried = len(telegram.attempts)
        wait = await core.sender.pass_once()
        await core.sender.settle()
        if len(telegram.attempts) > tried:
            continue  # a finished send wakes the real loop at once: look again
        step = min(max(wait, 0.01), (end - clock.now()).total_seconds())
        clock.advance(timedelta(seconds=step))


def never_exceeded(arrived: list[tuple[float, Notice]], limits: RateLimits) -> None:
    """Telegram's own count: in any window, at most the limit (exact windows, no margin)."""
    per_chat: dict[int, list[float]] = defaultdict(list)
    for at, notice in arrived:
        per_chat[notice.chat_id].append(at)
    checks = [(sorted(at for at, _ in arrived), limits.global_per_second, 1.0)]
    for chat, times in per_chat.items():
        if chat < 0:
            checks.append((times, limits.group_per_minute, 60.0))
        else:
            checks.append((times, limits.chat_per_second, 1.0))
    for times, limit, window in checks:
        recent: deque[float] = deque()
        for at in times:
            while recent and recent[0] <= at - window:
                recent.popleft()
            recent.append(at)
            assert len(recent) <= limit, f"{len(recent)} sends within {window}s at {at}"


def test_sliding_windows_count_like_telegram() -> None:
    group = SlidingWindow(limit=20, window=60.0)
    for second in range(20):
        assert group.room(float(second)) == 20 - second
        group.record(float(second))
    assert group.room(30.0) == 0
    assert group.wait(30.0) == pytest.approx(30.0)  # the first send leaves the window at 60
    assert group.room(60.5) == 1
    limits = RateLimits(group_per_minute=20, chat_per_second=1, global_per_second=30)
    limits.record(WANG, 0.0)
    assert limits.wait(WANG, 0.5) == pytest.approx(0.55)  # one a second, with a 5% margin
    limits.block(LIU, until=7.0)  # 429 retry_after
    assert limits.room(LIU, 1.0) == 0
    assert limits.wait(LIU, 1.0) == pytest.approx(6.0)
    limits.tidy(10.0)
    assert limits.room(LIU, 10.0) == 1


async def test_a_crash_before_sending_loses_nothing(core: Core, clock: FakeClock) -> None:
    """Queued with the ticket, in the same transaction: a process that dies before sending
    (or mid-send) leaves the messages for the next start, which sends them once."""
    await post(core, "3号楼电梯坏了", 1)
    await post(core, "5号楼楼道灯坏了", 2, chat=GROUP_G02)
    async with core.uows() as uow:
        assert await uow.outbox.count_pending() == 4  # two acks, two pings
        first = (await uow.outbox.heads(10))[0]
        await uow.outbox.claim([first.id])  # the crash came mid-send
        await uow.commit()
    telegram = wire(core, clock)
    assert await core.sender.resume() == 1
    assert await core.sender.flush() == 4
    assert telegram.texts(GROUP_G01)[0].startswith("已收到您的报修，工单号 #1（3号楼）")
    assert len(telegram.texts(WANG)) == 1
    assert len(telegram.texts(GROUP_G02)) == 1
    assert await core.sender.flush() == 0  # nothing twice


async def test_order_is_kept_per_chat_and_a_retry_holds_the_chat_back(
    core: Core, clock: FakeClock
) -> None:
    telegram = wire(core, clock)
    bad_gateway = {"count": 0}

    def script(notice: Notice) -> DeliveryResult:
        if notice.chat_id == GROUP_G01 and bad_gateway["count"] < 3:
            bad_gateway["count"] += 1
            return DeliveryResult(Delivery.FAILED, reason="NetworkError: Bad Gateway")
        return DeliveryResult(Delivery.SENT)

    telegram.script = script
    for n in range(1, 4):
        await post(core, f"{n}号楼电梯坏了", n)
    await post(core, "5号楼楼道灯坏了", 4, chat=GROUP_G02)
    await run(core, clock, 30)
    texts = telegram.texts(GROUP_G01)
    assert [t[t.index("#") : t.index("#") + 2] for t in texts] == ["#1", "#2", "#3"]
    assert bad_gateway["count"] == 3  # the first ack failed three times, then went first
    g02 = next(at for at, n in telegram.arrived if n.chat_id == GROUP_G02)
    g01 = next(at for at, n in telegram.arrived if n.chat_id == GROUP_G01)
    assert g02 < g01  # the other group did not wait for the struggling one
    assert g01 == pytest.approx(1 + 2 + 4, abs=0.1)  # backoff 1 s, 2 s, 4 s


async def test_429_waits_for_retry_after(core: Core, clock: FakeClock) -> None:
    telegram = wire(core, clock)
    answers = iter([DeliveryResult(Delivery.FAILED, retry_after=12.0, reason="Flood control")])
    telegram.script = lambda _n: next(answers, DeliveryResult(Delivery.SENT))
    await post(core, "3号楼电梯坏了", 1)
    await run(core, clock, 30)
    ack_times = [at for at, n in telegram.arrived if n.chat_id == GROUP_G01]
    assert ack_times == [pytest.approx(12.0, abs=0.1)]


async def test_a_refusal_for_good_is_dropped_with_its_reason(
    core: Core, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    telegram = wire(core, clock)

    def script(notice: Notice) -> DeliveryResult:
        if notice.chat_id == GROUP_G02:
            return DeliveryResult(
                Delivery.REFUSED, reason="Forbidden: bot was kicked from the group chat"
            )
        return DeliveryResult(Delivery.SENT)

    telegram.script = script
    with caplog.at_level(logging.WARNING):
        await post(core, "5号楼楼道灯坏了", 1, chat=GROUP_G02)
        await post(core, "6号楼楼道灯也坏了", 2, chat=GROUP_G02)
        await run(core, clock, 5)
    assert "bot was kicked" in caplog.text
    async with core.uows() as uow:
        assert await uow.outbox.count_pending() == 0
        states = [m.state for m in await uow.outbox.for_ticket(1)]
    assert states == ["dropped", "sent"]  # the ack was dropped, the ping still went
    assert len([n for n in telegram.attempts if n.chat_id == GROUP_G02]) == 2  # tried once each


async def test_a_burst_is_coalesced_and_every_resident_is_answered_within_limits(
    core: Core, clock: FakeClock
) -> None:
    """Fifty reports into one group within a minute: at most 20 group messages a minute, and
    every report acknowledged (by its own reply or in a merged one) well within 5 minutes."""
    limits = RateLimits(group_per_minute=20, chat_per_second=1, global_per_second=30)
    telegram = wire(core, clock, limits)
    reported: dict[int, float] = {}
    for n in range(1, 51):
        await post(core, f"{n % 3 + 1}号楼{n % 4 + 1}单元水管漏水了", n)
        reported[n] = telegram.now()
        await run(core, clock, 0.5)  # two reports a second, the sender running meanwhile
    await run(core, clock, 240)
    acknowledged: dict[int, float] = {}
    for at, notice in telegram.arrived:
        if notice.chat_id == GROUP_G01 and notice.kind == "ack" and notice.ticket_id:
            acknowledged.setdefault(notice.ticket_id, at)
        elif notice.chat_id == GROUP_G01 and notice.kind == "acks":
            for number in re.findall(r"#(\d+)", notice.text):
                acknowledged.setdefault(int(number), at)
    assert sorted(acknowledged) == list(range(1, 51))
    assert max(acknowledged[n] - reported[n] for n in reported) < 300
    merged = [n for _, n in telegram.arrived if n.kind == "acks"]
    assert merged
    assert merged[0].text.startswith("已收到 ")
    assert "条报修：#" in merged[0].text
    never_exceeded(telegram.arrived, limits)
    # 王管家 got fewer messages than tickets: waiting pings were listed together.
    pings = [n for _, n in telegram.arrived if n.chat_id == WANG]
    assert len(pings) < 50
    listed = [n for n in pings if n.kind == "pings"]
    assert listed
    assert listed[0].text.startswith("📋 您有 ")
    assert listed[0].buttons[0].data.endswith(":accept")
    async with core.uows() as uow:
        assert await uow.outbox.count_pending() == 0


async def test_random_faults_lose_nothing_reorder_nothing_exceed_nothing(
    core: Core, clock: FakeClock
) -> None:
    limits = RateLimits(group_per_minute=20, chat_per_second=1, global_per_second=30)
    telegram = wire(core, clock, limits)
    rng = random.Random(7)

    def script(_notice: Notice) -> DeliveryResult:
        roll = rng.random()
        if roll < 0.15:
            return DeliveryResult(Delivery.FAILED, retry_after=rng.choice([1.0, 3.0, 7.0]))
        if roll < 0.3:
            return DeliveryResult(Delivery.FAILED, reason=rng.choice(["Bad Gateway", "Timed out"]))
        return DeliveryResult(Delivery.SENT)

    telegram.script = script
    for n in range(1, 31):
        await post(core, f"{n % 9 + 1}号楼水管漏水", n, chat=GROUP_G01 if n % 2 else GROUP_G02)
    await run(core, clock, 600)
    async with core.uows() as uow:
        assert await uow.outbox.count_pending() == 0
    never_exceeded(telegram.arrived, limits)
    for chat in {n.chat_id for _, n in telegram.arrived}:
        order = [n.ticket_id for _, n in telegram.arrived if n.chat_id == chat and n.ticket_id]
        assert order == sorted(order), f"chat {chat} out of order: {order}"


async def test_an_update_fetched_twice_is_kept_once_and_replayed_if_unhandled(
    core: Core,
) -> None:
    """The inbox: written before Telegram is told, once, and handed back after a crash."""
    payload = {
        "update_id": 77,
        "message": {
            "message_id": 5,
            "date": 0,
            "chat": {"id": GROUP_G01, "type": "supergroup"},
            "from": {"id": RESIDENT, "is_bot": False, "first_name": "张"},
            "text": "3号楼电梯坏了",
        },
    }
    assert await core.inbox.keep_many([(77, payload)]) == {77}
    assert await core.inbox.keep_many([(77, payload)]) == set()  # fetched again: a repeat
    assert [p["update_id"] for p in await core.inbox.undone()] == [77]  # a crash now: replayed
    await core.inbox.done(77)
    assert await core.inbox.undone() == []
    # Telegram reuses ids after a quiet week: another update under the same id is new.
    other = {**payload, "message": {**payload["message"], "message_id": 6}}  # type: ignore[dict-item]
    assert await core.inbox.keep_many([(77, other)]) == {77}
    assert [p["message"]["message_id"] for p in await core.inbox.undone()] == [6]


async def test_merged_emergencies_keep_their_warning(core: Core, clock: FakeClock) -> None:
    limits = RateLimits(group_per_minute=2, chat_per_second=1, global_per_second=30)
    telegram = wire(core, clock, limits)
    for n in range(1, 7):
        await post(core, f"{n % 3 + 1}号楼{n}单元水管爆了，水淹到楼道了", n)
    await run(core, clock, 120)
    group = telegram.texts(GROUP_G01)
    assert group[0].startswith("🚨")  # the first goes on its own, as an emergency reply
    merged = [t for t in group if t.startswith("🚨 已收到 ")]
    assert merged
    assert merged[0].endswith("已通知社区立即处置，请注意安全！")
    numbers = {int(x) for t in group for x in re.findall(r"#(\d+)", t)}
    assert numbers >= set(range(1, 7))  # every emergency acknowledged
