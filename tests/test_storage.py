"""Storage on SQLite and PostgreSQL: migrations, seeding, tickets, keywords, aware times."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy import Connection, event, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.config import CommunityFile, parse_community_text
from bot.domain import Category, NewTicket, TicketEvent, TicketStatus, Tier
from bot.services.setup import seed_from_file
from bot.settings import DEMO_COMMUNITY_FILE
from storage.coordination import notify
from storage.db import migrate, session_factory
from storage.uow import SqlUnitOfWorkFactory
from tests.conftest import POSTGRES_URL


def new_ticket(message_id: int, at: datetime) -> NewTicket:
    return NewTicket(
        community_id="xingfu",
        grid_id="G01",
        chat_id=-1001000000001,
        message_id=message_id,
        reporter_id=5000001,
        reporter_name="张阿姨",
        text="3号楼电梯坏了",
        category=Category.REPAIR,
        confidence=0.7,
        urgent=False,
        tier=Tier.MAJOR,
        created_at=at,
        assignee_id="wang",
        location={"building": "3"},
    )


async def test_migrations_create_every_table_and_are_repeatable(engine: AsyncEngine) -> None:
    await migrate(engine)  # a second run is a no-op, as on every restart
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {
        "alembic_version",
        "meta",
        "staff",
        "communities",
        "grids",
        "groups",
        "keywords",
        "tickets",
        "ticket_events",
    } <= tables


async def test_seed_round_trips_the_directory(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock
) -> None:
    report = await seed_from_file(uows, demo_file, clock)
    assert report.action == "seeded"
    assert report.directory.communities == demo_file.directory.communities
    assert report.directory.staff == demo_file.directory.staff
    assert report.directory.sla == demo_file.directory.sla
    assert report.directory.street == demo_file.directory.street
    again = await seed_from_file(uows, demo_file, clock)
    assert again.action == "unchanged"
    async with uows() as uow:
        table = await uow.keywords.table_for("xingfu")
    assert table == demo_file.keywords


async def test_changed_file_updates_organisation_but_not_runtime_keywords(
    uows: SqlUnitOfWorkFactory, demo_file: CommunityFile, clock: FakeClock
) -> None:
    await seed_from_file(uows, demo_file, clock)
    text = DEMO_COMMUNITY_FILE.read_text(encoding="utf-8")
    original = demo_file.keywords["repair"]["电梯"]
    edited = text.replace(f"    电梯: {original:g}\n", "    电梯: 9\n")
    assert edited != text
    changed = parse_community_text(edited.replace("name: 第一网格", "name: 第一网格（新）"))
    report = await seed_from_file(uows, changed, clock)
    assert report.action == "updated"
    assert report.directory.grid("G01").name == "第一网格（新）"
    async with uows() as uow:
        table = await uow.keywords.table_for("xingfu")
    assert table["repair"]["电梯"] == original  # the database owns keywords after seeding


async def test_community_keywords_override_district_defaults(
    uows: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    async with uows() as uow:
        await uow.keywords.add_many("*", {"repair": {"电梯": 2.0, "罢工": 1.0}}, clock.now())
        await uow.keywords.add_many("heping", {"repair": {"电梯": 3.5}}, clock.now())
        await uow.commit()
    async with uows() as uow:
        assert await uow.keywords.table_for("heping") == {"repair": {"电梯": 3.5, "罢工": 1.0}}
        assert await uow.keywords.table_for("xingfu") == {"repair": {"电梯": 2.0, "罢工": 1.0}}


async def test_tickets_get_numbers_history_and_aware_times(
    uows: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2026, 11, 23, 19, 2, tzinfo=shanghai)
    async with uows() as uow:
        first = await uow.tickets.add(new_ticket(1, at))
        second = await uow.tickets.add(new_ticket(2, at))
        await uow.tickets.add_events(
            [
                TicketEvent(first.id, at, "bot", "opened", None, "new", "one"),
                TicketEvent(first.id, at, "bot", "assigned", "new", "new", "two"),
                TicketEvent(second.id, at, "bot", "opened", None, "new", ""),
            ]
        )
        await uow.tickets.add_events([])  # nothing to write: no statement
        await uow.commit()
    assert second.id == first.id + 1
    async with uows() as uow:
        loaded = await uow.tickets.by_message(-1001000000001, 1)
        assert loaded is not None
        assert loaded.id == first.id
        assert loaded.status is TicketStatus.NEW
        assert loaded.created_at == at
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at.utcoffset() == timedelta(0)  # stored and returned as UTC
        assert loaded.location == {"building": "3"}
        events = await uow.tickets.events(first.id)
        assert [(e.kind, e.to_status, e.note) for e in events] == [
            ("opened", "new", "one"),
            ("assigned", "new", "two"),
        ]  # in the order given, each under its own ticket
        assert await uow.tickets.get(999_999) is None
        assert await uow.tickets.by_message(-1001000000001, 3) is None


async def test_one_ticket_per_message(uows: SqlUnitOfWorkFactory) -> None:
    at = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    async with uows() as uow:
        await uow.tickets.add(new_ticket(7, at))
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(IntegrityError):
            await uow.tickets.add(new_ticket(7, at))


async def test_uncommitted_work_is_rolled_back(uows: SqlUnitOfWorkFactory) -> None:
    at = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    async with uows() as uow:
        await uow.tickets.add(new_ticket(8, at))
    async with uows() as uow:
        assert await uow.tickets.by_message(-1001000000001, 8) is None


async def test_naive_datetimes_are_refused(uows: SqlUnitOfWorkFactory) -> None:
    async with uows() as uow:
        with pytest.raises(Exception, match="naive datetime"):
            await uow.tickets.add(new_ticket(9, datetime(2026, 11, 23, 11, 0)))


async def test_migrations_build_exactly_the_models(engine: AsyncEngine) -> None:
    """Alembic's autogenerate finds nothing to add: a model change needs a new revision."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_database_contention_is_retried_as_a_stale_ticket(
    uows: SqlUnitOfWorkFactory, database_url: str
) -> None:
    """A deadlock between processes reads as StaleTicket (the services retry it); any other
    database error stays what it is."""
    from sqlalchemy import text as sql
    from sqlalchemy.exc import DBAPIError

    from bot.domain import StaleTicket

    with pytest.raises(DBAPIError):
        async with uows() as uow:
            await uow.tickets.session.execute(sql("SELECT * FROM no_such_table"))
    if database_url.startswith("postgresql"):
        deadlock = "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$"
        with pytest.raises(StaleTicket, match="contention"):
            async with uows() as uow:
                await uow.tickets.session.execute(sql(deadlock))


async def test_a_notification_goes_once_per_transaction(engine: AsyncEngine) -> None:
    """Other processes hear of new timers and pings through pg_notify; a transaction that
    queues both several times sends each notification once (one round trip), the next
    transaction of the same session again. SQLite has no other processes to tell."""
    postgres = engine.dialect.name == "postgresql"
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "pg_notify" in statement:
            statements.append(statement)

    heard: list[str] = []
    listener = None
    if postgres:
        assert POSTGRES_URL is not None
        listener = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
        await listener.add_listener("grid_test", lambda *args: heard.append(args[2]))
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            async with session.begin():
                await notify(session, "grid_test")
                await notify(session, "grid_test")
                await notify(session, "grid_other")
            async with session.begin():
                await notify(session, "grid_test")
        assert len(statements) == (3 if postgres else 0)
        if listener is not None:
            for _ in range(50):
                if len(heard) >= 2:
                    break
                await asyncio.sleep(0.02)
            assert heard == ["grid_test", "grid_test"]  # once per committed transaction
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        if listener is not None:
            await listener.close()
