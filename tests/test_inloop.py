"""SQLite on the loop's thread (storage/inloop.py): writers take turns without blocking the
loop, a task cannot wait for itself, and a cancelled waiter does not strand the turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import inloop
from storage.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'loop.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    await engine.dispose()


def test_a_file_database_runs_on_the_loop_and_memory_keeps_aiosqlite(
    engine: AsyncEngine,
) -> None:
    assert engine.dialect.driver == inloop.DRIVER
    assert create_engine("sqlite+aiosqlite:///:memory:").dialect.driver == "aiosqlite"


def turn_holder(engine: AsyncEngine) -> object:
    return cast(inloop.SQLiteDialect_inloop, engine.dialect).turn.holder


async def write(engine: AsyncEngine, n: int) -> None:
    """One writing transaction: insert ``n`` and commit."""
    async with engine.begin() as connection:
        await connection.execute(text(f"INSERT INTO t VALUES ({n})"))


async def hold(engine: AsyncEngine, n: int, holding: asyncio.Event, until: asyncio.Event) -> None:
    """Insert ``n``, say so, and keep the transaction (and the turn) open until ``until``."""
    async with engine.begin() as connection:
        await connection.execute(text(f"INSERT INTO t VALUES ({n})"))
        holding.set()
        await until.wait()


async def rows(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        return [n for (n,) in await connection.execute(text("SELECT n FROM t ORDER BY n"))]


async def test_a_second_writer_waits_its_turn_while_the_loop_runs_on(
    engine: AsyncEngine,
) -> None:
    order: list[str] = []
    first_wrote = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (1)"))
            first_wrote.set()
            await release_first.wait()  # suspended inside its transaction
            order.append("first commits")

    async def second() -> None:
        await first_wrote.wait()
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (2)"))
            order.append("second wrote")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_wrote.wait()
    # The loop keeps running while the second writer waits: in SQLite's busy handler it
    # would stand still for the connection's 30 s timeout.
    started = asyncio.get_running_loop().time()
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert order == []
    assert await rows(engine) == []  # a reader does not wait for the writer (WAL)
    release_first.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["first commits", "second wrote"]
    assert await rows(engine) == [1, 2]


async def test_a_task_opening_a_second_writing_transaction_fails_at_once(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as outer:
        await outer.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(OperationalError, match="wait for itself"):
            async with engine.begin() as inner:
                await inner.execute(text("INSERT INTO t VALUES (2)"))
    assert await rows(engine) == [1]


async def test_a_cancelled_waiter_does_not_strand_the_turn(engine: AsyncEngine) -> None:
    holding = asyncio.Event()
    release = asyncio.Event()
    held = asyncio.create_task(hold(engine, 1, holding, release))
    await holding.wait()
    cancelled = asyncio.create_task(write(engine, 2))
    patient = asyncio.create_task(write(engine, 3))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(held, patient), 5)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await rows(engine) == [1, 3]
    assert turn_holder(engine) is None
    await write(engine, 4)
    assert await rows(engine) == [1, 3, 4]


async def test_a_failed_write_gives_the_turn_back(engine: AsyncEngine) -> None:
    async def fail() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (1)"))
            await connection.execute(text("INSERT INTO missing VALUES (1)"))

    with pytest.raises(OperationalError):
        await fail()
    assert turn_holder(engine) is None
    async with asyncio.timeout(5):
        await write(engine, 2)
    assert await rows(engine) == [2]


async def test_a_holder_cancelled_inside_its_transaction_gives_the_turn_back(
    engine: AsyncEngine,
) -> None:
    holding = asyncio.Event()
    never = asyncio.Event()  # cancelled while waiting for it, mid-transaction
    held = asyncio.create_task(hold(engine, 1, holding, never))
    await holding.wait()
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    assert turn_holder(engine) is None
    async with asyncio.timeout(5):
        await write(engine, 2)
    assert await rows(engine) == [2]
