"""Background loops that stop between passes, never in the middle of one.

Cancelling a task while it holds a database connection makes the pool log a traceback
and can leave a half-sent batch; so ``stop`` first asks the loop to finish its pass and
only cancels it if it is still busy after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)
STOP_GRACE = 5.0  # seconds a loop may take to finish its current pass


class BackgroundLoop:
    """One named task with a stop flag and a wake-up event."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called: the loop should return at the next chance."""
        return self._stopping.is_set()

    @property
    def running(self) -> bool:
        """True while the task is alive (False before start, after stop, or if it died)."""
        return self._task is not None and not self._task.done()

    def start(self, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``body`` as the task (once; a second call does nothing while it runs)."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(body(), name=self.name)

    def wake(self) -> None:
        """End the current :meth:`pause` early."""
        self._wake.set()

    async def pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less when woken or stopped."""
        if seconds > 0 and not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Ask the loop to return, wait for it, and cancel it only after ``grace`` seconds."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            logger.warning("%s still busy after %.0f s; cancelling it", self.name, grace)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
