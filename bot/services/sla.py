"""The 5321 rule as arithmetic: deadlines, colours, the day's end and the escalation ladder.

Pure functions over the directory and a ticket; the lifecycle service stores what they compute.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.directory import Directory, SlaPolicy, StaffMember
from bot.domain import Colour, Role, Stage, Ticket, TicketStatus
from bot.services.routing import Level, ladder

REMIND_AT = 0.8  # a reminder goes out when 80% of a stage's time is used (黄色预警)
TOP_LEVEL = 3

LEVEL_NAMES = {0: "责任人", 1: "备岗", 2: "社区", 3: "街道"}
STAGE_NAMES = {
    Stage.UNDERSTAND: "接单（了解情况）",
    Stage.PLAN: "商定处理方案",
    Stage.REPLY: "回复居民",
    Stage.RESOLVE: "办结",
}


def pending_stages(ticket: Ticket) -> list[Stage]:
    """The stages whose clocks are running for this ticket."""
    if not ticket.is_open:
        return []
    stages: list[Stage] = []
    if ticket.status in (TicketStatus.NEW, TicketStatus.REOPENED):
        stages.append(Stage.UNDERSTAND)
    elif ticket.status == TicketStatus.ACCEPTED:
        stages.append(Stage.PLAN)
    if ticket.status == TicketStatus.PLANNED and ticket.replied_at is None:
        stages.append(Stage.REPLY)
    stages.append(Stage.RESOLVE)
    return stages


def next_deadline(ticket: Ticket) -> datetime | None:
    """The nearest running deadline, if any."""
    dues = [d for d in (ticket.due(s) for s in pending_stages(ticket)) if d is not None]
    return min(dues, default=None)


def remind_time(due: datetime, window: timedelta) -> datetime:
    """When to remind: once 80% of the window is used."""
    return due - window * (1 - REMIND_AT)


def colour(ticket: Ticket, sla: SlaPolicy, now: datetime) -> Colour:
    """分色预警: the worst state among the running deadlines; urgent tickets are red."""
    stages = pending_stages(ticket)
    if not stages:
        return Colour.NONE
    worst = Colour.GREEN
    for stage in stages:
        due = ticket.due(stage)
        if due is None:
            continue
        if now >= due:
            return Colour.RED
        if now >= remind_time(due, sla.window(stage, ticket.tier)):
            worst = Colour.YELLOW
    return Colour.RED if ticket.urgent else worst


def next_day_end(after: datetime, day_end: time, timezone: str) -> datetime:
    """The first local ``day_end`` strictly after ``after``, as an aware datetime."""
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), day_end, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), day_end, tzinfo=zone)
    return candidate


def next_level(directory: Directory, ticket: Ticket) -> Level | None:
    """The next rung above the ticket's level, or None at the top."""
    for rung in ladder(directory, ticket.grid_id, ticket.category):
        if rung.number > ticket.level:
            return rung
    return None


def may_act(directory: Directory, ticket: Ticket, staff: StaffMember) -> bool:
    """The current assignee, anyone on the ticket's rung or above, or an admin."""
    if staff.role == Role.ADMIN or staff.id == ticket.assignee_id:
        return True
    return any(
        rung.number >= ticket.level and staff in rung.staff
        for rung in ladder(directory, ticket.grid_id, ticket.category)
    )
