"""Incidents (工单预警): several reports of the same thing close together, handled as one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import OPEN_STATUSES, Category, Incident, Ticket, TicketStatus
from storage.models import IncidentRow, TicketReportRow, TicketRow
from storage.repositories import _ticket

_NOT_COUNTED = (TicketStatus.CANCELLED.value, TicketStatus.MERGED.value)


def _incident(row: IncidentRow) -> Incident:
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
        tickets = list(
            await self.session.scalars(
                select(TicketRow).where(
                    TicketRow.community_id == community_id,
                    TicketRow.category == category.value,
                    TicketRow.status.not_in(_NOT_COUNTED),
                    TicketRow.created_at >= since,
                )
            )
        )
        joined = list(
            await self.session.scalars(
                select(TicketRow)
                .join(TicketReportRow, TicketReportRow.ticket_id == TicketRow.id)
                .where(
                    TicketRow.community_id == community_id,
                    TicketRow.category == category.value,
                    TicketRow.status.not_in(_NOT_COUNTED),
                    TicketReportRow.at >= since,
                )
            )
        )
        counts: dict[int, int] = {}
        rows: dict[int, TicketRow] = {}
        for row in tickets:
            counts[row.id] = counts.get(row.id, 0) + 1
            rows[row.id] = row
        for row in joined:
            counts[row.id] = counts.get(row.id, 0) + 1
            rows[row.id] = row
        return [(_ticket(rows[i]), counts[i]) for i in sorted(rows)]

    async def open_about(
        self, community_id: str, category: Category, building: str
    ) -> list[Incident]:
        """Unresolved incidents of this category about this building ("" = the community)."""
        rows = await self.session.scalars(
            select(IncidentRow)
            .where(
                IncidentRow.community_id == community_id,
                IncidentRow.category == category.value,
                IncidentRow.building == building,
                IncidentRow.resolved_at.is_(None),
            )
            .order_by(IncidentRow.id)
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
        await self.session.execute(
            select(TicketRow.id)
            .where(TicketRow.id.in_(ticket_ids))
            .order_by(TicketRow.id)
            .with_for_update()
        )
        await self.session.execute(
            update(TicketRow)
            .where(TicketRow.id.in_(ticket_ids))
            .values(incident_id=incident_id)
            .execution_options(synchronize_session=False)
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
