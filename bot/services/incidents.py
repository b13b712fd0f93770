"""工单预警: several reports of the same thing close together become one incident.

When a community's ``burst_building`` reports of one category come from one building, or
``burst_community`` from the whole community, within ``burst_window`` (3, 5 and 15 minutes
by default; see the community file's ``routing``), the bot opens an incident in the same
transaction as the report that tipped it over: the tickets are grouped, the community's
staff get a red alert with a 事件办结 button, and each affected group gets one notice
("已知悉3号楼停水，正在处理，无需重复报告"). Later reports of the same thing join the incident
quietly. Resolving the incident resolves every open ticket in it, each resident told as usual.
"""

from __future__ import annotations

import logging
from collections import Counter

from bot.directory import Directory, DirectoryHolder, StaffMember
from bot.domain import (
    Button,
    IllegalTransition,
    Incident,
    NotAllowed,
    Notice,
    Role,
    StaleTicket,
    Ticket,
    TicketEvent,
    TicketNotFound,
)
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services import metoo
from bot.services.tickets import Actor, TicketService
from bot.texts import residents, staff

logger = logging.getLogger(__name__)
ALERT = "incident_alert"
NOTICE = "incident_notice"
_GENERIC = frozenset({"坏了", "不行", "问题"})


class IncidentService:
    """Opens incidents as reports come in, and resolves them as one."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        directory: DirectoryHolder,
        clock: Clock,
        tickets: TicketService,
    ) -> None:
        self._uows = uows
        self._directory = directory
        self._clock = clock
        self._tickets = tickets

    @property
    def directory(self) -> Directory:
        """The current organisation snapshot."""
        return self._directory.current

    async def check(self, uow: UnitOfWork, ticket: Ticket) -> list[Notice]:
        """After a report was taken (inside intake's transaction): open an incident if the
        report tipped its building or community over the threshold; join an open one."""
        if ticket.incident_id is not None or ticket.category not in metoo.MERGEABLE:
            return []  # a service question is each resident's own, however many ask
        now = self._clock.now()
        policy = self.directory.community(ticket.community_id).routing
        since = now - policy.burst_window
        building = ticket.location.get("building", "")
        # Open incidents about the building and about the whole community, in one query.
        open_ones = await uow.incidents.open_about(
            ticket.community_id, ticket.category, {building, ""}
        )
        if building and await self._join(uow, ticket, open_ones, building):
            return []
        reports = await uow.incidents.recent_reports(ticket.community_id, ticket.category, since)
        free = [(t, n) for t, n in reports if t.incident_id is None]  # not grouped already
        here = [(t, n) for t, n in free if building and t.location.get("building") == building]
        topic, members = _same_thing(here, ticket)
        scope = building
        if not building or sum(n for _, n in members) < policy.burst_building:
            if await self._join(uow, ticket, open_ones, ""):
                return []
            topic, members = _same_thing(free, ticket)
            scope = ""
            if sum(n for _, n in members) < policy.burst_community:
                return []
        grouped = [t for t, _ in members if t.is_open]
        incident = await uow.incidents.add(ticket.community_id, scope, ticket.category, topic, now)
        await uow.incidents.link(incident.id, [t.id for t in grouped])
        await self._grouped(uow, incident, grouped)
        count = sum(n for _, n in members)
        logger.warning(
            "incident #%d opened: %d %s reports in %s %s",
            incident.id,
            count,
            ticket.category.value,
            ticket.community_id,
            scope or "(community)",
        )
        return self._alerts(incident, grouped, count)

    async def _join(
        self, uow: UnitOfWork, ticket: Ticket, open_ones: list[Incident], building: str
    ) -> bool:
        """Join the open incident about this building ("" = the community), if there is one."""
        incidents = [i for i in open_ones if i.building == building]
        words = ticket.topic.split()
        # About the same thing: a broken lamp does not join the water outage.
        existing = next((i for i in incidents if not i.topic or i.topic in words), None)
        if existing is None:
            return False
        await uow.incidents.link(existing.id, [ticket.id])
        await self._grouped(uow, existing, [ticket])
        return True

    async def _grouped(self, uow: UnitOfWork, incident: Incident, tickets: list[Ticket]) -> None:
        now = self._clock.now()
        await uow.tickets.add_events(
            TicketEvent(
                ticket.id,
                at=now,
                actor="bot",
                kind="incident",
                from_status=ticket.status.value,
                to_status=ticket.status.value,
                note=f"归入预警事件 #{incident.id}",
            )
            for ticket in tickets
        )

    def _alerts(self, incident: Incident, tickets: list[Ticket], count: int) -> list[Notice]:
        community = self.directory.community(incident.community_id)
        minutes = int(community.routing.burst_window.total_seconds() // 60)
        text = staff.incident_alert(
            incident, community.name, [t.id for t in tickets], count, minutes
        )
        button = (Button("事件办结", f"i:{incident.id}:resolve"),)
        people = [self.directory.member(s) for s in community.staff]
        notices = [
            Notice(m.telegram_id, text, buttons=button, kind=ALERT) for m in people if m is not None
        ]
        groups: list[int] = []
        for ticket in tickets:
            chat = self._tickets.public_chat(ticket)
            if chat is not None and chat not in groups:
                groups.append(chat)
        said = residents.incident_notice(incident.building, incident.topic, incident.category)
        notices += [Notice(chat, said, kind=NOTICE) for chat in groups]
        return notices

    def may_resolve(self, member: StaffMember, incident: Incident) -> bool:
        """Community staff of its community, street staff and admins."""
        community = self.directory.community(incident.community_id)
        return member.id in community.staff or member.role in (Role.STREET, Role.ADMIN)

    async def resolve(self, incident_id: int, actor: Actor, note: str = "") -> tuple[Incident, int]:
        """Resolve every open ticket of the incident (each resident told as usual); returns the
        incident and how many tickets were resolved now."""
        async with self._uows() as uow:
            incident = await uow.incidents.get(incident_id)
            tickets = await uow.incidents.open_tickets(incident_id) if incident else []
        if incident is None:
            raise TicketNotFound(f"incident #{incident_id} not found")
        if actor.staff is None or not self.may_resolve(actor.staff, incident):
            raise NotAllowed(f"{actor.label} may not resolve incident #{incident_id}")
        note = note.strip() or staff.incident_note(incident_id)
        done = 0
        for ticket in tickets:
            try:
                await self._tickets.resolve_together(ticket.id, actor, note)
                done += 1
            except (IllegalTransition, NotAllowed, StaleTicket, TicketNotFound) as exc:
                logger.warning(
                    "incident #%d: ticket #%d not resolved: %s", incident_id, ticket.id, exc
                )
        async with self._uows() as uow:
            await uow.incidents.resolve(incident_id, self._clock.now(), note)
            await uow.commit()
        logger.info("incident #%d resolved: %d ticket(s)", incident_id, done)
        return incident, done


def _same_thing(
    reports: list[tuple[Ticket, int]], ticket: Ticket
) -> tuple[str, list[tuple[Ticket, int]]]:
    """The reports about the same thing as ``ticket``: those sharing the topic word most of
    them share with it (停水, 电梯 …); all of them when the reports carry no topic words."""
    own = [w for w in dict.fromkeys(ticket.topic.split()) if w not in _GENERIC]
    words = Counter(
        w for t, n in reports for w in set(t.topic.split()) if w in own for _ in range(n)
    )
    if not words:
        untopical = [(t, n) for t, n in reports if not t.topic.strip()]
        return "", untopical if not ticket.topic.strip() else [(ticket, 1)]
    # The most shared; on a tie, the word the classifier weighed most for this report.
    topic = max(words, key=lambda w: (words[w], -own.index(w)))
    return topic, [(t, n) for t, n in reports if topic in t.topic.split()]
