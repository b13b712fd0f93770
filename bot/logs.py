"""Structured logs: every line written while the bot works on a ticket carries its number.

Code that works on a ticket wraps the work in ``with about_ticket(ticket_id):``; every log
record made inside (in that task, and in tasks it starts) gets a ``ticket`` attribute, which
the text format appends as ``ticket=#N`` and the JSON format writes as a field. A record may
also name it explicitly: ``logger.info(..., extra={"ticket": 12})``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

_TICKET: ContextVar[int | None] = ContextVar("ticket", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


@contextlib.contextmanager
def about_ticket(ticket_id: int | None) -> Iterator[None]:
    """Log lines made inside are about this ticket (``None`` changes nothing)."""
    if ticket_id is None:
        yield
        return
    token = _TICKET.set(ticket_id)
    try:
        yield
    finally:
        _TICKET.reset(token)


def current_ticket() -> int | None:
    """The ticket the current task is working on, if any."""
    return _TICKET.get()


class TicketFilter(logging.Filter):
    """Puts ``record.ticket`` on every record (the current ticket, or ``None``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "ticket", None) is None:
            record.ticket = _TICKET.get()
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with `` ticket=#N`` at the end when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ticket = getattr(record, "ticket", None)
        if ticket is None:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} ticket=#{ticket}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ticket, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ticket = getattr(record, "ticket", None)
        if ticket is not None:
            out["ticket"] = ticket
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    """Set up the root logger for the process (``fmt``: ``text`` or ``json``)."""
    handler = logging.StreamHandler()
    handler.addFilter(TicketFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Every long poll is an HTTP request; at INFO these would drown the bot's own lines.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
