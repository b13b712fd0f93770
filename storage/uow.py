"""The SQLAlchemy unit of work: one session, one transaction, repositories bound to it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import StaleTicket
from storage.admin_repositories import (
    SqlAdminRepository,
    SqlAnswerRepository,
    SqlKeywordAdminRepository,
    SqlMessageLogRepository,
)
from storage.figure_repository import SqlFigureRepository
from storage.incident_repository import SqlIncidentRepository
from storage.outbox_repository import SqlInboxRepository, SqlOutboxRepository
from storage.repositories import (
    SqlDirectoryRepository,
    SqlHomeRepository,
    SqlKeywordRepository,
    SqlPresenceRepository,
    SqlReportRepository,
    SqlTicketRepository,
    SqlTimerRepository,
)

_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _contended(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


class SqlUnitOfWork:
    """``async with uow: ...; await uow.commit()``; anything not committed is rolled back."""

    tickets: SqlTicketRepository
    directory: SqlDirectoryRepository
    keywords: SqlKeywordRepository
    timers: SqlTimerRepository
    reports: SqlReportRepository
    presence: SqlPresenceRepository
    homes: SqlHomeRepository
    keyword_admin: SqlKeywordAdminRepository
    messages: SqlMessageLogRepository
    answers: SqlAnswerRepository
    admins: SqlAdminRepository
    outbox: SqlOutboxRepository
    inbox: SqlInboxRepository
    incidents: SqlIncidentRepository
    figures: SqlFigureRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self.tickets = SqlTicketRepository(self._session)
        self.directory = SqlDirectoryRepository(self._session)
        self.keywords = SqlKeywordRepository(self._session)
        self.timers = SqlTimerRepository(self._session)
        self.reports = SqlReportRepository(self._session)
        self.presence = SqlPresenceRepository(self._session)
        self.homes = SqlHomeRepository(self._session)
        self.keyword_admin = SqlKeywordAdminRepository(self._session)
        self.messages = SqlMessageLogRepository(self._session)
        self.answers = SqlAnswerRepository(self._session)
        self.admins = SqlAdminRepository(self._session)
        self.outbox = SqlOutboxRepository(self._session)
        self.inbox = SqlInboxRepository(self._session)
        self.incidents = SqlIncidentRepository(self._session)
        self.figures = SqlFigureRepository(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        try:
            await self._session.rollback()
        finally:
            await self._session.close()
            self._session = None
        if isinstance(exc, DBAPIError) and _contended(exc):
            # Two processes (or tasks) locked the same rows in opposite orders, or a
            # serialisable transaction lost: nothing was saved, and doing it again will work.
            # The services already retry StaleTicket (tickets, intake), so say it that way.
            raise StaleTicket(f"database contention, try again: {exc.orig}") from exc

    async def commit(self) -> None:
        """Make the changes durable."""
        assert self._session is not None
        await self._session.commit()


class SqlUnitOfWorkFactory:
    """Makes a fresh :class:`SqlUnitOfWork` per use; pass it to the services."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)
