"""Routes for operators: ``/healthz`` (liveness) and ``/metrics`` (Prometheus).

Neither needs a login and neither shows personal data; a reverse proxy in front of a
district deployment forwards only the webhook path to the internet (see the README).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.core import Core
from bot.metrics import CONTENT_TYPE

logger = logging.getLogger(__name__)
OPS_CORE = web.AppKey("ops_core", Core)
DB_TIMEOUT = 2.0  # seconds the health check waits for the database


def add_routes(app: web.Application, core: Core) -> None:
    """Mount ``/healthz`` and ``/metrics``."""
    app[OPS_CORE] = core
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


async def _outbox_depth(core: Core) -> int:
    async with core.uows() as uow:
        return await uow.outbox.count_pending()


async def healthz(request: web.Request) -> web.Response:
    """200 while the process can do its job: the database answers and the deadline
    scheduler and the sender are running; 503 (with what is wrong) otherwise."""
    core = request.app[OPS_CORE]
    checks: dict[str, str] = {}
    try:
        depth = await asyncio.wait_for(_outbox_depth(core), DB_TIMEOUT)
        checks["database"] = "ok"
    except Exception as exc:  # any failure to answer is the finding itself
        logger.warning("health check: database: %s", exc)
        checks["database"] = f"error: {type(exc).__name__}"
        depth = -1
    checks["scheduler"] = "ok" if core.scheduler.running else "stopped"
    checks["sender"] = "ok" if core.sender.running else "stopped"
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "unhealthy", "checks": checks, "outbox_depth": depth}
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    """Counters in Prometheus' text format (the outbox depth is read now)."""
    core = request.app[OPS_CORE]
    depth: int | None
    try:
        depth = await asyncio.wait_for(_outbox_depth(core), DB_TIMEOUT)
    except Exception as exc:  # still serve the counters; the gauge keeps its last value
        logger.warning("metrics: outbox depth unavailable: %s", exc)
        depth = None
    return web.Response(body=core.metrics.exposition(depth), headers={"Content-Type": CONTENT_TYPE})
