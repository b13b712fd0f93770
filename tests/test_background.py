"""Background loops stop between passes: a pass in progress finishes, a hung one is cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.services.background import BackgroundLoop


async def test_stop_lets_the_pass_in_progress_finish() -> None:
    loop = BackgroundLoop("test-loop")
    started = asyncio.Event()
    finished: list[str] = []

    async def body() -> None:
        while not loop.stopping:
            started.set()
            await asyncio.sleep(0.05)  # stands for a database pass that must not be cut
            finished.append("pass")
            await loop.pause(3600)

    loop.start(body)
    await started.wait()
    await loop.stop(grace=2.0)
    assert finished == ["pass"]


async def test_pause_ends_early_when_woken() -> None:
    loop = BackgroundLoop("test-loop")
    passes = 0

    async def body() -> None:
        nonlocal passes
        while not loop.stopping:
            passes += 1
            await loop.pause(3600)

    loop.start(body)
    await asyncio.sleep(0)
    loop.wake()
    for _ in range(50):
        if passes >= 2:
            break
        await asyncio.sleep(0.01)
    assert passes == 2
    await loop.stop()


async def test_a_hung_pass_is_cancelled_after_the_grace(caplog: pytest.LogCaptureFixture) -> None:
    loop = BackgroundLoop("test-loop")
    cancelled = asyncio.Event()

    async def body() -> None:
        try:
            await asyncio.sleep(3600)  # ignores the stop flag
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop.start(body)
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING):
        await loop.stop(grace=0.05)
    assert cancelled.is_set()
    assert "still busy" in caplog.text
