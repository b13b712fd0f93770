"""Engine creation and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import inloop

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine; for SQLite, create the folder and turn on WAL and foreign keys."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        # Concurrent writers wait for each other instead of failing with "database is locked".
        kwargs["connect_args"] = {"timeout": 30}
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            # A file database: statements run on the loop's thread (storage/inloop.py).
            parsed = parsed.set(drivername=f"sqlite+{inloop.DRIVER}")
        else:
            kwargs["pool_reset_on_return"] = None
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def concurrent_steps(engine: AsyncEngine) -> int:
    """How many tickets the deadline scheduler may act on at once on this database: several
    on PostgreSQL (its steps wait on round trips; 8 of the pool's 15 connections), one on
    SQLite (one writer at a time in any case)."""
    return 8 if engine.dialect.name == "postgresql" else 1


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no implicit refresh I/O)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations (works installed or editable)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision."""

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes starting together: one migrates, the others wait for it and
            # then find nothing to do (the lock ends with the transaction).
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": 5321})
        await connection.run_sync(upgrade)
    logger.info("database schema is up to date")
