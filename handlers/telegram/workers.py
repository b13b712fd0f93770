"""Grid workers, property managers and community/street staff: private chat with the bot.

Everything can be done with the buttons under a ticket card; the commands do the same for
those who prefer typing. Buttons that need details (处理方案 needs a tier and a line of plan,
办结 an optional note, 上报 a reason, 转派 a person) open a short dialogue: the bot asks, the
next private message answers. The dialogue lives in the person's ``user_data`` and expires;
a restart forgets it, and the person simply presses the button again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.core import Core
from bot.directory import StaffMember
from bot.domain import (
    Action,
    AtTopLevel,
    Button,
    IllegalTransition,
    NotAllowed,
    Ticket,
    TicketNotFound,
    Tier,
)
from bot.roster import describe
from bot.services import sla
from bot.services.tickets import Actor, staff_actor
from bot.texts import staff as texts
from handlers.telegram.deps import core
from handlers.telegram.notifier import keyboard

logger = logging.getLogger(__name__)

Act = Callable[[Core, int, Actor, list[str]], Awaitable[Ticket]]
DIALOGUE_KEY = "dialogue"
DIALOGUE_SECONDS = 30 * 60  # an unanswered question is forgotten after half an hour


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


async def _reassign(c: Core, ticket_id: int, actor: Actor, rest: list[str]) -> Ticket:
    return await c.tickets.reassign(ticket_id, actor, rest[0], " ".join(rest[1:]))


async def _relabel(c: Core, ticket_id: int, actor: Actor, rest: list[str]) -> Ticket:
    return await c.tickets.relabel(ticket_id, actor, rest[0])


ACTIONS: dict[str, Act] = {
    "accept": _accept,
    "resolve": _resolve,
    "escalate": _escalate,
    "follow_up": _follow_up,
    "plan": _plan,
    "reassign": _reassign,
    "relabel": _relabel,
}
# Buttons that ask for details first, and the lifecycle action each one leads to.
ASKING = {
    "plan": Action.PLAN,
    "resolve": Action.RESOLVE,
    "escalate": Action.ESCALATE,
    "reassign": Action.REASSIGN,
    "relabel": Action.RELABEL,
}
RELABEL_LABELS = {label for label, _name in texts.RELABEL_CHOICES}


def _member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> StaffMember | None:
    user = update.effective_user
    return core(context).directory.current.by_telegram(user.id) if user else None


async def _staff_message(
    update: Update, context: ContextTypes.DEFAULT_TYPE
) -> tuple[Message, StaffMember] | None:
    """The message and its staff sender; anyone else is told the command is for staff."""
    message = update.effective_message
    if message is None:
        return None
    member = _member(update, context)
    if member is None:
        await message.reply_text(texts.NOT_STAFF)
        return None
    return message, member


def _refusal(exc: Exception, ticket_id: int, action: str, who: str) -> str:
    """A domain error as a polite answer; refusals of foreign tickets are logged."""
    if isinstance(exc, TicketNotFound):
        return texts.not_found(ticket_id)
    if isinstance(exc, IllegalTransition):
        return texts.illegal(ticket_id, exc.action.value, exc.status.value)
    if isinstance(exc, AtTopLevel):
        return texts.top_level(ticket_id)
    if isinstance(exc, ValueError):
        return texts.USAGE_TEXT
    logger.warning("refused %s on #%d by %s: %s", action, ticket_id, who, exc)
    return texts.not_allowed(ticket_id)


_DOMAIN_ERRORS = (TicketNotFound, IllegalTransition, AtTopLevel, NotAllowed, ValueError)


async def _perform(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    action: str,
    ticket_id: int,
    *,
    rest: list[str],
) -> str:
    """Run one action as the sender; domain errors become a polite answer."""
    member = _member(update, context)
    user = update.effective_user
    if member is None:
        logger.info("refused %s on #%s from non-staff user %s", action, ticket_id, user and user.id)
        return texts.NOT_STAFF
    try:
        ticket = await ACTIONS[action](core(context), ticket_id, staff_actor(member), rest)
    except _DOMAIN_ERRORS as exc:
        return _refusal(exc, ticket_id, action, member.id)
    if action == "relabel":
        holder = core(context).directory.current.member(ticket.assignee_id or "")
        return texts.relabelled(ticket_id, rest[0], holder)
    answer = texts.done(ticket_id, action)
    if action == "accept":
        answer += "\n" + texts.plan_hint(ticket_id)
    return answer


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


async def _choice_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, action: str, command: str
) -> None:
    """A command answered with buttons to choose from (转派, 分类有误)."""
    message = update.effective_message
    if message is None:
        return
    ticket_id = _ticket_number(list(context.args or []))
    if ticket_id is None:
        await message.reply_text(f"请写明工单号，例如：/{command} 12")
        return
    text, buttons = await _ask(update, context, action, ticket_id)
    await message.reply_text(text, reply_markup=keyboard(buttons))


async def on_reassign(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reassign N: choose someone of the grid or community to pass the ticket to (转派)."""
    await _choice_command(update, context, "reassign", "reassign")


