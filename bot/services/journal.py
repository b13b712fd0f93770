"""Small writes that follow a message, written together: the message log and "handled" marks.

Every group message leaves two small writes once it is handled: a line in the message log
(for the admins' what-if and review) and the inbox's "done" mark on its update. One
transaction each, per message, cost more than everything else a chatter message needs
(about 1.7 ms of CPU each on SQLite, against 1.4 ms for python-telegram-bot to receive the
message at all). So while the bot runs they are buffered and written in one transaction
every few milliseconds (group commit), however many messages arrived meanwhile.

Nothing is lost by waiting: a log line is written before (in the same transaction as) the
"done" mark of its update, so if the process dies first, the update is not marked and is
handled again on start, which writes the line again (handling is idempotent: tickets are
keyed by chat and message, a log line already written is skipped). The cost of the delay is
only that: an update handled in the last few milliseconds before a crash is handled again.

Without the background loop (core tests, one-shot commands) every write goes to the
database at once, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta
from typing import TypeVar

from bot.domain import LoggedMessage
from bot.ports import Clock, UnitOfWorkFactory
from bot.services.background import BackgroundLoop

logger = logging.getLogger(__name__)
GATHER = 0.02  # seconds a write waits for others to join it
KEEP_MESSAGES = 5000  # the message log keeps this many recent messages per community
PRUNE_EVERY = 500  # log lines of a community between two prunes
INBOX_KEEP_DONE = timedelta(days=1)  # handled updates are forgotten after this long
INBOX_PRUNE_EVERY = 1000  # marks between two prunes of handled updates
LIMIT = 100_000  # writes held while the database refuses them; beyond, the oldest go
RETRY = 1.0  # seconds before trying again after a failed write
T = TypeVar("T")


class Journal:
    """Buffers log lines and done marks; writes them in one transaction per batch."""

    def __init__(self, uows: UnitOfWorkFactory, clock: Clock) -> None:
        self._uows = uows
        self._clock = clock
        self._lines: list[LoggedMessage] = []
        self._marks: list[int] = []
        self._logged: Counter[str] = Counter()  # lines per community since its last prune
        self._marked = 0
        self._loop = BackgroundLoop("journal")
        self._write_lock = asyncio.Lock()

    def start(self) -> None:
        """Write in batches from now on."""
        self._loop.start(self._run)

    async def stop(self) -> None:
        """Write what is buffered and go back to writing at once."""
        await self._loop.stop()
        await self.flush()

    async def log(self, line: LoggedMessage) -> None:
        """Add a line to the message log (best effort: a failure is logged, never raised)."""
        self._lines.append(line)
        await self._written()

    async def done(self, update_id: int) -> None:
        """Mark an update handled."""
        self._marks.append(update_id)
        await self._written()

    @property
    def pending(self) -> int:
        """How many writes wait for the next batch."""
        return len(self._lines) + len(self._marks)

    async def _written(self) -> None:
        if not self._loop.running:  # not started, stopped, or died: write at once
            await self.flush()
        else:
            self._loop.wake()

    async def _run(self) -> None:
        while not self._loop.stopping:
            await self._loop.pause(60.0)
            if self._loop.stopping:
                break
            await asyncio.sleep(GATHER)  # let the messages being handled now join
            if not await self.flush():
                await asyncio.sleep(RETRY)
                self._loop.wake()  # what stayed buffered is tried again

    async def flush(self) -> bool:
        """Write everything buffered in one transaction; False if the database refused (the
        writes stay buffered for the next try)."""
        async with self._write_lock:
            lines, self._lines = self._lines, []
            marks, self._marks = self._marks, []
            if not lines and not marks:
                return True
            try:
                await self._write(lines, marks)
            except Exception:
                logger.exception(
                    "could not write %d log line(s) and %d done mark(s); trying again",
                    len(lines),
                    len(marks),
                )
                self._lines = _bounded(lines + self._lines, "log lines")
                self._marks = _bounded(marks + self._marks, "done marks")
                return False
            return True

    async def _write(self, lines: list[LoggedMessage], marks: list[int]) -> None:
        now = self._clock.now()
        async with self._uows() as uow:
            # Lines first, in the same transaction: an update is never marked handled
            # while its line is still unwritten.
            await uow.messages.add(lines)
            await uow.inbox.done(marks, now)
            for line in lines:
                self._logged[line.community_id] += 1
            full = [c for c, n in self._logged.items() if n >= PRUNE_EVERY]
            for community_id in full:
                await uow.messages.prune(community_id, KEEP_MESSAGES)
                del self._logged[community_id]
            self._marked += len(marks)
            if self._marked >= INBOX_PRUNE_EVERY:
                await uow.inbox.prune(now - INBOX_KEEP_DONE)
                self._marked = 0
            await uow.commit()


def _bounded(items: list[T], what: str) -> list[T]:
    if len(items) <= LIMIT:
        return items
    logger.error("journal: dropping %d %s the database would not take", len(items) - LIMIT, what)
    return items[-LIMIT:]
