"""Structured logs: lines about a ticket carry its number, in text and in JSON."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import JsonFormatter, TextFormatter, TicketFilter, about_ticket, current_ticket
from bot.settings import SettingsError, load_settings
from handlers.runtime import Runtime
from tests.helpers import accepted_ticket


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("bot.x", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    TicketFilter().filter(record)
    return record


def test_the_current_ticket_is_added_to_every_record_inside() -> None:
    assert current_ticket() is None
    with about_ticket(42):
        inside = _record("accepted")
    outside = _record("idle")
    assert getattr(inside, "ticket", None) == 42
    assert getattr(outside, "ticket", "missing") is None
    assert TextFormatter().format(inside).endswith("bot.x: accepted ticket=#42")
    assert "ticket=" not in TextFormatter().format(outside)


def test_an_explicit_ticket_wins_and_json_is_one_object_per_line() -> None:
    with about_ticket(1):
        record = _record("工单 #7 已派给王管家", ticket=7)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["ticket"] == 7
    assert data["message"] == "工单 #7 已派给王管家"
    assert data["level"] == "INFO"
    assert data["logger"] == "bot.x"


def test_log_format_setting_is_checked() -> None:
    assert load_settings(LOG_FORMAT="JSON").LOG_FORMAT == "json"
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings(LOG_FORMAT="xml")


async def test_ticket_work_logs_name_the_ticket(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(TicketFilter())
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="handlers.telegram.transport")  # each request
    await accepted_ticket(runtime)
    about_one = [r.getMessage() for r in caplog.records if getattr(r, "ticket", None) == 1]
    assert any(m.startswith("ticket #1 opened") for m in about_one), about_one
    assert "ticket #1: new -> accepted" in about_one
    # Polling concerns no ticket; a send does (logged inside the sender's work).
    unrelated = [r for r in caplog.records if "getUpdates" in r.getMessage()]
    assert unrelated
    assert all(getattr(r, "ticket", None) is None for r in unrelated)
