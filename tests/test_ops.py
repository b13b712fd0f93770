"""Operators' endpoints: /healthz and /metrics on the running bot."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import aiohttp

from bot.metrics import Metrics
from handlers.runtime import Runtime
from tests.helpers import GROUP_G01, RESIDENT, bot_messages_after, world_of


def _value(exposition: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus' text format (0 when absent)."""
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    wanted = f"{name}{{{label_text}}}" if labels else name
    for line in exposition.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == wanted:
            return float(value)
    return 0.0


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_healthz_reports_ok_while_everything_runs(runtime: Runtime) -> None:
    status, content_type, body = await _get(f"{runtime.web_url}healthz")
    assert status == 200
    assert content_type.startswith("application/json")
    assert '"status": "ok"' in body
    assert '"database": "ok"' in body


async def test_healthz_says_503_when_the_sender_has_stopped(runtime: Runtime) -> None:
    await runtime.core.sender.stop()
    status, _, body = await _get(f"{runtime.web_url}healthz")
    assert status == 503
    assert '"sender": "stopped"' in body
    runtime.core.sender.start()


async def test_metrics_count_messages_tickets_and_sends(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await world.user_says(RESIDENT, GROUP_G01, "大家早上好")
    assert await bot_messages_after(world, GROUP_G01, since)
    status, content_type, text = await _get(f"{runtime.web_url}metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert _value(text, "grid_messages_in_total", kind="group") == 2
    assert _value(text, "grid_tickets_opened_total", category="repair") == 1
    assert _value(text, "grid_classification_seconds_count") == 2
    assert _value(text, "grid_sends_total", result="sent") >= 1
    # The staff ping may still be queued; the depth is read at scrape time, never negative.
    assert _value(text, "grid_outbox_depth") >= 0
    for name in ("grid_sla_breaches_total", "grid_scheduler_lateness_seconds", "grid_outbox_depth"):
        assert re.search(rf"^# HELP {name} ", text, re.MULTILINE), name


def test_breaches_are_counted_by_stage_and_lateness_observed() -> None:
    metrics = Metrics()
    due = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    metrics.fired("breach", "learn", "breach", due, due + timedelta(seconds=2))
    metrics.fired("breach", "resolve", "breach at top", due, due)
    metrics.fired("breach", "understand", "escalated", due, due)
    metrics.fired("breach", "plan", "skipped", due, due)  # the ticket moved on: no breach
    metrics.fired("remind", "plan", "reminded", due, due - timedelta(seconds=1))
    text = metrics.exposition(3).decode()
    assert _value(text, "grid_sla_breaches_total", stage="learn") == 1
    assert _value(text, "grid_sla_breaches_total", stage="resolve") == 1
    assert _value(text, "grid_sla_breaches_total", stage="plan") == 0
    assert _value(text, "grid_sla_breaches_total", stage="understand") == 1
    assert _value(text, "grid_timers_fired_total", outcome="reminded") == 1
    assert _value(text, "grid_scheduler_lateness_seconds_count") == 5
    assert _value(text, "grid_scheduler_lateness_seconds_sum") == 2.0  # early counts as 0
    assert _value(text, "grid_outbox_depth") == 3
