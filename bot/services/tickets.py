"""The ticket lifecycle and its 5321 deadlines (全时跟踪、全程记录、全线存查).

Every step runs in one transaction: the ticket's fields, an event in its history and the
durable timers change together. What must be said afterwards comes back as notices, delivered
after the commit. A step that loses a race with another (the scheduler escalating while the
assignee presses 接单) is retried on fresh data, so neither change is lost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, time

from bot.directory import Directory, DirectoryHolder, StaffMember
from bot.domain import (
    DUE_FIELD,
    TRANSITIONS,
    Action,
    AtTopLevel,
    Button,
    Category,
    Delivery,
    IllegalTransition,
    NewTimer,
    NotAllowed,
    Notice,
    Presence,
    Rating,
    Report,
    Role,
    Stage,
    StaleTicket,
    Ticket,
    TicketEvent,
    TicketNotFound,
    TicketStatus,
    Tier,
    Timer,
)
from bot.logs import about_ticket
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services import outbox, privacy, routing, sla
from bot.texts import residents, staff

logger = logging.getLogger(__name__)
ALREADY_DONE = "already done"  # fire(): the timer was cancelled, or another process has it

ATTEMPTS = 5
BOT = "bot"
MAX_NOTE = 500
PLAN_TO_RESIDENT = "plan_to_resident"
ASSIGNMENT = outbox.PING  # a ticket handed to someone: if it cannot reach them, the group hears

Step = Callable[[UnitOfWork, Ticket, datetime], Awaitable[tuple[Ticket, list[Notice]]]]


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member, the resident who reported, or the bot itself."""

    label: str  # stored in the history: "staff:wang", "resident:5000001", "bot"
    staff: StaffMember | None = None
    resident_id: int | None = None


BOT_ACTOR = Actor(BOT)


def staff_actor(member: StaffMember) -> Actor:
    """An actor for a staff member."""
    return Actor(f"staff:{member.id}", staff=member)


def resident_actor(user_id: int) -> Actor:
    """An actor for a resident."""
    return Actor(f"resident:{user_id}", resident_id=user_id)


