"""SQLite on the event loop's own thread: the standard library's ``sqlite3`` driven by
SQLAlchemy's asyncio layer without a worker thread.

aiosqlite runs every call (cursor, execute, fetch, commit) on its worker thread and wakes
the loop for each answer; on this machine that costs ~0.5 ms of CPU per statement, four
times the statement itself (measured in BENCHMARKS.md). A local SQLite statement takes
microseconds, so here it simply runs where it is called.

What the worker thread used to give, and how it is kept:

- *A writer waiting for SQLite's lock did not stop the loop.* Here a writer that found the
  lock taken by another connection of this process would sleep in SQLite's busy handler on
  the loop's thread, and the holder could never finish. So writes are serialised in-process
  first: the first INSERT/UPDATE/DELETE of a transaction takes :class:`WriteTurn` (awaiting it
  like any asyncio lock), and commit, rollback or close gives it back. Reads never wait (WAL).
  A task that opens a second writing transaction while its first still holds the turn would
  wait for itself; that raises at once instead of hanging.
- *Another process holding the lock* (SQLite allows one bot process; a CLI tool may write)
  still makes a writer wait, now on the loop's thread, for at most the connection's timeout.

Only file databases use this; ``:memory:`` and ``file:`` URLs keep aiosqlite.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import deque
from collections.abc import Awaitable, Generator
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_, in_greenlet

DRIVER = "inloop"
_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


class WriteTurn:
    """One writing transaction at a time among an engine's connections (FIFO)."""

    def __init__(self) -> None:
        self.holder: _Connection | None = None
        self._task: asyncio.Task[Any] | None = None
        self._waiting: deque[tuple[asyncio.Future[None], _Connection, asyncio.Task[Any]]] = deque()

    def take(self, connection: _Connection) -> None:
        """Called from inside SQLAlchemy's greenlet: waits (without blocking the loop) for
        the turn when another connection holds it."""
        task = asyncio.current_task()
        if self.holder is None:
            self.holder, self._task = connection, task
            return
        if task is not None and task is self._task:
            raise sqlite3.OperationalError(
                "a second writing transaction in the task that holds the first would wait "
                "for itself"
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        assert task is not None
        self._waiting.append((future, connection, task))
        try:
            await_(future)
        except BaseException:
            if self.holder is connection:  # handed over as it was cancelled: pass it on
                self.give_back(connection)
            raise

    def give_back(self, connection: _Connection) -> None:
        """Pass the turn to the next live waiter, if ``connection`` holds it."""
        if self.holder is not connection:
            return
        self.holder = self._task = None
        while self._waiting:
            future, waiter, task = self._waiting.popleft()
            if future.done():  # cancelled while waiting
                continue
            self.holder, self._task = waiter, task
            future.set_result(None)
            return


class _Now(Awaitable[None]):
    """An awaitable that is ready at once. SQLAlchemy's ``AsyncConnection.execute`` insists
    that the driver awaited something (a guard against sync drivers); awaiting this passes
    through its greenlet without ever yielding to the loop (~2 µs)."""

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


_NOW = _Now()


class _Cursor(sqlite3.Cursor):
    connection: _Connection

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        self.connection.before(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        self.connection.before(sql)
        return super().executemany(sql, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio results call this; nothing is left to release."""


class _Connection(sqlite3.Connection):
    turn: WriteTurn

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def before(self, sql: str) -> None:
        if self.turn.holder is not self and _WRITES.match(sql):
            self.turn.take(self)
        if in_greenlet():
            await_(_NOW)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.turn.give_back(self)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.turn.give_back(self)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.turn.give_back(self)


class SQLiteDialect_inloop(SQLiteDialect_pysqlite):  # noqa: N801 (SQLAlchemy's naming)
    """pysqlite's dialect, marked async so ``create_async_engine`` accepts it."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.turn = WriteTurn()

    @classmethod
    def get_pool_class(cls, url: Any) -> type[AsyncAdaptedQueuePool]:
        return AsyncAdaptedQueuePool

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["factory"] = _Connection
        connection = super().connect(*args, **kwargs)
        connection.turn = self.turn
        return connection


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_inloop")
