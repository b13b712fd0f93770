"""Shared fixtures: databases (SQLite everywhere, PostgreSQL when TEST_POSTGRES_URL is set),
the demo community file, and a running runtime on the sandbox."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.config import CommunityFile, load_community_file
from bot.settings import DEMO_COMMUNITY_FILE, Settings, load_settings
from handlers.runtime import Runtime
from storage.db import create_engine, migrate, session_factory
from storage.models import Base
from storage.uow import SqlUnitOfWorkFactory

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
POSTGRES_SKIP = "TEST_POSTGRES_URL is not set; PostgreSQL tests run in CI (see .ci/run)"


def pytest_report_header() -> str:
    """Say up front whether the PostgreSQL half of the suite runs."""
    return f"postgres: {'on, ' + POSTGRES_URL if POSTGRES_URL else 'skipped, ' + POSTGRES_SKIP}"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's .env or real settings."""
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE_URL",
        "DATABASE_URL",
        "COMMUNITY_CONFIG",
        "WEB_HOST",
        "WEB_PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def demo_file() -> CommunityFile:
    """The shipped demo community file, validated."""
    return load_community_file(DEMO_COMMUNITY_FILE)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when a test says so."""
    return FakeClock()


async def reset_postgres(url: str) -> None:
    """Drop every table of the project's schema (tests start from an empty database)."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
        await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each supported kind; PostgreSQL is skipped without a URL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    await reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine."""
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def uows(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    """A unit-of-work factory over the migrated database."""
    return SqlUnitOfWorkFactory(session_factory(engine))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def port() -> int:
    """A free local port."""
    return free_port()


@pytest.fixture
def settings(database_url: str, port: int) -> Settings:
    """Settings for the embedded default: the demo file, the sandbox, a fresh database."""
    return load_settings(DATABASE_URL=database_url, WEB_PORT=port)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The whole bot running on the sandbox (tests needing other settings override it)."""
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()
