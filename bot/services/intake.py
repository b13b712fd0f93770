"""Intake: a group message comes in; a request becomes a ticket and gets an answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.directory import DirectoryHolder, Grid
from bot.domain import (
    Button,
    Category,
    Home,
    LoggedMessage,
    NewTicket,
    Notice,
    Report,
    StaleTicket,
    Ticket,
    TicketEvent,
    TicketStatus,
    Tier,
)
from bot.metrics import Metrics
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services import metoo, outbox, routing
from bot.services.answers import AnswerBook
from bot.services.incidents import IncidentService
from bot.services.journal import Journal
from bot.services.rules import RuleBook
from bot.services.tickets import TicketService
from bot.texts import residents
from nlp import Classification

logger = logging.getLogger(__name__)
MAX_STORED_TEXT = 4000


@dataclass(frozen=True)
class IncomingMessage:
    """A text message from a group, as the edges hand it to the core."""

    chat_id: int
    message_id: int
    sender_id: int
    sender_name: str
    text: str
    sent_at: datetime


def storable(text: str, limit: int) -> str:
    """Text any database accepts: no NUL (PostgreSQL refuses it), no lone surrogates (not
    encodable), at most ``limit`` characters."""
    text = text.replace("\x00", "")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


class Outcome(StrEnum):
    """What intake made of a message."""

    UNKNOWN_GROUP = "unknown_group"
    NOT_REQUEST = "not_request"
    DUPLICATE = "duplicate"
    OPENED = "opened"
    ME_TOO = "me_too"  # attached to an open ticket about the same problem


@dataclass(frozen=True)
class IntakeResult:
    """The decision, the ticket if one exists, and what was queued with it: the reply to the
    resident (None: stay quiet) and the staff pings. Both are in the outbox already."""

    outcome: Outcome
    ticket: Ticket | None = None
    reply: str | None = None
    notices: tuple[Notice, ...] = ()  # staff pings, queued after the reply
    buttons: tuple[Button, ...] = ()  # under the reply (已解决，谢谢 after a known answer)


class IntakeService:
    """Classifies residents' messages and opens tickets for requests."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        rules: RuleBook,
        directory: DirectoryHolder,
        clock: Clock,
        tickets: TicketService,
        *,
        answers: AnswerBook,
        incidents: IncidentService,
        journal: Journal,
        metrics: Metrics | None = None,
    ) -> None:
        self._uows = uows
        self._rules = rules
        self._directory = directory
        self._clock = clock
        self._tickets = tickets
        self._answers = answers
        self._incidents = incidents
        self._journal = journal
        self._metrics = metrics

    async def receive_group_message(self, message: IncomingMessage) -> IntakeResult:
        """Handle one group message. Idempotent per (chat, message id)."""
        group = self._directory.current.group(message.chat_id)
        if group is None:
            return IntakeResult(Outcome.UNKNOWN_GROUP)
        grid = self._directory.current.grid(group.grid_id)
        return await self._receive(message, grid, None, log=True)

    async def receive_private_message(self, message: IncomingMessage, home: Home) -> IntakeResult:
        """Handle a resident's private message, placed by the home they told us. Answers in
        the private chat may name the room; nothing is posted in a group."""
        directory = self._directory.current
        if home.community_id is None or home.building is None:
            raise ValueError("ask where the resident lives before taking private reports")
        grid = directory.grid_for_building(home.community_id, home.building)
        if grid is None:  # the building left the file since they told us
            grid = directory.community(home.community_id).grids[0]
        return await self._receive(message, grid, home.building)

    async def receive_edit(self, message: IncomingMessage) -> Ticket | None:
        """A resident edited a group or private message. While its ticket is new (nobody
        accepted it yet) the ticket takes the new text and is classified again; edits of a
        ticket already in hand, and of messages that opened none, change nothing (logged)."""
        async with self._uows() as uow:
            ticket = await uow.tickets.by_message(message.chat_id, message.message_id)
        if ticket is None:
            logger.info("edit of %s/%s: no ticket, ignored", message.chat_id, message.message_id)
            return None
        if ticket.status != TicketStatus.NEW:
            logger.info("edit of #%d ignored: already %s", ticket.id, ticket.status.value)
            return ticket
        text = storable(message.text, MAX_STORED_TEXT)
        result = await self._rules.classify(ticket.community_id, text)
        topic = metoo.topic_words((e.rule, e.word) for e in result.evidence)
        category = Category(result.category) if result.is_request else None
        location = dict(result.location)
        return await self._tickets.edited(
            ticket.id,
            text,
            category=category,
            urgent=result.urgent,
            location=location,
            topic=topic,
        )

    async def _receive(
        self, message: IncomingMessage, home: Grid, home_building: str | None, *, log: bool = False
    ) -> IntakeResult:
        result = await self._rules.classify(home.community_id, message.text)
        outcome = IntakeResult(Outcome.NOT_REQUEST)
        if result.is_request:
            outcome = await self._request(message, home, home_building, result)
        if log and outcome.outcome != Outcome.DUPLICATE:
            await self._log(message, home.community_id, result, outcome.ticket)
        return outcome

    async def _request(
        self,
        message: IncomingMessage,
        home: Grid,
        home_building: str | None,
        result: Classification,
    ) -> IntakeResult:
        for attempt in range(3):
            try:
                return await self._open_or_attach(message, home, home_building, result)
            except StaleTicket:  # the ticket a "me too" joins changed meanwhile: look again
                logger.info("me-too target changed; retry %d", attempt + 1)
        return await self._open_or_attach(message, home, home_building, result, me_too=False)

    async def _log(
        self,
        message: IncomingMessage,
        community_id: str,
        result: Classification,
        ticket: Ticket | None,
    ) -> None:
        """Keep the message for the admins' what-if and review queue (written with others a
        moment later, see bot/services/journal.py). Best effort: the resident's ticket is
        already safe, and the journal logs a failed write rather than raising it."""
        await self._journal.log(
            LoggedMessage(
                id=0,
                community_id=community_id,
                chat_id=message.chat_id,
                message_id=message.message_id,
                at=self._clock.now(),
                text=storable(message.text, MAX_STORED_TEXT),
                category=result.category,
                confidence=result.confidence,
                urgent=result.urgent,
                ticket_id=ticket.id if ticket else None,
            )
        )

    async def _open_or_attach(
        self,
        message: IncomingMessage,
        home: Grid,
        home_building: str | None,
        result: Classification,
        me_too: bool = True,
    ) -> IntakeResult:
        directory = self._directory.current
        category = Category(result.category)
        location = dict(result.location)
        if home_building and not location.get("building"):
            location["building"] = home_building
        building = location.get("building")
        topic = metoo.topic_words((e.rule, e.word) for e in result.evidence)
        async with self._uows() as uow:
            existing = await uow.tickets.for_message(message.chat_id, message.message_id)
            if existing is not None:
                # Telegram redelivered the update, or we crashed before confirming it.
                return IntakeResult(Outcome.DUPLICATE, existing)
            now = self._clock.now()
            grid = routing.grid_for(directory, home, building)
            policy = directory.community(home.community_id).routing
            if me_too and policy.me_too and category in metoo.MERGEABLE and not result.urgent:
                since = now - policy.me_too_window
                candidates = await uow.tickets.open_like(
                    home.community_id, grid.id, category, since
                )
                same = metoo.find_same(candidates, grid_id=grid.id, building=building, topic=topic)
                if same is not None:
                    return await self._attach(uow, same, message, now)
            answer = None
            if category == Category.SERVICE:
                answer = await self._answers.match(grid.community_id, message.text)
            rungs = routing.ladder(directory, grid.id, category)
            available = await self._tickets.on_duty(uow, [m for r in rungs for m in r.staff], now)
            # The grid is resolved already: no building to override it again.
            where = routing.route(directory, grid, category, None, available)
            tier = Tier(result.tier)
            ticket = await uow.tickets.add(
                NewTicket(
                    community_id=grid.community_id,
                    grid_id=where.grid.id,
                    chat_id=message.chat_id,
                    message_id=message.message_id,
                    reporter_id=message.sender_id,
                    reporter_name=storable(message.sender_name, 200),
                    text=storable(message.text, MAX_STORED_TEXT),
                    category=category,
                    confidence=result.confidence,
                    urgent=result.urgent,
                    tier=tier,
                    created_at=now,
                    assignee_id=where.assignee.id if where.assignee else None,
                    location=location,
                    accept_due_at=now + directory.sla.understand,
                    resolve_due_at=now + directory.sla.resolve[tier],
                    level=where.level,
                    topic=topic,
                    answered=answer is not None,
                )
            )
            evidence = ", ".join(f"{e.word}({e.rule})" for e in result.evidence)
            assigned = f"{where.reason}：{where.assignee.name}" if where.assignee else where.reason
            await uow.tickets.add_events(
                [
                    TicketEvent(
                        ticket.id,
                        at=now,
                        actor=f"resident:{message.sender_id}",
                        kind="opened",
                        from_status=None,
                        to_status="new",
                        note=f"{category.value} {result.confidence:.2f} [{evidence}]",
                    ),
                    TicketEvent(ticket.id, now, "bot", "assigned", "new", "new", assigned),
                ]
            )
            notices = await self._tickets.arm_new(uow, ticket, now)
            reply = residents.acknowledgement(
                ticket.id,
                category=category,
                urgent=ticket.urgent,
                location=ticket.location,
                assignee=where.assignee,
                promise=directory.sla.understand,
            )
            buttons: tuple[Button, ...] = ()
            if answer is not None:
                reply = residents.with_answer(reply, answer.text)
                buttons = (Button(residents.SETTLED_BUTTON, f"x:{ticket.id}"),)
            kind = outbox.URGENT_ACK if ticket.urgent else outbox.ACK
            ack = Notice(message.chat_id, reply, message.message_id, buttons, ticket.id, kind)
            notices += await self._incidents.check(uow, ticket)
            # The answer and the pings are queued with the ticket: all of it or none of it.
            await uow.outbox.add([ack, *notices], now)
            await uow.commit()
        self._tickets.wake()
        await self._tickets.kick()
        if self._metrics is not None:
            self._metrics.ticket_opened(category.value)
        logger.info(
            "ticket #%d opened: %s in %s, assignee %s (%s)",
            ticket.id,
            category.value,
            grid.community_id,
            ticket.assignee_id,
            where.reason,
            extra={"ticket": ticket.id},
        )
        return IntakeResult(Outcome.OPENED, ticket, reply, tuple(notices), buttons)

    async def _attach(
        self, uow: UnitOfWork, ticket: Ticket, message: IncomingMessage, now: datetime
    ) -> IntakeResult:
        report = Report(
            ticket_id=ticket.id,
            chat_id=message.chat_id,
            message_id=message.message_id,
            reporter_id=message.sender_id,
            text=storable(message.text, MAX_STORED_TEXT),
            at=now,
        )
        attached = await self._tickets.attach(uow, ticket, report, now)
        if attached is None:
            return IntakeResult(Outcome.DUPLICATE, ticket)
        ticket, notices = attached
        directory = self._directory.current
        assignee = directory.member(ticket.assignee_id) if ticket.assignee_id else None
        reply = residents.me_too(ticket.id, ticket.households, assignee)
        ack = Notice(message.chat_id, reply, message.message_id, (), ticket.id, outbox.ME_TOO_ACK)
        notices = [*notices, *await self._incidents.check(uow, ticket)]
        await uow.outbox.add([ack, *notices], now)
        await uow.commit()
        await self._tickets.kick()
        logger.info(
            "message %s/%s joined #%d",
            message.chat_id,
            message.message_id,
            ticket.id,
            extra={"ticket": ticket.id},
        )
        return IntakeResult(Outcome.ME_TOO, ticket, reply, tuple(notices))