async def on_relabel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/relabel N: say what the message really was (分类有误): another category or none."""
    await _choice_command(update, context, "relabel", "relabel")


async def on_staff_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Staff commands."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(texts.HELP)


# -- buttons and the dialogues they open --------------------------------------------------


def _dialogue(context: ContextTypes.DEFAULT_TYPE) -> dict[str, Any] | None:
    data = context.user_data
    if data is None:
        return None
    pending = data.get(DIALOGUE_KEY)
    if not isinstance(pending, dict) or time.monotonic() - pending["since"] > DIALOGUE_SECONDS:
        data.pop(DIALOGUE_KEY, None)
        return None
    return pending


def _open_dialogue(
    context: ContextTypes.DEFAULT_TYPE, action: str, ticket_id: int, **extra: Any
) -> None:
    if context.user_data is not None:
        context.user_data[DIALOGUE_KEY] = {
            "action": action,
            "ticket": ticket_id,
            "since": time.monotonic(),
            **extra,
        }


def _close_dialogue(context: ContextTypes.DEFAULT_TYPE) -> None:
    if context.user_data is not None:
        context.user_data.pop(DIALOGUE_KEY, None)


async def _may(
    update: Update, context: ContextTypes.DEFAULT_TYPE, action: str, ticket_id: int
) -> Ticket | str:
    """The ticket if the sender may do ``action`` to it now, else the polite refusal."""
    member = _member(update, context)
    if member is None:
        return texts.NOT_STAFF
    try:
        return await core(context).tickets.check(ticket_id, ASKING[action], staff_actor(member))
    except _DOMAIN_ERRORS as exc:
        return _refusal(exc, ticket_id, action, member.id)


async def _ask(
    update: Update, context: ContextTypes.DEFAULT_TYPE, action: str, ticket_id: int
) -> tuple[str, tuple[Button, ...]]:
    """The question a detail-needing button asks (with its buttons), or a refusal (none)."""
    ticket = await _may(update, context, action, ticket_id)
    if isinstance(ticket, str):
        return ticket, ()
    _close_dialogue(context)
    if action == "plan":
        tiers = tuple(Button(texts.TIER_NAME[t], f"p:{ticket_id}:{t.value}") for t in Tier)
        return texts.choose_tier(ticket_id), tiers
    if action == "resolve":
        _open_dialogue(context, "resolve", ticket_id)
        return texts.ask_resolve_note(ticket_id), (Button("直接办结", f"d:{ticket_id}:resolve"),)
    if action == "escalate":
        _open_dialogue(context, "escalate", ticket_id)
        return texts.ask_escalate_reason(ticket_id), (
            Button("直接上报", f"d:{ticket_id}:escalate"),
        )
    return _choose(context, action, ticket)


def _choose(
    context: ContextTypes.DEFAULT_TYPE, action: str, ticket: Ticket
) -> tuple[str, tuple[Button, ...]]:
    """The buttons to pick from: a category (分类有误) or a person (转派)."""
    if action == "relabel":
        return texts.choose_label(ticket), tuple(
            Button(name, f"l:{ticket.id}:{label}")
            for label, name in texts.RELABEL_CHOICES
            if label != ticket.category.value
        )
    candidates = core(context).tickets.reassign_candidates(ticket)
    if not candidates:
        return texts.NO_CANDIDATES, ()
    return texts.choose_reassign(ticket.id), tuple(
        Button(f"{m.name}", f"a:{ticket.id}:{m.id}") for m in candidates
    )


def _parse(
    data: str | None, prefix: str, choices: set[str] | None = None
) -> tuple[int, str] | None:
    """``prefix:<ticket>:<choice>`` → (ticket, choice); None for anything else."""
    parts = (data or "").split(":")
    if len(parts) != 3 or parts[0] != prefix or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    if choices is not None and parts[2] not in choices:
        return None
    return int(parts[1]), parts[2]


async def _refuse_malformed(update: Update) -> None:
    query = update.callback_query
    if query is not None:
        logger.warning("refused malformed button data %r from %s", query.data, query.from_user.id)
        await query.answer("无法识别的操作")


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button on a ticket card: t:<ticket>:<accept|plan|resolve|escalate|reassign|relabel>."""
    query = update.callback_query
    if query is None:
        return
    parsed = _parse(query.data, "t", {"accept", *ASKING})
    if parsed is None:
        await _refuse_malformed(update)
        return
    ticket_id, action = parsed
    if action == "accept":
        answer = await _perform(update, context, action, ticket_id, rest=[])
        await query.answer(answer[:190], show_alert=True)
        return
    text, buttons = await _ask(update, context, action, ticket_id)
    if not buttons:
        await query.answer(text[:190], show_alert=True)  # refused: say so on the spot
        return
    await query.answer()
    await context.bot.send_message(query.from_user.id, text, reply_markup=keyboard(buttons))


