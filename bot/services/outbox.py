"""The sender: delivers the outbox in order per chat, inside Telegram's limits, and retries.

Every outgoing message is first written to the outbox in the same transaction as the change
that caused it (see :class:`bot.services.tickets.TicketService`), so a crash between commit
and send loses nothing: on start the outbox is simply sent. Delivery is at least once: a
message whose send reached Telegram but whose "sent" mark did not reach the database before
a crash is sent again (at most one such message per chat, the one in flight).

- **Order**: one message per chat at a time, oldest first; a chat waits behind its head
  (a retry holds the chat back, never lets a later message overtake it).
- **Limits**: sliding windows per group, per private chat and globally
  (:mod:`bot.services.ratelimit`); Telegram's 429 ``retry_after`` blocks the chat until then.
- **Retries**: network errors, 5xx and timeouts back off 1 s, 2 s, 4 s … 60 s; after a day a
  message is dropped with its reason. Refusals for good (bot blocked or kicked, chat not
  found) and malformed requests are dropped at once, logged with the reason.
- **Coalescing**: when a group's queue is longer than what it may receive right now,
  its pending acknowledgements go out as one ("已收到 12 条报修：#31 #32 …", with the safety
  warning when one of them was an emergency); likewise three or
  more new-ticket pings waiting for one person become one list with 接单 buttons.

Without the background loop (core tests, one-shot commands) :meth:`Sender.kick` delivers what
is due at once, in order, without limits or coalescing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.domain import (
    Button,
    Category,
    Delivery,
    DeliveryResult,
    Notice,
    OutboxMessage,
    Ticket,
)
from bot.logs import about_ticket
from bot.metrics import Metrics
from bot.ports import Clock, Notifier, UnitOfWork, UnitOfWorkFactory
from bot.services.background import BackgroundLoop
from bot.services.ratelimit import RateLimits, is_group
from bot.texts import residents, staff

logger = logging.getLogger(__name__)

ACK = "ack"  # a group acknowledgement of a new ticket (mergeable)
ME_TOO_ACK = "me_too_ack"  # "已并入工单 #N" (mergeable with acks)
URGENT_ACK = "urgent_ack"  # an emergency's acknowledgement (merged ones keep its warning)
PING = "ping"  # a new ticket handed to someone (mergeable per person)
MERGED_ACKS = "acks"
MERGED_PINGS = "pings"
_ACK_KINDS = (ACK, ME_TOO_ACK, URGENT_ACK)
MIN_PINGS_TO_MERGE = 3
MAX_MERGED = 60
CONCURRENCY = 8  # chats sent to at the same time
HEADS = 200  # chats looked at per pass
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
GIVE_UP_AFTER = timedelta(days=1)
IDLE = 60.0  # with nothing due, look again after this long (a wake-up comes sooner)
STANDBY = 1.0  # another process sends: look again after this long whether it still does
# Woken while sends are in flight, a pass waits this long first, so sends finishing and
# messages queued meanwhile are handled by one pass (each pass is a transaction).
GATHER = 0.003

AfterDelivery = Callable[[Notice, Delivery], Awaitable[None]]


class _Finished(NamedTuple):
    """A send that is over, waiting for its outcome to be written."""

    message: OutboxMessage
    result: DeliveryResult
    at: datetime


class Sender:
    """Sends the outbox. ``notifier`` and ``after_delivery`` are wired by the runtime."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        clock: Clock,
        limits: RateLimits | None = None,
        notifier: Notifier | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._uows = uows
        self._clock = clock
        self.limits = limits or RateLimits()
        self.notifier = notifier
        self.after_delivery: AfterDelivery | None = None
        self._monotonic = monotonic
        self._metrics = metrics
        self._loop = BackgroundLoop("outbox-sender")
        self.inline = True  # no loop running: kick() sends at once (see the module's notes)
        # Several processes: only the one whose coordination says so sends (the runtime
        # wires storage.coordination's ``leading`` here); the others stand by.
        self.may_send: Callable[[], bool] = lambda: True
        self._flushing = False
        self._inflight: dict[int, asyncio.Task[int]] = {}
        # Outcomes of finished sends, written by the next pass in its own transaction.
        self._finished: list[_Finished] = []
        self._recording = 0  # how many of them the transaction being written holds
        self._writing = asyncio.Lock()  # one transaction writes outcomes at a time
        self._starting: set[int] = set()  # claimed, their send not started yet

    # -- running ---------------------------------------------------------------------------

    async def resume(self) -> int:
        """Before starting: messages caught mid-send by a crash become pending again."""
        async with self._uows() as uow:
            count = await uow.outbox.resume()
            await uow.commit()
        if count:
            logger.warning("%d message(s) were being sent when the bot stopped; resending", count)
        return count

    @property
    def running(self) -> bool:
        """True while the background loop is alive."""
        return self._loop.running

    def start(self) -> None:
        """Run the sending loop in the background."""
        self.inline = False
        self._loop.start(self._run)

    async def stop(self) -> None:
        """Finish the sends in flight (the rest stays queued for the next start)."""
        await self._loop.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settle(), timeout=10)
        self.inline = True

    async def settle(self) -> None:
        """Wait for the sends in flight to finish and write down how they went."""
        while self._inflight:
            await asyncio.wait(list(self._inflight.values()))
        await self._write_finished()

    async def _write_finished(self) -> None:
        """Write the finished sends' outcomes in a transaction of their own."""
        if not self._finished:
            return
        async with self._writing, self._uows() as uow:
            finals = await self._record(uow)
            await uow.commit()
            self._recorded()
        await self._after(finals)

    def wake(self) -> None:
        """Look at the outbox now (another process queued something)."""
        self._loop.wake()

    async def kick(self) -> None:
        """Something was queued: the loop looks at once; without a loop, send inline."""
        if not self.inline:
            self._loop.wake()
        elif not self._flushing:
            await self.flush()

    async def flush(self) -> int:
        """Send everything due now, in order, ignoring limits; returns how many were sent."""
        if self.notifier is None:
            return 0
        self._flushing = True
        sent = 0
        try:
            while True:
                async with self._uows() as uow:
                    now = self._clock.now()
                    heads = [h for h in await uow.outbox.heads(HEADS) if h.due(now)]
                if not heads:
                    return sent
                for head in heads:
                    if await self._mark_sending(head):
                        sent += await self._send(head)
        finally:
            self._flushing = False

    async def _run(self) -> None:
        while not self._loop.stopping:
            try:
                wait = await self.pass_once()
            except Exception:
                logger.exception("outbox pass failed; trying again in 1 s")
                wait = 1.0
            await self._loop.pause(wait)
            if self._inflight:
                await asyncio.sleep(GATHER)

    async def pass_once(self) -> float:
        """One transaction: write down how the finished sends went, then claim the head of
        every chat that is due and allowed, and start sending them; returns how long the
        loop may sleep before something else could be sent."""
        if self.notifier is None:
            return IDLE
        now, mono = self._clock.now(), self._monotonic()
        soonest = IDLE
        chosen: list[OutboxMessage] = []
        claimed: list[OutboxMessage] = []
        async with self._writing, self._uows() as uow:
            finals = await self._record(uow)
            if self.may_send():
                heads = await uow.outbox.heads(HEADS)
                if len(heads) == HEADS:
                    soonest = 1.0  # more chats wait than one pass looks at
                for head in heads:
                    chat = head.notice.chat_id
                    if not head.due(now):  # a retry backing off
                        assert head.next_at is not None
                        soonest = min(soonest, (head.next_at - now).total_seconds())
                        continue
                    if len(self._inflight) + len(chosen) >= CONCURRENCY:
                        soonest = 0.05  # a send finishing wakes the loop
                        break
                    if chat in self._inflight:
                        continue
                    wait = self.limits.wait(chat, mono)
                    if wait > 0:
                        soonest = min(soonest, wait)
                        continue
                    # Sends claimed but not started yet are not in the windows: the global
                    # window must have room for them too.
                    if len(self._starting) + len(chosen) >= self.limits.global_room(mono):
                        soonest = min(soonest, 0.05)
                        break
                    chosen.append(await self._coalesce(uow, head, mono))
                # One statement for the pass; one taken by another sender meanwhile (a
                # hand-over between processes) is left out.
                taken = await uow.outbox.claim([m.id for m in chosen])
                claimed = [m for m in chosen if m.id in taken]
            else:
                soonest = STANDBY
            await uow.commit()
            self._recorded()
        self._starting.update(m.id for m in claimed)
        for message in claimed:
            chat = message.notice.chat_id
            task = asyncio.create_task(self._send(message), name=f"send-{message.id}")
            self._inflight[chat] = task
            task.add_done_callback(functools.partial(self._done, chat))
        self.limits.tidy(self._monotonic())
        await self._after(finals)
        return soonest

    def _done(self, chat_id: int, _task: asyncio.Task[int]) -> None:
        self._inflight.pop(chat_id, None)
        self._loop.wake()

    # -- one message -----------------------------------------------------------------------

    async def _mark_sending(self, message: OutboxMessage) -> bool:
        async with self._uows() as uow:
            claimed = await uow.outbox.claim([message.id])
            await uow.commit()
        return bool(claimed)

    async def _send(self, message: OutboxMessage) -> int:
        with about_ticket(message.notice.ticket_id):
            return await self._send_one(message)

    async def _send_one(self, message: OutboxMessage) -> int:
        """Deliver; the outcome is written by the next pass (or at once without the loop).
        Until it is written the message stays "sending", so nothing later in its chat goes
        out before it."""
        notice = message.notice
        assert self.notifier is not None
        # Counted when it really goes out: the claim's commit may have waited on the
        # database, and a window stamped earlier would let the next send come too soon.
        self.limits.record(notice.chat_id, self._monotonic())
        self._starting.discard(message.id)
        try:
            result = await self.notifier.deliver(notice)
        except Exception as exc:  # a notifier bug must not stall the chat for good
            logger.exception("outbox %d: delivery raised", message.id)
            result = DeliveryResult(Delivery.FAILED, reason=f"{type(exc).__name__}: {exc}")
        if self._metrics is not None:
            self._metrics.sent(result.outcome.value)
        if result.outcome == Delivery.FAILED and result.retry_after is not None:
            self.limits.block(notice.chat_id, self._monotonic() + result.retry_after)
        self._finished.append(_Finished(message, result, self._clock.now()))
        if self.inline or self._flushing:
            await self._write_finished()
        return 1 if result.outcome == Delivery.SENT else 0

    async def _record(self, uow: UnitOfWork) -> list[tuple[Notice, Delivery]]:
        """Write the finished sends' outcomes (in the caller's transaction); returns the
        notices that are done with for good (sent, dropped or given up on)."""
        finals: list[tuple[Notice, Delivery]] = []
        self._recording = len(self._finished)
        sent: list[int] = []
        for message, result, at in self._finished[: self._recording]:
            notice, outcome = message.notice, result.outcome
            if outcome == Delivery.SENT:
                sent.append(message.id)
            elif outcome == Delivery.FAILED and at - message.created_at < GIVE_UP_AFTER:
                delay = result.retry_after
                if delay is None:
                    delay = BACKOFF[min(message.attempts, len(BACKOFF) - 1)]
                await uow.outbox.retry(message.id, at + timedelta(seconds=delay), result.reason)
                logger.warning(
                    "ticket #%s: %s to %s failed (%s); retry in %.0f s",
                    notice.ticket_id,
                    notice.kind,
                    notice.chat_id,
                    result.reason or "no reason",
                    delay,
                )
                continue
            else:
                reason = result.reason
                if outcome == Delivery.FAILED:
                    reason = f"gave up after {message.attempts} attempts over a day: {reason}"
                await uow.outbox.drop(message.id, f"{outcome.value}: {reason}")
                logger.warning(
                    "ticket #%s: %s to %s dropped (%s: %s)",
                    notice.ticket_id,
                    notice.kind,
                    notice.chat_id,
                    outcome.value,
                    reason or "no reason",
                )
            finals.append((notice, outcome))
        if sent:
            await uow.outbox.sent(sent, self._clock.now())
        return finals

    def _recorded(self) -> None:
        """The outcomes :meth:`_record` wrote are committed: forget them."""
        del self._finished[: self._recording]
        self._recording = 0

    async def _after(self, finals: list[tuple[Notice, Delivery]]) -> None:
        if self.after_delivery is None:
            return
        for notice, outcome in finals:
            try:
                await self.after_delivery(notice, outcome)
            except Exception:
                logger.exception("after delivery of a %s to %s failed", notice.kind, notice.chat_id)

    # -- coalescing ------------------------------------------------------------------------

    async def _coalesce(self, uow: UnitOfWork, head: OutboxMessage, mono: float) -> OutboxMessage:
        """Merge the chat's waiting acknowledgements (group) or new-ticket pings (private)
        into the head when more are waiting than the chat may receive now."""
        chat, kind = head.notice.chat_id, head.notice.kind
        kinds: tuple[str, ...]
        if is_group(chat) and kind in _ACK_KINDS and not head.notice.buttons:
            kinds, minimum = _ACK_KINDS, 2
        elif not is_group(chat) and kind == PING:
            kinds, minimum = (PING,), MIN_PINGS_TO_MERGE
        else:
            return head
        if self.limits.room(chat, mono) >= MAX_MERGED:
            return head  # more room than could ever be merged: no need to look
        waiting = await uow.outbox.pending_in(chat, kinds, MAX_MERGED)
        waiting = [m for m in waiting if not (m.notice.kind in _ACK_KINDS and m.notice.buttons)]
        if len(waiting) < minimum or len(waiting) <= self.limits.room(chat, mono):
            return head
        if waiting[0].id != head.id:  # only ever merge forward from the head
            return head
        tickets = await _tickets(uow, waiting)
        if kind in _ACK_KINDS:
            notice = _merged_acks(chat, waiting, tickets)
        else:
            notice = _merged_pings(chat, tickets)
        await uow.outbox.merge(head.id, notice, [m.id for m in waiting[1:]])
        logger.info("outbox: %d %s messages to %s sent as one", len(waiting), kind, chat)
        return replace(head, notice=notice)


async def _tickets(uow: UnitOfWork, messages: list[OutboxMessage]) -> list[Ticket]:
    ids: list[int] = []
    for message in messages:
        if message.notice.ticket_id is not None and message.notice.ticket_id not in ids:
            ids.append(message.notice.ticket_id)
    found = []
    for ticket_id in ids:
        ticket = await uow.tickets.get(ticket_id)
        if ticket is not None:
            found.append(ticket)
    return found


def _merged_acks(chat_id: int, messages: list[OutboxMessage], tickets: list[Ticket]) -> Notice:
    categories: set[Category] = {t.category for t in tickets} or {Category.REPAIR}
    urgent = any(m.notice.kind == URGENT_ACK for m in messages)
    text = residents.acknowledgements(
        len(messages), [t.id for t in tickets], categories, urgent=urgent
    )
    return Notice(chat_id, text, kind=MERGED_ACKS)


def _merged_pings(chat_id: int, tickets: list[Ticket]) -> Notice:
    buttons = tuple(
        Button(f"接单 #{t.id}", f"t:{t.id}:accept") for t in tickets[: staff.MERGED_BUTTONS]
    )
    return Notice(chat_id, staff.pings(tickets), buttons=buttons, kind=MERGED_PINGS)