class TicketService:
    """Moves tickets through their life and keeps their deadlines."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        directory: DirectoryHolder,
        clock: Clock,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._uows = uows
        self._directory = directory
        self._clock = clock
        self.wake = wake or (lambda: None)  # the deadline scheduler: re-read the next deadline
        self.kick: Callable[[], Awaitable[None]] = _nothing  # the sender: the outbox grew

    @property
    def directory(self) -> Directory:
        """The current organisation snapshot."""
        return self._directory.current

    # -- opening -------------------------------------------------------------------------

    async def arm_new(self, uow: UnitOfWork, ticket: Ticket, now: datetime) -> list[Notice]:
        """Schedule a fresh ticket's timers (inside intake's transaction); return the pings."""
        policy = self.directory.sla
        timers: list[NewTimer] = []
        for stage in (Stage.UNDERSTAND, Stage.RESOLVE):
            due = ticket.due(stage)
            assert due is not None, "intake sets both deadlines"
            timers += self._timers(ticket, stage, due, now)
        day_end = sla.next_day_end(now, policy.day_end, self.directory.timezone)
        timers.append(NewTimer(ticket.id, "day_end", "", day_end))
        await uow.timers.add(timers)  # one statement for all of them
        notices = self._pings(ticket, now, staff.new_ticket_headline(ticket.urgent, False))
        dispatch = self.directory.community(ticket.community_id).routing
        if ticket.urgent and dispatch.urgent_to_community:
            # Emergencies reach the community at once, not after a missed deadline.
            community = [
                m
                for rung in routing.ladder(self.directory, ticket.grid_id, ticket.category)
                if rung.number == 2
                for m in rung.staff
                if m.id != ticket.assignee_id
            ]
            notices += self._pings(ticket, now, staff.new_ticket_headline(True, True), to=community)
        return notices

    # -- staff and resident actions ------------------------------------------------------

    async def check(self, ticket_id: int, action: Action, actor: Actor) -> Ticket:
        """Whether ``actor`` may do ``action`` now, before asking them for details (the plan
        text, a reason): raises what the action itself would raise."""
        async with self._uows() as uow:
            ticket = await uow.tickets.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"ticket #{ticket_id} not found")
        self._check(ticket, action, actor)
        if action == Action.ESCALATE and sla.next_level(self.directory, ticket) is None:
            raise AtTopLevel(f"ticket #{ticket.id} is already at the top level")
        return ticket

    async def accept(self, ticket_id: int, actor: Actor) -> Ticket:
        """接单: the assignee takes the ticket and starts learning the facts."""

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.ACCEPT, actor)
            return await self._accept(uow, ticket, now, actor)

        return await self._run(ticket_id, step)

    async def plan(self, ticket_id: int, actor: Actor, tier: Tier, text: str) -> Ticket:
        """处理方案: the tier and one line of plan; the resident is told at once."""
        text = _note(text)
        if not text:
            raise ValueError("plan text is empty")

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.PLAN, actor)
            notices: list[Notice] = []
            if ticket.status in (TicketStatus.NEW, TicketStatus.REOPENED):
                # Accepted on the way; the resident hears the plan itself, not both.
                ticket, _ = await self._accept(uow, ticket, now, actor)
            policy = self.directory.sla
            resolve_due = ticket.created_at + policy.resolve[tier]
            if ticket.status == TicketStatus.PLANNED:
                # A revised plan keeps the resolve clock where escalation left it, unless
                # the new tier gives more time from the report.
                resolve_due = max(resolve_due, ticket.resolve_due_at or resolve_due)
            reply_due = now + policy.reply
            before = ticket.status
            ticket = replace(
                ticket,
                status=TicketStatus.PLANNED,
                tier=tier,
                plan_text=text,
                planned_at=ticket.planned_at or now,
                plan_due_at=None,
                reply_due_at=reply_due,
                replied_at=None,
                resolve_due_at=resolve_due,
            )
            ticket = await uow.tickets.save(ticket, now)
            await uow.timers.cancel(ticket.id, now, stages=(Stage.PLAN, Stage.REPLY, Stage.RESOLVE))
            await uow.timers.add(
                self._timers(ticket, Stage.REPLY, reply_due, now)
                + self._timers(ticket, Stage.RESOLVE, resolve_due, now)
            )
            await self._event(
                uow,
                ticket,
                now,
                actor,
                "planned",
                before=before,
                note=f"{staff.TIER_NAME[tier]}：{text}",
            )
            expected = staff.clock_time(resolve_due, self.directory.timezone, policy.resolve[tier])
            told = residents.planned(ticket.id, text, expected)
            notices.append(self._to_resident(ticket, told, PLAN_TO_RESIDENT))
            notices += await self._to_others(uow, ticket, told)
            return ticket, notices

        return await self._run(ticket_id, step)

    async def resolve(self, ticket_id: int, actor: Actor, note: str = "") -> Ticket:
        """办结: done; the resident is told and has ``confirm`` time to rate it."""
        note = _note(note)

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.RESOLVE, actor)
            return await self._resolve(uow, ticket, now, actor, note)

        return await self._run(ticket_id, step)

    async def resolve_together(self, ticket_id: int, actor: Actor, note: str) -> Ticket:
        """One ticket of an incident handled as one (工单预警): resolved, accepted on the way
        if nobody had; the resident hears once, that it is done."""
        note = _note(note)

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            if ticket.status in TRANSITIONS[Action.ACCEPT]:
                self._check(ticket, Action.ACCEPT, actor)
                ticket, _told = await self._accept(uow, ticket, now, actor)
            self._check(ticket, Action.RESOLVE, actor)
            return await self._resolve(uow, ticket, now, actor, note)

        return await self._run(ticket_id, step)

    async def _resolve(
        self, uow: UnitOfWork, ticket: Ticket, now: datetime, actor: Actor, note: str
    ) -> tuple[Ticket, list[Notice]]:
        """Resolved: clocks stopped, autoclose armed, the resident asked to rate."""
        before = ticket.status
        ticket = await uow.tickets.save(
            replace(ticket, status=TicketStatus.RESOLVED, resolved_at=now), now
        )
        await uow.timers.cancel(ticket.id, now, stages=_ALL_STAGES, kinds=("day_end",))
        await uow.timers.add(
            [NewTimer(ticket.id, "autoclose", "", now + self.directory.sla.confirm)]
        )
        await self._event(uow, ticket, now, actor, "resolved", before=before, note=note)
        ask = replace(
            self._to_resident(ticket, residents.resolved(ticket.id, note)),
            buttons=tuple(
                Button(residents.RATING_NAME[r], f"r:{ticket.id}:{r.value}") for r in Rating
            ),
        )
        # Households who said "me too" hear it as well; only the reporter rates.
        told = residents.resolved_for_others(ticket.id, note)
        others = await self._to_others(uow, ticket, told)
        return ticket, [ask, *others]

    async def close(self, ticket_id: int, actor: Actor, note: str = "") -> Ticket:
        """Closed: the resident confirmed, or nobody answered within ``confirm``."""

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.CLOSE, actor)
            ticket = await self._end(uow, ticket, now, actor, TicketStatus.CLOSED, "closed", note)
            return ticket, []

        return await self._run(ticket_id, step)

    async def reopen(self, ticket_id: int, actor: Actor, reason: str) -> Ticket:
        """Unsatisfied: back to work one level up, with fresh deadlines from now."""
        reason = _note(reason) or "居民不满意"

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.REOPEN, actor)
            return await self._reopen(uow, ticket, now, actor, reason)

        return await self._run(ticket_id, step)

    async def rate(self, ticket_id: int, actor: Actor, rating: Rating) -> Ticket:
        """评单: the reporter's verdict. 满意/基本满意 close the ticket; 不满意 reopens it."""

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            if actor.resident_id is None:
                raise NotAllowed(f"{actor.label} may not rate ticket #{ticket.id}")
            self._check(ticket, Action.RATE, actor)
            ticket = await uow.tickets.save(replace(ticket, rating=rating), now)
            name = residents.RATING_NAME[rating]
            await self._event(uow, ticket, now, actor, "rated", before=ticket.status, note=name)
            if rating == Rating.UNSATISFIED:
                return await self._reopen(uow, ticket, now, actor, "居民评价不满意")
            ticket = await self._end(uow, ticket, now, actor, TicketStatus.CLOSED, "closed", name)
            return ticket, [self._to_resident(ticket, residents.thanks(ticket.id))]

        return await self._run(ticket_id, step)

    async def _reopen(
        self, uow: UnitOfWork, ticket: Ticket, now: datetime, actor: Actor, reason: str
    ) -> tuple[Ticket, list[Notice]]:
        before = ticket.status
        policy = self.directory.sla
        ticket = replace(
            ticket,
            status=TicketStatus.REOPENED,
            resolved_at=None,
            closed_at=None,
            accepted_at=None,
            planned_at=None,
            replied_at=None,
            plan_due_at=None,
            reply_due_at=None,
            accept_due_at=now + policy.understand,
            resolve_due_at=now + policy.resolve[ticket.tier],
        )
        ticket = await uow.tickets.save(ticket, now)
        await uow.timers.cancel(ticket.id, now, kinds=("autoclose",))
        await self._event(uow, ticket, now, actor, "reopened", before=before, note=reason)
        ticket, notices = await self._climb(uow, ticket, now, actor, reason=reason, rearm=False)
        await uow.timers.add(
            self._timers(ticket, Stage.UNDERSTAND, ticket.accept_due_at, now)
            + self._timers(ticket, Stage.RESOLVE, ticket.resolve_due_at, now)
        )
        day_end = sla.next_day_end(now, policy.day_end, self.directory.timezone)
        await uow.timers.add([NewTimer(ticket.id, "day_end", "", day_end)])
        notices.append(self._to_resident(ticket, residents.escalated(ticket.id)))
        return ticket, notices

    async def escalate(self, ticket_id: int, actor: Actor, reason: str) -> Ticket:
        """上报: the assignee cannot solve it (无力解决); it goes one level up."""
        reason = _note(reason) or "无力解决"

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.ESCALATE, actor)
            if sla.next_level(self.directory, ticket) is None:
                raise AtTopLevel(f"ticket #{ticket.id} is already at the top level")
            return await self._climb(uow, ticket, now, actor, reason=f"手动上报：{reason}")

        return await self._run(ticket_id, step)

    async def follow_up(self, ticket_id: int, actor: Actor, text: str) -> Ticket:
        """后续解决方案: not solved today; the resident is told what happens next."""
        text = _note(text)
        if not text:
            raise ValueError("follow-up text is empty")

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.FOLLOW_UP, actor)
            ticket = await uow.tickets.save(
                replace(ticket, follow_up_text=text, follow_up_at=now), now
            )
            await self._event(uow, ticket, now, actor, "follow_up", before=ticket.status, note=text)
            return ticket, [self._to_resident(ticket, residents.follow_up(ticket.id, text))]

        return await self._run(ticket_id, step)

    async def cancel(self, ticket_id: int, actor: Actor, note: str = "") -> Ticket:
        """The resident withdrew ("不用了"), or staff cancelled a mistaken ticket."""

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.CANCEL, actor)
            cancelled = TicketStatus.CANCELLED
            ticket = await self._end(uow, ticket, now, actor, cancelled, "cancelled", _note(note))
            return ticket, []

        return await self._run(ticket_id, step)

    async def settled_by_answer(self, ticket_id: int, actor: Actor) -> Ticket:
        """The reporter says the known answer told at once was enough ("已解决，谢谢")."""

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.CANCEL, actor)  # the reporter, while it is open
            if not ticket.answered:
                raise NotAllowed(f"ticket #{ticket.id} was not answered at once")
            # _end saves the ticket once, with these fields and the closed status together.
            ticket = await self._end(
                uow,
                replace(ticket, resolved_at=now, rating=Rating.SATISFIED),
                now,
                actor,
                TicketStatus.CLOSED,
                "answered",
                "居民确认：告知内容已解决问题",
            )
            member = self.directory.member(ticket.assignee_id) if ticket.assignee_id else None
            if member is None:
                return ticket, []
            text = staff.settled_by_answer(ticket)
            return ticket, [Notice(member.telegram_id, text, ticket_id=ticket.id)]

        return await self._run(ticket_id, step)

    async def merge(self, ticket_id: int, into: int, actor: Actor) -> Ticket:
        """A duplicate of another open ticket; it stops its own clocks."""
        if into == ticket_id:
            raise NotAllowed("a ticket cannot be merged into itself")
        async with self._uows() as uow:
            target = await uow.tickets.get(into)
        if target is None:
            raise TicketNotFound(f"ticket #{into} not found")
        if not target.is_open:
            raise IllegalTransition(into, Action.MERGE, target.status)

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.MERGE, actor)
            ticket = replace(ticket, merged_into=into)
            note = f"并入 #{into}"
            ticket = await self._end(uow, ticket, now, actor, TicketStatus.MERGED, "merged", note)
            return ticket, []

        return await self._run(ticket_id, step)

    async def delivered(self, notice: Notice, ok: bool) -> None:
        """Told after a notice was sent; a plan that reached the resident meets the reply stage."""
        if not ok or notice.kind != PLAN_TO_RESIDENT or notice.ticket_id is None:
            return

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            # Resolved meanwhile still counts: the resident was told the plan in time.
            if ticket.planned_at is None or ticket.replied_at is not None:
                return ticket, []
            ticket = await uow.tickets.save(replace(ticket, replied_at=now), now)
            await uow.timers.cancel(ticket.id, now, stages=(Stage.REPLY,))
            await self._event(uow, ticket, now, BOT_ACTOR, "replied", before=ticket.status, note="")
            return ticket, []

        await self._run(notice.ticket_id, step)

    async def attach(
        self, uow: UnitOfWork, ticket: Ticket, report: Report, now: datetime
    ) -> tuple[Ticket, list[Notice]] | None:
        """ "Me too": attach a later report of the same problem (inside intake's transaction).
        None when this message was attached before (a redelivered update)."""
        earlier = await uow.reports.for_ticket(ticket.id)
        if not await uow.reports.add(report):
            return None
        households = {ticket.reporter_id, *(r.reporter_id for r in earlier)}
        if report.reporter_id not in households:
            ticket = await uow.tickets.save(replace(ticket, households=ticket.households + 1), now)
        actor = resident_actor(report.reporter_id)
        note = f"{staff.quote(report.text)}（共{ticket.households}户）"
        await self._event(uow, ticket, now, actor, "me_too", before=ticket.status, note=note)
        member = self.directory.member(ticket.assignee_id) if ticket.assignee_id else None
        notices = []
        if member is not None and report.reporter_id not in households:
            notices.append(
                Notice(
                    member.telegram_id,
                    staff.me_too(ticket.id, ticket.households, report.text),
                    ticket_id=ticket.id,
                    kind="me_too",
                )
            )
        return ticket, notices

    # -- who is at work ------------------------------------------------------------------

    async def on_duty(
        self, uow: UnitOfWork, members: list[StaffMember], now: datetime
    ) -> routing.Available:
        """A test of who among ``members`` is on duty now (roster, /offduty, /onduty)."""
        presences = await uow.presence.get_many(m.id for m in members)
        timezone = self.directory.timezone
        return lambda m: routing.is_available(m, presences.get(m.id), now, timezone)

    async def set_off_duty(self, member: StaffMember) -> tuple[list[int], list[int]]:
        """/offduty: mark the person off duty and hand their not-yet-accepted tickets to whoever
        is on duty next on each ticket's ladder (备岗接替). Returns (handed over, kept): tickets
        already accepted stay with them (they can 转派 them)."""
        async with self._uows() as uow:
            now = self._clock.now()
            await uow.presence.save(
                replace(await self._presence(uow, member), off_duty=True, on_duty_until=None), now
            )
            await uow.commit()
            mine = await uow.tickets.open_for(member.id)
        handed, kept = [], []
        for ticket in mine:
            waiting = ticket.status in (TicketStatus.NEW, TicketStatus.REOPENED)
            if waiting and await self._hand_over(ticket.id, member):
                handed.append(ticket.id)
            else:
                kept.append(ticket.id)
        logger.info("staff %s off duty; handed over %s, kept %s", member.id, handed, kept)
        return handed, kept

    async def set_on_duty(self, member: StaffMember) -> datetime | None:
        """/onduty: back at work. Outside the roster this lasts until local midnight; returns
        that time, or None when the roster has them on duty anyway."""
        async with self._uows() as uow:
            now = self._clock.now()
            timezone = self.directory.timezone
            presence = replace(await self._presence(uow, member), off_duty=False)
            until = None
            rostered = replace(presence, on_duty_until=None)
            if not routing.is_available(member, rostered, now, timezone):
                until = sla.next_day_end(now, time(0, 0), timezone)
            await uow.presence.save(replace(presence, on_duty_until=until), now)
            await uow.commit()
        logger.info("staff %s on duty (until %s)", member.id, until)
        return until

    async def reachable(self, member: StaffMember) -> None:
        """The person opened a private chat with the bot (/start): pings reach them again."""
        async with self._uows() as uow:
            presence = await self._presence(uow, member)
            if presence.unreachable_since is not None:
                now = self._clock.now()
                await uow.presence.save(replace(presence, unreachable_since=None), now)
                await uow.commit()
                logger.info("staff %s can be reached in private chat again", member.id)

    async def _presence(self, uow: UnitOfWork, member: StaffMember) -> Presence:
        found = await uow.presence.get_many([member.id])
        return found.get(member.id, Presence(member.id))

    async def _hand_over(self, ticket_id: int, member: StaffMember) -> bool:
        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            if ticket.assignee_id != member.id or ticket.status not in (
                TicketStatus.NEW,
                TicketStatus.REOPENED,
            ):
                return ticket, []
            rungs = routing.ladder(self.directory, ticket.grid_id, ticket.category)
            available = await self.on_duty(uow, [m for r in rungs for m in r.staff], now)
            picked = routing.pick(rungs, ticket.level, available)
            if picked is None or picked.assignee == member:
                return ticket, []  # nobody else on duty: it stays, and the clocks still run
            ticket = await uow.tickets.save(
                replace(ticket, assignee_id=picked.assignee.id, level=picked.level), now
            )
            reason = f"备岗接替（{member.name}下班）"
            await self._event(
                uow,
                ticket,
                now,
                staff_actor(member),
                "assigned",
                before=ticket.status,
                note=f"{reason}：{picked.assignee.name}",
            )
            return ticket, self._pings(ticket, now, staff.handed_over(member.name))

        ticket = await self._run(ticket_id, step)
        return ticket.assignee_id != member.id

    def reassign_candidates(self, ticket: Ticket) -> list[StaffMember]:
        """Who a ticket may be 转派 to: the staff of its grid, then of its community."""
        grid = self.directory.grid(ticket.grid_id)
        community = self.directory.community(ticket.community_id)
        ids = [grid.property, grid.grid_worker, *grid.backup, *community.staff]
        found: list[StaffMember] = []
        for staff_id in ids:
            member = self.directory.member(staff_id) if staff_id else None
            if member and member.id != ticket.assignee_id and member not in found:
                found.append(member)
        return found

    async def reassign(
        self, ticket_id: int, actor: Actor, to_staff_id: str, note: str = ""
    ) -> Ticket:
        """转派: hand the ticket to another member of its grid or community. The clocks keep
        running: passing a ticket on never buys time."""
        note = _note(note)

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.REASSIGN, actor)
            target = next(
                (m for m in self.reassign_candidates(ticket) if m.id == to_staff_id), None
            )
            if target is None:
                raise NotAllowed(f"#{ticket.id} cannot be reassigned to {to_staff_id!r}")
            previous = self.directory.member(ticket.assignee_id) if ticket.assignee_id else None
            ticket = await uow.tickets.save(replace(ticket, assignee_id=target.id), now)
            who = actor.staff.name if actor.staff else "系统"
            detail = f"转派（{who}）：{target.name}" + (f"；{note}" if note else "")
            status = ticket.status
            await self._event(uow, ticket, now, actor, "assigned", before=status, note=detail)
            events = await uow.tickets.events(ticket.id)
            body = staff.history(events, self.directory.timezone)
            notices = self._pings(ticket, now, staff.reassigned_to_you(who, note), extra=body)
            if previous is not None and previous != actor.staff:
                notices.append(
                    Notice(
                        previous.telegram_id,
                        staff.reassigned_away(ticket.id, target.name, who),
                        ticket_id=ticket.id,
                        kind="reassigned_away",
                    )
                )
            return ticket, notices

        return await self._run(ticket_id, step)

    async def relabel(self, ticket_id: int, actor: Actor, label: str) -> Ticket:
        """分类有误: staff say what the message really was. "none" withdraws the ticket and
        tells the resident kindly; another category re-files it and, while it is still with
        its first responder (level 0), hands it to whoever that category is routed to. Either
        way the message is marked for the admins' review queue. The clocks keep running."""
        if label != "none" and label not in {c.value for c in Category}:
            raise ValueError(f"unknown label {label!r}")

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            self._check(ticket, Action.RELABEL, actor)
            if label == ticket.category.value:
                raise NotAllowed(f"ticket #{ticket.id} is already {label}")
            await uow.messages.relabel(ticket.chat_id, ticket.message_id, label)
            who = actor.staff.name if actor.staff else "系统"
            holder = self.directory.member(ticket.assignee_id) if ticket.assignee_id else None
            bystander = holder if holder is not None and holder != actor.staff else None
            old = ticket.category
            if label == "none":
                note = f"{staff.CATEGORY_NAME[old]} → {staff.NOT_A_REQUEST}（{who}）"
                cancelled = TicketStatus.CANCELLED
                ticket = await self._end(uow, ticket, now, actor, cancelled, "relabelled", note)
                text = residents.not_a_request(ticket.id)
                notices = [
                    self._to_resident(ticket, text),
                    *await self._to_others(uow, ticket, text),
                ]
            else:
                new = Category(label)
                ticket, target = await self._refile(uow, replace(ticket, category=new), now)
                note = f"{staff.CATEGORY_NAME[old]} → {staff.CATEGORY_NAME[new]}（{who}）"
                if target is not None:
                    note += f"；转给{target.name}"
                status = ticket.status
                await self._event(uow, ticket, now, actor, "relabelled", before=status, note=note)
                notices = []
                if target is not None:
                    notices = self._pings(ticket, now, staff.relabel_headline(who, old, new))
            if bystander is not None:
                moved = ticket.assignee_id != bystander.id
                text = staff.relabelled_away(ticket.id, label, who, moved=moved)
                notices.append(Notice(bystander.telegram_id, text, ticket_id=ticket.id))
            return ticket, notices

        return await self._run(ticket_id, step)

    async def edited(
        self,
        ticket_id: int,
        text: str,
        *,
        category: Category | None,
        urgent: bool,
        location: dict[str, str],
        topic: str,
    ) -> Ticket:
        """The resident edited their message while the ticket was still new: it takes the new
        text (and, when the new text is still a request, its category, urgency and place);
        the assignee gets the card again. Once accepted, edits change nothing."""

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            if ticket.status != TicketStatus.NEW or ticket.text == text:
                return ticket, []
            before = ticket
            changed = replace(ticket, text=text)
            if category is not None:
                place = {**ticket.location, **location}
                changed = replace(
                    changed,
                    category=category,
                    urgent=ticket.urgent or urgent,
                    location=place,
                    topic=topic or ticket.topic,
                )
            ticket, target = await self._refile(uow, changed, now)
            note = f"居民修改了消息：{staff.quote(text)}"
            if ticket.category != before.category:
                old, new = (
                    staff.CATEGORY_NAME[before.category],
                    staff.CATEGORY_NAME[ticket.category],
                )
                note += f"；{old} → {new}"
            if target is not None:
                note += f"；转给{target.name}"
            await self._event(
                uow, ticket, now, BOT_ACTOR, "edited", before=ticket.status, note=note
            )
            notices = self._pings(ticket, now, staff.EDITED_HEADLINE, kind="edited")
            previous = self.directory.member(before.assignee_id) if before.assignee_id else None
            if target is not None and previous is not None:
                text_away = staff.relabelled_away(
                    ticket.id, ticket.category.value, "居民修改消息后", moved=True
                )
                notices.append(Notice(previous.telegram_id, text_away, ticket_id=ticket.id))
            return ticket, notices

        return await self._run(ticket_id, step)

    async def _refile(
        self, uow: UnitOfWork, ticket: Ticket, now: datetime
    ) -> tuple[Ticket, StaffMember | None]:
        """A re-categorised ticket saved; at level 0 it moves to the new category's first
        responder (the second value) when that is someone else."""
        target = None
        if ticket.level == 0:
            rungs = routing.ladder(self.directory, ticket.grid_id, ticket.category)
            available = await self.on_duty(uow, [m for r in rungs for m in r.staff], now)
            picked = routing.pick(rungs, 0, available)
            if picked is not None and picked.assignee.id != ticket.assignee_id:
                target = picked.assignee
                ticket = replace(ticket, assignee_id=target.id, level=picked.level)
        return await uow.tickets.save(ticket, now), target

    # -- what residents ask about ---------------------------------------------------------

    async def resident_reply(
        self, chat_id: int, resident_id: int, ticket_id: int, text: str
    ) -> str | None:
        """A reporter's reply to one of the bot's messages about their ticket: "不用了" /
        "已经好了" withdraw it, "进度?" asks where it stands. None: not about the ticket
        (the message then goes through intake like any other)."""
        async with self._uows() as uow:
            ticket = await uow.tickets.get(ticket_id)
        if ticket is None or ticket.chat_id != chat_id or ticket.reporter_id != resident_id:
            return None
        said = text.strip()
        if _WITHDRAW.search(said) and ticket.is_open:
            await self.cancel(ticket_id, resident_actor(resident_id), f"居民回复：{said[:50]}")
            return residents.withdrawn(ticket_id)
        if _PROGRESS.search(said):
            return self.progress(ticket, public=privacy.is_group(chat_id))
        return None

    def progress(self, ticket: Ticket, *, public: bool) -> str:
        """Where a ticket stands, in the resident's words (redacted where the group reads)."""
        expected = None
        if ticket.resolve_due_at is not None:
            expected = staff.clock_time(ticket.resolve_due_at, self.directory.timezone)
        text = residents.progress(ticket.id, ticket.status.value, ticket.plan_text, expected)
        return privacy.redact(text) if public else text

    async def resident_status(self, resident_id: int, *, public: bool) -> str:
        """/status: the resident's tickets that are not closed yet."""
        async with self._uows() as uow:
            tickets = await uow.tickets.by_reporter(resident_id)
        waiting = [t for t in tickets if t.is_open or t.status == TicketStatus.RESOLVED]
        if not waiting:
            return residents.NO_OPEN
        return residents.status_list([self.progress(t, public=public) for t in waiting])

    # -- what staff look at ---------------------------------------------------------------

    async def my_open(self, member: StaffMember) -> list[Ticket]:
        """A person's open tickets: urgent first, then by the nearest running deadline."""
        async with self._uows() as uow:
            tickets = await uow.tickets.open_for(member.id)
        return sorted(
            tickets, key=lambda t: (not t.urgent, sla.next_deadline(t) or t.created_at, t.id)
        )

    async def view(self, ticket_id: int, member: StaffMember) -> tuple[Ticket, list[TicketEvent]]:
        """One ticket with its history, for someone who may act on it."""
        async with self._uows() as uow:
            ticket = await uow.tickets.get(ticket_id)
            if ticket is None:
                raise TicketNotFound(f"ticket #{ticket_id} not found")
            if not sla.may_act(self.directory, ticket, member):
                raise NotAllowed(f"staff:{member.id} may not view ticket #{ticket_id}")
            return ticket, await uow.tickets.events(ticket_id)

    # -- what the scheduler calls --------------------------------------------------------

    async def fire(self, timer: Timer) -> str:
        """Act on one due timer; returns what was done (stored with the timer)."""
        outcome = "skipped"

        async def step(
            uow: UnitOfWork, ticket: Ticket, now: datetime
        ) -> tuple[Ticket, list[Notice]]:
            nonlocal outcome
            # Claim it first, so that re-arming the stage below does not cancel it.
            if not await uow.timers.finish(timer.id, now, "firing"):
                raise _AlreadyDone  # another worker fired it first: undo this attempt
            outcome, result, notices = await self._fire(uow, ticket, timer, now)
            await uow.timers.set_outcome(timer.id, outcome)
            return result, notices

        try:
            await self._run(timer.ticket_id, step)
        except _AlreadyDone:
            return ALREADY_DONE
        except TicketNotFound:
            async with self._uows() as uow:
                await uow.timers.finish(timer.id, self._clock.now(), "no ticket")
                await uow.commit()
            return "no ticket"
        return outcome

    async def _fire(
        self, uow: UnitOfWork, ticket: Ticket, timer: Timer, now: datetime
    ) -> tuple[str, Ticket, list[Notice]]:
        if timer.kind == "autoclose":
            if ticket.status != TicketStatus.RESOLVED:
                return "skipped", ticket, []
            status = TicketStatus.CLOSED
            ticket = await self._end(uow, ticket, now, BOT_ACTOR, status, "closed", "未评价")
            return "closed", ticket, []
        if not ticket.is_open:
            return "skipped", ticket, []
        if timer.kind == "day_end":
            policy = self.directory.sla
            after = sla.next_day_end(now, policy.day_end, self.directory.timezone)
            await uow.timers.add([NewTimer(ticket.id, "day_end", "", after)])
            await self._event(uow, ticket, now, BOT_ACTOR, "day_end", before=ticket.status)
            request = staff.day_end_request(ticket.id)
            return "asked", ticket, self._pings(ticket, now, request, kind="day_end")
        return await self._fire_stage(uow, ticket, timer, now)

    async def _fire_stage(  # noqa: PLR0911 - one early return per reason to do nothing
        self, uow: UnitOfWork, ticket: Ticket, timer: Timer, now: datetime
    ) -> tuple[str, Ticket, list[Notice]]:
        stage = Stage(timer.stage)
        due = ticket.due(stage)
        if stage not in sla.pending_stages(ticket) or due is None:
            return "skipped", ticket, []
        if timer.kind == "remind":
            # Past the deadline too (catching up after downtime): the breach says it all.
            if due <= now:
                return "skipped", ticket, []
            headline = staff.reminder(stage, due - now)
            return "reminded", ticket, self._pings(ticket, now, headline, kind="reminder")
        if due != timer.due_at:
            return "skipped", ticket, []  # the deadline moved; a newer timer holds it
        stage_name = sla.STAGE_NAMES[stage]
        await self._event(
            uow, ticket, now, BOT_ACTOR, "breach", before=ticket.status, note=stage_name
        )
        if stage == Stage.REPLY:
            headline = staff.reply_not_delivered(ticket.id)
            return "breach", ticket, self._pings(ticket, now, headline, kind="reminder")
        if sla.next_level(self.directory, ticket) is None:
            notices = self._pings(ticket, now, staff.top_level_overdue(stage), kind="reminder")
            return "breach at top", ticket, notices
        reason = f"超时上报：{stage_name}逾期"
        ticket, notices = await self._climb(uow, ticket, now, BOT_ACTOR, reason=reason, stage=stage)
        return "escalated", ticket, notices

    # -- the machinery -------------------------------------------------------------------

    async def _run(self, ticket_id: int, step: Step) -> Ticket:
        with about_ticket(ticket_id):  # every log line below names the ticket
            for attempt in range(ATTEMPTS):
                try:
                    async with self._uows() as uow:
                        ticket = await uow.tickets.get(ticket_id)
                        if ticket is None:
                            raise TicketNotFound(f"ticket #{ticket_id} not found")
                        now = self._clock.now()
                        before = ticket.status
                        ticket, notices = await step(uow, ticket, now)
                        # Queued with the change: committed together, or not at all.
                        await uow.outbox.add(notices, now)
                        await uow.commit()
                except StaleTicket:
                    logger.info("ticket #%d changed meanwhile; retry %d", ticket_id, attempt + 1)
                    continue
                if ticket.status != before:
                    logger.info(
                        "ticket #%d: %s -> %s", ticket_id, before.value, ticket.status.value
                    )
                self.wake()
                if notices:
                    await self.kick()
                return ticket
            raise StaleTicket(f"ticket #{ticket_id} kept changing; gave up after {ATTEMPTS} tries")

    async def send(self, notices: list[Notice]) -> None:
        """Queue notices that no ticket change carries (weekly notes, replies, fallbacks)."""
        if not notices:
            return
        async with self._uows() as uow:
            await uow.outbox.add(notices, self._clock.now())
            await uow.commit()
        await self.kick()

    async def after_delivery(self, notice: Notice, outcome: Delivery) -> None:
        """Told by the sender once a notice is sent or given up: a plan that reached the
        resident meets the reply stage; a refused ping to staff falls back to the group."""
        if notice.kind == PLAN_TO_RESIDENT:
            await self.delivered(notice, outcome == Delivery.SENT)
        elif (
            outcome == Delivery.REFUSED
            and (member := self.directory.by_telegram(notice.chat_id)) is not None
        ):
            await self.send(await self._unreachable(member, notice))

    async def _unreachable(self, member: StaffMember, notice: Notice) -> list[Notice]:
        """A private message to staff was refused (they never pressed Start, or blocked the
        bot). A new assignment is announced in the group with a mention, so the work is not
        silently lost; the admins hear once per person until they /start the bot."""
        now = self._clock.now()
        async with self._uows() as uow:
            presence = await self._presence(uow, member)
            first_time = presence.unreachable_since is None
            if first_time:
                await uow.presence.save(replace(presence, unreachable_since=now), now)
                await uow.commit()
            ticket = await uow.tickets.get(notice.ticket_id) if notice.ticket_id else None
        fallbacks: list[Notice] = []
        if ticket is not None and notice.kind == ASSIGNMENT:
            group = self.public_chat(ticket)
            if group is not None:
                text = staff.unreachable_in_group(member.name, ticket)
                fallbacks.append(
                    Notice(
                        group,
                        text,
                        ticket_id=ticket.id,
                        kind="mention",
                        mention=(member.telegram_id, member.name),
                    )
                )
        if first_time:
            logger.warning("staff %s cannot be reached in private chat; admins told", member.id)
            fallbacks += [
                Notice(
                    admin.telegram_id,
                    staff.unreachable_to_admin(member, ticket.id if ticket else None),
                    ticket_id=ticket.id if ticket else None,
                    kind="unreachable",
                )
                for admin in self.directory.staff
                if admin.role == Role.ADMIN and admin != member
            ]
        return fallbacks

    def public_chat(self, ticket: Ticket) -> int | None:
        """Where a mention about this ticket may go: its group, or for a private report the
        first group of its grid (the mention then says nothing about the report itself)."""
        if privacy.is_group(ticket.chat_id):
            return ticket.chat_id
        return next((g.chat_id for g in self.directory.groups if g.grid_id == ticket.grid_id), None)

    def _check(self, ticket: Ticket, action: Action, actor: Actor) -> None:
        # Who first: someone the ticket is not for learns nothing about where it stands.
        if actor.staff is not None and not sla.may_act(self.directory, ticket, actor.staff):
            raise NotAllowed(f"{actor.label} may not act on ticket #{ticket.id}")
        if actor.resident_id is not None and (
            actor.resident_id != ticket.reporter_id or action not in _RESIDENT_ACTIONS
        ):
            raise NotAllowed(f"{actor.label} may not {action.value} ticket #{ticket.id}")
        if ticket.status not in TRANSITIONS[action]:
            raise IllegalTransition(ticket.id, action, ticket.status)

    async def _accept(
        self, uow: UnitOfWork, ticket: Ticket, now: datetime, actor: Actor
    ) -> tuple[Ticket, list[Notice]]:
        before = ticket.status
        plan_due = now + self.directory.sla.plan
        assignee = ticket.assignee_id
        if actor.staff is not None:
            assignee = actor.staff.id  # whoever accepts owns it from now on
        ticket = await uow.tickets.save(
            replace(
                ticket,
                status=TicketStatus.ACCEPTED,
                accepted_at=now,
                plan_due_at=plan_due,
                assignee_id=assignee,
            ),
            now,
        )
        await uow.timers.cancel(ticket.id, now, stages=(Stage.UNDERSTAND,))
        await uow.timers.add(self._timers(ticket, Stage.PLAN, plan_due, now))
        await self._event(uow, ticket, now, actor, "accepted", before=before, note="")
        who = self.directory.member(assignee) if assignee else None
        return ticket, [self._to_resident(ticket, residents.accepted(ticket.id, who))]

    async def _end(  # noqa: PLR0917 - one call shape for every way a ticket ends
        self,
        uow: UnitOfWork,
        ticket: Ticket,
        now: datetime,
        actor: Actor,
        status: TicketStatus,
        kind: str,
        note: str,
    ) -> Ticket:
        """Closed, cancelled or merged: saved as such, every pending clock stopped, recorded."""
        before = ticket.status
        ticket = await uow.tickets.save(replace(ticket, status=status, closed_at=now), now)
        await uow.timers.cancel(ticket.id, now, stages=_ALL_STAGES, kinds=("day_end", "autoclose"))
        await self._event(uow, ticket, now, actor, kind, before=before, note=note)
        return ticket

    async def _climb(
        self,
        uow: UnitOfWork,
        ticket: Ticket,
        now: datetime,
        actor: Actor,
        *,
        reason: str,
        stage: Stage | None = None,
        rearm: bool = True,
    ) -> tuple[Ticket, list[Notice]]:
        """Raise the ticket one level (past rungs where nobody is on duty), hand it to the
        first person on duty there and re-arm the running stage."""
        rungs = routing.ladder(self.directory, ticket.grid_id, ticket.category)
        available = await self.on_duty(uow, [m for r in rungs for m in r.staff], now)
        picked = routing.pick(rungs, ticket.level + 1, available)
        if picked is None:
            return ticket, []
        rung = next(r for r in rungs if r.number == picked.level)
        previous = self.directory.member(ticket.assignee_id) if ticket.assignee_id else None
        policy = self.directory.sla
        changes: dict[str, object] = {"level": picked.level, "assignee_id": picked.assignee.id}
        # The reply stage is the bot's own job: it is never handed on.
        rearmed = [
            running
            for running in (sla.pending_stages(ticket) if rearm else [])
            if running != Stage.REPLY and stage in (None, running)
        ]
        for running in rearmed:
            changes[DUE_FIELD[running]] = now + policy.window(running, ticket.tier)
        ticket = await uow.tickets.save(replace(ticket, **changes), now)  # type: ignore[arg-type]
        level_name = sla.LEVEL_NAMES[picked.level]
        status = ticket.status.value
        await uow.tickets.add_events(  # both entries in one statement
            [
                TicketEvent(
                    ticket.id, now, actor.label, "escalated", status, status,
                    f"{reason} → {level_name}",
                ),
                TicketEvent(
                    ticket.id, now, actor.label, "assigned", status, status,
                    f"{picked.reason}：{picked.assignee.name}",
                ),
            ]
        )  # fmt: skip
        for running in rearmed:
            await uow.timers.cancel(ticket.id, now, stages=(running,))
            await uow.timers.add(self._timers(ticket, running, ticket.due(running), now))
        events = await uow.tickets.events(ticket.id)
        headline = staff.escalated_to_you(reason, level_name)
        body = staff.history(events, self.directory.timezone)
        # Everyone on duty at the new level hears it; the assignee even when nobody is.
        to = [m for m in rung.staff if available(m) or m == picked.assignee]
        notices = self._pings(ticket, now, headline, to=to, extra=body)
        if previous is not None and previous not in to:
            notices.append(
                Notice(
                    previous.telegram_id,
                    staff.escalated_away(ticket.id, level_name, reason),
                    ticket_id=ticket.id,
                    kind="escalated_away",
                )
            )
        logger.info("ticket #%d escalated to level %d: %s", ticket.id, picked.level, reason)
        return ticket, notices

    def _timers(
        self, ticket: Ticket, stage: Stage, due: datetime | None, now: datetime
    ) -> list[NewTimer]:
        """A stage's reminder (when still ahead) and breach, for a deadline ``due``."""
        if due is None:
            return []
        timers = []
        if stage != Stage.REPLY:  # the bot itself replies; nobody to remind
            remind = sla.remind_time(due, self.directory.sla.window(stage, ticket.tier))
            if remind > now:
                timers.append(NewTimer(ticket.id, "remind", stage.value, remind))
        timers.append(NewTimer(ticket.id, "breach", stage.value, due))
        return timers

    async def _event(
        self,
        uow: UnitOfWork,
        ticket: Ticket,
        now: datetime,
        actor: Actor,
        kind: str,
        *,
        before: TicketStatus | None,
        note: str = "",
    ) -> None:
        await uow.tickets.add_events(
            [
                TicketEvent(
                    ticket.id,
                    at=now,
                    actor=actor.label,
                    kind=kind,
                    from_status=before.value if before else None,
                    to_status=ticket.status.value,
                    note=note,
                )
            ]
        )

    def _pings(
        self,
        ticket: Ticket,
        now: datetime,
        headline: str,
        *,
        to: tuple[StaffMember, ...] | list[StaffMember] | None = None,
        extra: str = "",
        kind: str = ASSIGNMENT,
    ) -> list[Notice]:
        """A card for each recipient (by default the assignee) with the action buttons."""
        if to is None:
            member = self.directory.member(ticket.assignee_id) if ticket.assignee_id else None
            to = (member,) if member else ()
        text = self.card(ticket, now, headline)
        if extra:
            text = f"{text}\n\n{extra}"
        return [
            Notice(
                m.telegram_id, text, buttons=staff.buttons(ticket), ticket_id=ticket.id, kind=kind
            )
            for m in to
        ]

    def card(self, ticket: Ticket, now: datetime, headline: str) -> str:
        """A ticket as staff see it, with the deadline of the stage that is running."""
        stages = sla.pending_stages(ticket)
        stage = next((s for s in stages if s != Stage.RESOLVE), stages[0] if stages else None)
        window = self.directory.sla.window(stage, ticket.tier) if stage else None
        return staff.card(
            ticket,
            headline=headline,
            colour=sla.colour(ticket, self.directory.sla, now),
            stage=stage,
            due=ticket.due(stage) if stage else None,
            timezone=self.directory.timezone,
            window=window,
        )

    def _to_resident(self, ticket: Ticket, text: str, kind: str = "resident") -> Notice:
        if privacy.is_group(ticket.chat_id):
            text = privacy.redact(text)
        return Notice(
            ticket.chat_id, text, reply_to=ticket.message_id, ticket_id=ticket.id, kind=kind
        )

    async def _to_others(self, uow: UnitOfWork, ticket: Ticket, text: str) -> list[Notice]:
        """The same news for every "me too" reporter, each as a reply to their own message."""
        notices = []
        for report in await uow.reports.for_ticket(ticket.id):
            said = privacy.redact(text) if privacy.is_group(report.chat_id) else text
            notices.append(
                Notice(
                    report.chat_id,
                    said,
                    reply_to=report.message_id,
                    ticket_id=ticket.id,
                    kind="resident",
                )
            )
        return notices


# Replies a reporter gives to the bot's message about their ticket.
_WITHDRAW = re.compile(
    r"不用了|不需要了|已经好了|已经修好|自己修好|已经解决|已解决|不用来了|撤销|取消"
)
_PROGRESS = re.compile(r"进度|怎么样了|到哪了|什么时候|还没|有人管吗|[?？]$")
_ALL_STAGES = tuple(stage.value for stage in Stage)
_RESIDENT_ACTIONS = frozenset({Action.CANCEL, Action.CLOSE, Action.REOPEN, Action.RATE})


class _AlreadyDone(Exception):
    """A timer turned out to be fired already; the attempt's transaction is rolled back."""


def _note(text: str) -> str:
    return " ".join(text.split())[:MAX_NOTE]


async def _nothing() -> None:
    """No sender wired (a core without delivery): messages wait in the outbox."""