async def on_tier(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """处理方案, step two: p:<ticket>:<tier> chosen; now ask for one line of plan."""
    query = update.callback_query
    if query is None:
        return
    parsed = _parse(query.data, "p", {t.value for t in Tier})
    if parsed is None:
        await _refuse_malformed(update)
        return
    ticket_id, tier = parsed
    allowed = await _may(update, context, "plan", ticket_id)
    if isinstance(allowed, str):  # refused, or no longer theirs (taken over, resolved …)
        await query.answer(allowed[:190], show_alert=True)
        return
    _open_dialogue(context, "plan", ticket_id, tier=tier)
    await query.answer()
    await context.bot.send_message(query.from_user.id, texts.ask_plan_text(ticket_id, Tier(tier)))


async def on_direct(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """直接办结 / 直接上报: d:<ticket>:<resolve|escalate> without a note."""
    query = update.callback_query
    if query is None:
        return
    parsed = _parse(query.data, "d", {"resolve", "escalate"})
    if parsed is None:
        await _refuse_malformed(update)
        return
    ticket_id, action = parsed
    _close_dialogue(context)
    answer = await _perform(update, context, action, ticket_id, rest=[])
    await query.answer(answer[:190], show_alert=True)


async def on_reassign_to(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """转派, step two: a:<ticket>:<staff id> chosen (checked against the candidates)."""
    query = update.callback_query
    if query is None:
        return
    parsed = _parse(query.data, "a")
    if parsed is None:
        await _refuse_malformed(update)
        return
    ticket_id, staff_id = parsed
    ticket = await _may(update, context, "reassign", ticket_id)
    if isinstance(ticket, str):
        await query.answer(ticket[:190], show_alert=True)
        return
    if staff_id not in {m.id for m in core(context).tickets.reassign_candidates(ticket)}:
        logger.warning("refused 转派 of #%d to %r by %s", ticket_id, staff_id, query.from_user.id)
        await query.answer(texts.NOT_A_CANDIDATE, show_alert=True)
        return
    answer = await _perform(update, context, "reassign", ticket_id, rest=[staff_id])
    await query.answer(answer[:190], show_alert=True)


async def on_relabel_to(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """分类有误, step two: l:<ticket>:<repair|dispute|service|none> chosen."""
    query = update.callback_query
    if query is None:
        return
    parsed = _parse(query.data, "l", RELABEL_LABELS)
    if parsed is None:
        await _refuse_malformed(update)
        return
    ticket_id, label = parsed
    answer = await _perform(update, context, "relabel", ticket_id, rest=[label])
    await query.answer(answer[:190], show_alert=True)


async def _resolve_incident(
    update: Update, context: ContextTypes.DEFAULT_TYPE, incident_id: int, note: str
) -> str:
    member = _member(update, context)
    if member is None:
        return texts.NOT_STAFF
    try:
        _incident, count = await core(context).incidents.resolve(
            incident_id, staff_actor(member), note
        )
    except TicketNotFound:
        return texts.incident_not_found(incident_id)
    except NotAllowed:
        logger.warning("refused to resolve incident #%d by %s", incident_id, member.id)
        return texts.INCIDENT_NOT_ALLOWED
    return texts.incident_resolved(incident_id, count)


async def on_incident_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """事件办结 under a red alert: i:<incident>:resolve."""
    query = update.callback_query
    if query is None:
        return
    parsed = _parse(query.data, "i", {"resolve"})
    if parsed is None:
        await _refuse_malformed(update)
        return
    answer = await _resolve_incident(update, context, parsed[0], "")
    await query.answer(answer[:190], show_alert=True)


async def on_incident(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/incident N [说明]: resolve an incident and every open ticket in it."""
    message = update.effective_message
    if message is None:
        return
    args = list(context.args or [])
    incident_id = _ticket_number(args)
    if incident_id is None:
        await message.reply_text(texts.USAGE_INCIDENT)
        return
    await message.reply_text(
        await _resolve_incident(update, context, incident_id, " ".join(args[1:]))
    )


async def on_staff_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """A staff member's private message: the answer to the bot's question, if one is open.

    Returns False when the sender is not staff (the resident handlers take it then).
    """
    message = update.effective_message
    member = _member(update, context)
    if message is None or member is None:
        return False
    pending = _dialogue(context)
    text = (message.text or "").strip()
    if pending is None:
        await message.reply_text(texts.NOTHING_PENDING)
        return True
    if not text:
        await message.reply_text(texts.USAGE_TEXT)
        return True
    _close_dialogue(context)
    action, ticket_id = pending["action"], int(pending["ticket"])
    rest = text.split()
    if action == "plan":
        rest = [pending["tier"], *rest]
    await message.reply_text(await _perform(update, context, action, ticket_id, rest=rest))
    return True


async def on_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: forget the open question."""
    message = update.effective_message
    if message is None:
        return
    had = _dialogue(context) is not None
    _close_dialogue(context)
    await message.reply_text(texts.DIALOGUE_CANCELLED if had else texts.NOTHING_PENDING)


# -- availability -------------------------------------------------------------------------


async def on_off_duty(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/offduty: new tickets go to the backup; unaccepted ones are handed over now."""
    found = await _staff_message(update, context)
    if found is None:
        return
    message, member = found
    handed, kept = await core(context).tickets.set_off_duty(member)
    await message.reply_text(texts.off_duty(handed, kept))


async def on_on_duty(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/onduty: back at work (outside the roster: until midnight)."""
    found = await _staff_message(update, context)
    if found is None:
        return
    message, member = found
    the_core = core(context)
    until = await the_core.tickets.set_on_duty(member)
    timezone = the_core.directory.current.timezone
    shown = texts.clock_time(until, timezone) if until else None
    await message.reply_text(texts.on_duty(shown, describe(member.roster)))


async def on_staff_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """/start from staff: they can be messaged now. False when the sender is not staff."""
    message = update.effective_message
    member = _member(update, context)
    if message is None or member is None:
        return False
    await core(context).tickets.reachable(member)
    await message.reply_text(texts.welcome(member.name) + "\n\n" + texts.HELP)
    return True


# -- looking at tickets -------------------------------------------------------------------


async def on_my_tickets(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mytickets: my open tickets, urgent and nearest deadline first."""
    found = await _staff_message(update, context)
    if found is None:
        return
    message, member = found
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
    found = await _staff_message(update, context)
    if found is None:
        return
    message, member = found
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
