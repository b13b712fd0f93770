"""Several bot processes on one database: who sends, who replays, and who hears what.

- **One sender at a time.** Telegram's limits are per bot, so the outbox is sent by one
  process: whichever holds PostgreSQL's advisory lock :data:`SENDER_LOCK`. The others stand by
  and try for it every :data:`TICK` seconds; when the sender's process dies its connection
  closes, the lock is free, and another process takes over (first making the messages the dead
  one was sending pending again). Every message is still claimed with a conditional update, so
  even two senders for a moment would not send one message twice.
- **Deadlines by anyone, once.** Every process runs the scheduler; a timer is claimed with
  ``SELECT … FOR UPDATE SKIP LOCKED`` inside the transaction that acts on it
  (storage/repositories.py), so each fires once and a busy timer is skipped, not waited for.
- **Updates of a dead process.** Each process holds an advisory lock on its own instance
  number for as long as it lives and writes that number on the updates it keeps (webhook or
  polling). An undone update whose owner's lock can be taken belongs to a dead process: it is
  claimed (a conditional update, so only one process gets it) and handled again.
- **Hearing each other.** Transactions that queue a message, schedule a deadline or change
  keywords also ``NOTIFY`` (delivered at commit); each process ``LISTEN``s on one connection
  of its own and wakes its sender or scheduler, or reloads the community's rules, at once.
  After that connection is lost and made again, every community's rules are reloaded.

SQLite allows one process (the README says so): :class:`LocalCoordination` is always the
sender, replays every undone update and hears nothing from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

# Advisory lock keys are (class, object) pairs of int4; the class says what the lock is for.
_LOCK_CLASS_SENDER = 0x67726964  # "grid"
_LOCK_CLASS_INSTANCE = 0x67726965
SENDER_LOCK = (_LOCK_CLASS_SENDER, 1)
TICK = 1.0  # seconds between checks of the connection, the sender lock and dead processes
ORPHAN_EVERY = 5  # ticks between looks for updates kept by dead processes
CHANNELS = ("grid_outbox", "grid_timers", "grid_keywords")

Callback = Callable[[str], Awaitable[None] | None]


async def notify(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Tell the other processes (on PostgreSQL; delivered when the transaction commits).
    PostgreSQL delivers a transaction's identical notifications once anyway, so each is
    sent once per transaction: an escalation queues timers and pings, one round trip less."""
    if session.get_bind().dialect.name != "postgresql":
        return
    transaction = session.sync_session.get_transaction()
    seen: tuple[object, set[tuple[str, str]]] | None = session.info.get(_NOTIFIED)
    if seen is None or seen[0] is not transaction:
        seen = (transaction, set())
        session.info[_NOTIFIED] = seen
    if (channel, payload) in seen[1]:
        return
    await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})
    seen[1].add((channel, payload))


_NOTIFIED = "grid_notified"  # session.info: (transaction, notifications sent in it)


def _new_instance() -> int:
    return random.SystemRandom().randint(1, 2**31 - 1)


class LocalCoordination:
    """One process (SQLite): always the sender; every kept update is its own."""

    def __init__(self) -> None:
        self.instance = _new_instance()
        self.leading = True
        self.on_signal: dict[str, Callback] = {}
        self.on_lead: Callable[[], Awaitable[None]] | None = None
        self.on_orphans: Callable[[], Awaitable[None]] | None = None
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None  # never: no connection

    async def start(self) -> None:
        """Nothing to connect to."""
        if self.on_lead is not None:
            await self.on_lead()

    async def stop(self) -> None:
        """Nothing to release."""

    async def dead(self, owners: set[int]) -> set[int]:
        """Every other owner is a previous run of this single process."""
        return {o for o in owners if o != self.instance}


class PostgresCoordination:
    """Advisory locks and LISTEN/NOTIFY on one dedicated asyncpg connection."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self.instance = _new_instance()
        self.leading = False
        self.on_signal: dict[str, Callback] = {}
        self.on_lead: Callable[[], Awaitable[None]] | None = None
        self.on_orphans: Callable[[], Awaitable[None]] | None = None
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock = asyncio.Lock()  # one query at a time on the connection

    async def start(self) -> None:
        """Connect, announce this process, try to become the sender; then keep watch."""
        await self._connect()
        await self._tick(0)
        self._task = asyncio.create_task(self._watch(), name="coordination")

    async def stop(self) -> None:
        """Stop watching and close the connection (which releases every lock it holds)."""
        self._stopping = True
        self.leading = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close(timeout=5)
            self._connection = None

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=10)
        await connection.execute(
            "SELECT pg_advisory_lock($1, $2)", _LOCK_CLASS_INSTANCE, self.instance
        )
        for channel in CHANNELS:
            await connection.add_listener(channel, self._heard)
        self._connection = connection

    def _heard(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        callback = self.on_signal.get(channel)
        if callback is None:
            return
        result = callback(payload)
        if result is not None:
            task = asyncio.ensure_future(result)
            task.add_done_callback(_log_failure)

    async def _fetchval(self, query: str, *args: object) -> Any:
        assert self._connection is not None
        async with self._lock:
            return await self._connection.fetchval(query, *args, timeout=10)

    async def _watch(self) -> None:
        ticks = 0
        while not self._stopping:
            await asyncio.sleep(TICK)
            ticks += 1
            try:
                await self._tick(ticks)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._lost(exc)

    async def _tick(self, ticks: int) -> None:
        if self._connection is None or self._connection.is_closed():
            raise ConnectionError("coordination connection closed")
        await self._fetchval("SELECT 1")
        if not self.leading and await self._fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", *SENDER_LOCK
        ):
            self.leading = True
            logger.info("this process (%d) now sends the outbox", self.instance)
            if self.on_lead is not None:
                await self.on_lead()
        if ticks % ORPHAN_EVERY == 0 and self.on_orphans is not None:
            await self.on_orphans()

    async def _lost(self, exc: Exception) -> None:
        """The connection failed: stop sending at once, then connect again."""
        if self.leading:
            logger.warning("coordination connection lost (%s); no longer sending", exc)
        else:
            logger.warning("coordination connection lost (%s); reconnecting", exc)
        self.leading = False
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.terminate()
            self._connection = None
        try:
            await self._connect()
        except Exception as again:
            logger.warning("coordination: cannot connect yet: %s", again)
            return
        if self.on_reconnect is not None:
            await self.on_reconnect()  # notifications may have been missed meanwhile

    async def dead(self, owners: set[int]) -> set[int]:
        """Those owners whose process no longer holds its instance lock."""
        gone: set[int] = set()
        for owner in owners:
            if owner == self.instance:
                continue
            if await self._fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", _LOCK_CLASS_INSTANCE, owner
            ):
                await self._fetchval(
                    "SELECT pg_advisory_unlock($1, $2)", _LOCK_CLASS_INSTANCE, owner
                )
                gone.add(owner)
        return gone


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("coordination callback failed", exc_info=task.exception())


Coordination = LocalCoordination | PostgresCoordination


def coordination_for(database_url: str) -> Coordination:
    """The kind the database allows."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresCoordination(database_url)
    return LocalCoordination()
