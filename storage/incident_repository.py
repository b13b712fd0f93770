"""Incidents (工单预警): several reports of the same thing close together, handled as one."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import OPEN_STATUSES, Category, Incident, Ticket, TicketStatus
from storage.models import IncidentRow, TicketRow
from storage.repositories import REPORTS, TICKETS, _ticket
from storage.statements import table

_NOT_COUNTED = (TicketStatus.CANCELLED.value, TicketStatus.MERGED.value)


# Statements of every report's check, built once (see storage/repositories.py).
_INCIDENTS = table(IncidentRow)
_COUNTED = and_(
    TICKETS.c.community_id == bindparam("community_id"),
    TICKETS.c.category == bindparam("category"),
    TICKETS.c.status.not_in(_NOT_COUNTED),
)
# A ticket once for its own report, and once more for each "me too" that joined it.
_RECENT_REPORTS = union_all(
    select(*TICKETS.c).where(_COUNTED, TICKETS.c.created_at >= bindparam("since")),
    select(*TICKETS.c)
    .join(REPORTS, REPORTS.c.ticket_id == TICKETS.c.id)
    .where(_COUNTED, REPORTS.c.at >= bindparam("since")),
)
_OPEN_ABOUT = (
    select(*_INCIDENTS.c)
    .where(
        _INCIDENTS.c.community_id == bindparam("community_id"),
        _INCIDENTS.c.category == bindparam("category"),
        _INCIDENTS.c.building.in_(bindparam("buildings", expanding=True)),
        _INCIDENTS.c.resolved_at.is_(None),
    )
    .order_by(_INCIDENTS.c.id)
)
_CHOSEN_TICKETS = TICKETS.c.id.in_(bindparam("ticket_ids", expanding=True))
_LOCK_TICKETS = select(TICKETS.c.id).where(_CHOSEN_TICKETS).order_by(TICKETS.c.id).with_for_update()
_LINK_TICKETS = update(TICKETS).where(_CHOSEN_TICKETS).values(incident_id=bindparam("linked_to"))


def _incident(row: IncidentRow | Row[Any]) -> Incident:
    return Incident(
        id=row.id,
        community_id=row.community_id,
        building=row.building,
        category=Category(row.category),
        topic=row.topic,
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        note=row.note,
    )


class SqlIncidentRepository:
    """Rows of ``incidents`` and the tickets they group."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def recent_reports(
        self, community_id: str, category: Category, since: datetime
    ) -> list[tuple[Ticket, int]]:
        """Tickets of this category reported since ``since`` in the community (withdrawn and
        merged ones left out), each with how many reports it got in that time (itself and
        the "me too" reports that joined it)."""
        values = {"community_id": community_id, "category": category.value, "since": since}
        counts: dict[int, int] = {}
        rows: dict[int, Row[Any]] = {}
        for row in await self.session.execute(_RECENT_REPORTS, values):
            counts[row.id] = counts.get(row.id, 0) + 1
            rows[row.id] = row
        return [(_ticket(rows[i]), counts[i]) for i in sorted(rows)]

    async def open_about(
        self, community_id: str, category: Category, buildings: Collection[str]
    ) -> list[Incident]:
        """Unresolved incidents of this category about any of these buildings ("" = the
        whole community), oldest first."""
        rows = await self.session.execute(
            _OPEN_ABOUT,
            {
                "community_id": community_id,
                "category": category.value,
                "buildings": list(buildings),
            },
        )
        return [_incident(r) for r in rows]

    async def add(
        self, community_id: str, building: str, category: Category, topic: str, at: datetime
    ) -> Incident:
        """Open an incident."""
        row = IncidentRow(
            community_id=community_id,
            building=building,
            category=category.value,
            topic=topic[:100],
            opened_at=at,
            note="",
        )
        self.session.add(row)
        await self.session.flush()
        return _incident(row)

    async def get(self, incident_id: int) -> Incident | None:
        """One incident."""
        row = await self.session.get(IncidentRow, incident_id)
        return _incident(row) if row else None

    async def link(self, incident_id: int, ticket_ids: list[int]) -> None:
        """Group these tickets under the incident (kept apart from the tickets' optimistic
        version: a link never conflicts with a step on the ticket). The rows are locked
        in id order first, so two processes linking overlapping tickets wait, not deadlock."""
        await self.session.execute(_LOCK_TICKETS, {"ticket_ids": ticket_ids})
        await self.session.execute(
            _LINK_TICKETS, {"ticket_ids": ticket_ids, "linked_to": incident_id}
        )

    async def open_tickets(self, incident_id: int) -> list[Ticket]:
        """The incident's tickets that are still open, oldest first."""
        rows = await self.session.scalars(
            select(TicketRow)
            .where(
                TicketRow.incident_id == incident_id,
                TicketRow.status.in_([s.value for s in OPEN_STATUSES]),
            )
            .order_by(TicketRow.id)
        )
        return [_ticket(r) for r in rows]

    async def resolve(self, incident_id: int, at: datetime, note: str) -> bool:
        """Mark it resolved; False if it was already."""
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.resolved_at.is_(None))
            .values(resolved_at=at, note=note[:500])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
