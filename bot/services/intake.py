"""Intake: a group message comes in; a request becomes a ticket and gets an answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.directory import DirectoryHolder
from bot.domain import Category, NewTicket, Notice, Ticket, Tier
from bot.ports import Clock, UnitOfWorkFactory
from bot.services.routing import route
from bot.services.rules import RuleBook
from bot.services.tickets import TicketService
from bot.texts import residents

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


@dataclass(frozen=True)
class IntakeResult:
    """The decision, the ticket if one exists, and the reply to post (None: stay quiet)."""

    outcome: Outcome
    ticket: Ticket | None = None
    reply: str | None = None
    notices: tuple[Notice, ...] = ()  # staff pings, sent after the reply


class IntakeService:
    """Classifies group messages and opens tickets for requests."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        rules: RuleBook,
        directory: DirectoryHolder,
        clock: Clock,
        tickets: TicketService,
    ) -> None:
        self._uows = uows
        self._rules = rules
        self._directory = directory
        self._clock = clock
        self._tickets = tickets

    async def receive_group_message(self, message: IncomingMessage) -> IntakeResult:
        """Handle one group message. Idempotent per (chat, message id)."""
        directory = self._directory.current
        group = directory.group(message.chat_id)
        if group is None:
            return IntakeResult(Outcome.UNKNOWN_GROUP)
        result = await self._rules.classify(group.community_id, message.text)
        if not result.is_request:
            return IntakeResult(Outcome.NOT_REQUEST)
        category = Category(result.category)
        where = route(directory, group, category, result.location.get("building"))
        async with self._uows() as uow:
            existing = await uow.tickets.by_message(message.chat_id, message.message_id)
            if existing is not None:
                # Telegram redelivered the update, or we crashed before confirming it.
                return IntakeResult(Outcome.DUPLICATE, existing)
            now = self._clock.now()
            tier = Tier(result.tier)
            ticket = await uow.tickets.add(
                NewTicket(
                    community_id=group.community_id,
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
                    location=result.location,
                    accept_due_at=now + directory.sla.understand,
                    resolve_due_at=now + directory.sla.resolve[tier],
                )
            )
            evidence = ", ".join(f"{e.word}({e.rule})" for e in result.evidence)
            await uow.tickets.add_event(
                ticket.id,
                at=now,
                actor=f"resident:{message.sender_id}",
                kind="opened",
                from_status=None,
                to_status="new",
                note=f"{category.value} {result.confidence:.2f} [{evidence}]",
            )
            await uow.tickets.add_event(
                ticket.id,
                at=now,
                actor="bot",
                kind="assigned",
                from_status="new",
                to_status="new",
                note=where.reason,
            )
            notices = await self._tickets.arm_new(uow, ticket, now)
            await uow.commit()
        self._tickets.wake()
        logger.info(
            "ticket #%d opened: %s in %s, assignee %s (%s)",
            ticket.id,
            category.value,
            group.community_id,
            ticket.assignee_id,
            where.reason,
        )
        reply = residents.acknowledgement(
            ticket.id,
            category=category,
            urgent=ticket.urgent,
            location=ticket.location,
            assignee=where.assignee,
            promise=directory.sla.understand,
        )
        return IntakeResult(Outcome.OPENED, ticket, reply, tuple(notices))
