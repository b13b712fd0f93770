"""Group commit: log lines and "handled" marks written together, and the sender's outcomes
written by its next pass; a crash or a failed write in between loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.config import CommunityFile
from bot.core import Core, build_core
from bot.services import journal as journal_module
from bot.services.inbox import Inbox
from bot.services.intake import IncomingMessage
from bot.services.journal import Journal
from storage.admin_repositories import SqlMessageLogRepository
from storage.db import session_factory
from storage.outbox_repository import SqlOutboxRepository
from storage.uow import SqlUnitOfWork, SqlUnitOfWorkFactory
from tests.helpers import GROUP_G01, RESIDENT
from tests.test_outbox import run, wire


class CountingUows(SqlUnitOfWorkFactory):
    """The usual factory, counting the units of work it hands out."""

    opened = 0

    def __call__(self) -> SqlUnitOfWork:
        self.opened += 1
        return super().__call__()


@pytest.fixture
async def core(uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock) -> Core:
    return await build_core(uows, demo_file, clock)


def update(update_id: int, message_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": 0,
            "chat": {"id": GROUP_G01, "type": "supergroup"},
            "from": {"id": RESIDENT, "is_bot": False, "first_name": "张"},
            "text": text,
        },
    }


async def handle(core: Core, update_id: int, message_id: int, text: str) -> None:
    """What the Telegram edge does with one group message: handle it, then mark it done."""
    await core.intake.receive_group_message(
        IncomingMessage(GROUP_G01, message_id, RESIDENT, "张", text, core.clock.now())
    )
    await core.inbox.done(update_id)


async def logged(core: Core) -> list[int]:
    async with core.uows() as uow:
        return sorted(m.message_id for m in await uow.messages.recent("xingfu", 1000))


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_a_crash_before_the_batch_is_written_replays_the_update_once(core: Core) -> None:
    core.journal.start()
    try:
        await core.inbox.keep_many([(77, update(77, 5, "大家早上好"))])
        await handle(core, 77, 5, "大家早上好")
        assert core.journal.pending == 2  # the line and the mark wait for the batch
        # The process dies now: what another process finds is the update, not handled.
        survivor = Inbox(core.uows, core.clock, Journal(core.uows, core.clock))
        assert [p["update_id"] for p in await survivor.undone()] == [77]
        assert await logged(core) == []
        # It handles it again (the same message) while the first batch is written after all.
        await handle(core, 77, 5, "大家早上好")
        await until(lambda: core.journal.pending == 0)
    finally:
        await core.journal.stop()
    assert await logged(core) == [5]  # one line, however often it was handled
    assert await survivor.undone() == []


async def test_many_messages_are_written_in_a_few_transactions(
    engine: AsyncEngine, demo_file: CommunityFile, clock: FakeClock
) -> None:
    uows = CountingUows(session_factory(engine))
    core = await build_core(uows, demo_file, clock)
    await core.inbox.keep_many([(1000 + n, update(1000 + n, n, f"早上好{n}")) for n in range(60)])
    core.journal.start()
    try:
        before = uows.opened
        for n in range(60):
            await core.intake.receive_group_message(
                IncomingMessage(GROUP_G01, n, RESIDENT, "张", f"早上好{n}", clock.now())
            )
            await core.inbox.done(1000 + n)
        await until(lambda: core.journal.pending == 0)
        batches = uows.opened - before
    finally:
        await core.journal.stop()
    assert batches <= 3, f"{batches} transactions for 60 chatter messages"
    assert await logged(core) == list(range(60))
    assert await core.inbox.undone() == []


async def test_a_refused_batch_is_written_later_lines_never_after_their_marks(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "RETRY", 0.05)
    real_add = SqlMessageLogRepository.add
    refusals = [1]

    async def refuse_once(self: SqlMessageLogRepository, messages: Any) -> None:
        if refusals:
            refusals.pop()
            raise RuntimeError("disk full")
        await real_add(self, messages)

    monkeypatch.setattr(SqlMessageLogRepository, "add", refuse_once)
    await core.inbox.keep_many([(78, update(78, 6, "收到"))])
    core.journal.start()
    try:
        await handle(core, 78, 6, "收到")
        await until(lambda: not refusals)  # the first batch was refused …
        async with core.uows() as uow:
            assert [p["update_id"] for p in await uow.inbox.take_over({None}, None, 10)] == [78]
        await until(lambda: core.journal.pending == 0)  # … and written on the retry
    finally:
        await core.journal.stop()
    assert await logged(core) == [6]
    assert await core.inbox.undone() == []


async def test_log_lines_are_written_once_per_message(core: Core) -> None:
    for _ in range(2):  # inline (no loop): each write goes at once
        await core.intake.receive_group_message(
            IncomingMessage(GROUP_G01, 9, RESIDENT, "张", "谢谢大家", core.clock.now())
        )
    assert await logged(core) == [9]


async def test_a_failed_sender_pass_keeps_the_outcomes_and_sends_nothing_twice(
    core: Core, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    telegram = wire(core, clock)
    await core.intake.receive_group_message(
        IncomingMessage(GROUP_G01, 1, RESIDENT, "张", "3号楼电梯坏了", clock.now())
    )
    await core.sender.pass_once()  # claims the acknowledgement and the ping, starts sending
    for _ in range(100):
        if len(telegram.attempts) == 2:
            break
        await asyncio.sleep(0)
    assert len(telegram.attempts) == 2
    real_heads = SqlOutboxRepository.heads

    async def broken(self: SqlOutboxRepository, limit: int) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(SqlOutboxRepository, "heads", broken)
    with pytest.raises(RuntimeError):
        await core.sender.pass_once()  # the outcomes were not written …
    async with core.uows() as uow:
        assert {m.state for m in await uow.outbox.for_ticket(1)} == {"sending"}
    monkeypatch.setattr(SqlOutboxRepository, "heads", real_heads)
    await run(core, clock, 5)  # … the next pass writes them
    async with core.uows() as uow:
        assert {m.state for m in await uow.outbox.for_ticket(1)} == {"sent"}
    assert len(telegram.attempts) == 2  # and nothing went out twice


async def test_without_its_loop_the_journal_writes_at_once(core: Core) -> None:
    core.journal.start()
    await core.journal.stop()  # stopped (or never started, or died): nothing may wait
    await core.inbox.keep_many([(79, update(79, 7, "好的"))])
    await handle(core, 79, 7, "好的")
    assert core.journal.pending == 0
    assert await logged(core) == [7]
    assert await core.inbox.undone() == []
