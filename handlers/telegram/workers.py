"""Grid workers, property managers and community/street staff: private chat with the bot."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import ContextTypes

from bot.core import Core
from bot.directory import StaffMember
from bot.domain import AtTopLevel, IllegalTransition, NotAllowed, Ticket, TicketNotFound
from bot.services import sla
from bot.services.tickets import Actor, staff_actor
from bot.texts import staff as texts
from handlers.telegram.deps import core

logger = logging.getLogger(__name__)

Act = Callable[[Core, int, Actor, list[str]], Awaitable[Ticket]]


async def _perform(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    action: str,
    ticket_id: int,
    *,
    rest: list[str],
) -> str:
    """Run one action as the sender; domain errors become a polite answer."""
    the_core = core(context)
    user = update.effective_user
    member = the_core.directory.current.by_telegram(user.id) if user else None
    if member is None:
        logger.info("refused %s on #%s from non-staff user %s", action, ticket_id, user and user.id)
        return texts.NOT_STAFF
    try:
        await ACTIONS[action](the_core, ticket_id, staff_actor(member), rest)
    except TicketNotFound:
        return texts.not_found(ticket_id)
    except IllegalTransition as exc:
        return texts.illegal(ticket_id, exc.action.value, exc.status.value)
    except NotAllowed:
        logger.warning("refused %s on #%d by %s: not theirs", action, ticket_id, member.id)
        return texts.not_allowed(ticket_id)
    except AtTopLevel:
        return texts.top_level(ticket_id)
    answer = texts.done(ticket_id, action)
    if action == "accept":
        answer += "\n" + texts.plan_hint(ticket_id)
    return answer


async def _accept(c: Core, ticket_id: int, actor: Actor, rest: list[str]) -> Ticket:
    return await c.tickets.accept(ticket_id, actor)


async def _resolve(c: Core, ticket_id: int, actor: Actor, rest: list[str]) -> Ticket:
    return await c.tickets.resolve(ticket_id, actor, " ".join(rest))


async def _escalate(c: Core, ticket_id: int, actor: Actor, rest: list[str]) -> Ticket:
    return await c.tickets.escalate(ticket_id, actor, " ".join(rest))


async def _follow_up(c: Core, ticket_id: int, actor: Actor, rest: list[str]) -> Ticket:
    return await c.tickets.follow_up(ticket_id, actor, " ".join(rest))


async def _plan(c: Core, ticket_id: int, actor: Actor, rest: list[str]) -> Ticket:
    tier = texts.TIER_BY_NAME[rest[0]]
    return await c.tickets.plan(ticket_id, actor, tier, " ".join(rest[1:]))


ACTIONS: dict[str, Act] = {
    "accept": _accept,
    "resolve": _resolve,
    "escalate": _escalate,
    "follow_up": _follow_up,
    "plan": _plan,
}


def _ticket_number(args: list[str]) -> int | None:
    if not args:
        return None
    number = args[0].lstrip("#＃")
    return int(number) if number.isdigit() and len(number) < 12 else None


async def _command(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    message = update.effective_message
    if message is None:
        return
    args = list(context.args or [])
    ticket_id = _ticket_number(args)
    if ticket_id is None:
        await message.reply_text(texts.USAGE_PLAN if action == "plan" else texts.USAGE_NUMBER)
        return
    rest = args[1:]
    if action == "plan" and (len(rest) < 2 or rest[0] not in texts.TIER_BY_NAME):
        await message.reply_text(texts.USAGE_PLAN)
        return
    if action == "follow_up" and not rest:
        await message.reply_text(texts.USAGE_TEXT)
        return
    await message.reply_text(await _perform(update, context, action, ticket_id, rest=rest))


async def on_accept(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/accept N: take a ticket (接单)."""
    await _command(update, context, "accept")


async def on_plan(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/plan N 一般|较大|特别复杂 text: the plan, told to the resident at once."""
    await _command(update, context, "plan")


async def on_resolve(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/resolve N [note]: mark a ticket resolved (办结)."""
    await _command(update, context, "resolve")


async def on_escalate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/escalate N reason: send a ticket one level up (上报)."""
    await _command(update, context, "escalate")


async def on_follow_up(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/followup N text: the follow-up plan when a ticket cannot be solved today."""
    await _command(update, context, "follow_up")


async def on_staff_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Staff commands."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(texts.HELP)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button on a ticket card: t:<ticket>:<action>."""
    query = update.callback_query
    if query is None:
        return
    parts = (query.data or "").split(":")
    if len(parts) != 3 or parts[0] != "t" or not parts[1].isdigit() or parts[2] not in ACTIONS:
        logger.warning("refused malformed button data %r from %s", query.data, query.from_user.id)
        await query.answer("无法识别的操作")
        return
    if parts[2] in ("plan", "follow_up"):
        await query.answer(
            texts.USAGE_PLAN if parts[2] == "plan" else texts.USAGE_TEXT, show_alert=True
        )
        return
    answer = await _perform(update, context, parts[2], int(parts[1]), rest=[])
    await query.answer(answer[:190], show_alert=True)


def _member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> StaffMember | None:
    user = update.effective_user
    return core(context).directory.current.by_telegram(user.id) if user else None


async def on_my_tickets(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mytickets: my open tickets, urgent and nearest deadline first."""
    message = update.effective_message
    member = _member(update, context)
    if message is None:
        return
    if member is None:
        await message.reply_text(texts.NOT_STAFF)
        return
    the_core = core(context)
    tickets = await the_core.tickets.my_open(member)
    if not tickets:
        await message.reply_text(texts.NO_OPEN_TICKETS)
        return
    now = the_core.clock.now()
    directory = the_core.directory.current
    lines = [
        texts.ticket_line(
            t,
            sla.colour(t, directory.sla, now),
            sla.next_deadline(t),
            directory.timezone,
        )
        for t in tickets
    ]
    await message.reply_text(texts.ticket_list(lines))


async def on_ticket(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ticket N: one ticket with its history."""
    message = update.effective_message
    member = _member(update, context)
    if message is None:
        return
    if member is None:
        await message.reply_text(texts.NOT_STAFF)
        return
    ticket_id = _ticket_number(list(context.args or []))
    if ticket_id is None:
        await message.reply_text("请写明工单号，例如：/ticket 12")
        return
    the_core = core(context)
    try:
        ticket, events = await the_core.tickets.view(ticket_id, member)
    except TicketNotFound:
        await message.reply_text(texts.not_found(ticket_id))
        return
    except NotAllowed:
        await message.reply_text(texts.not_allowed(ticket_id))
        return
    headline = f"工单 #{ticket.id}（{texts.STATUS_NAME.get(ticket.status.value, '')}）"
    card = the_core.tickets.card(ticket, the_core.clock.now(), headline)
    history = texts.history(events, the_core.directory.current.timezone, limit=20)
    await message.reply_text(f"{card}\n\n{history}")
