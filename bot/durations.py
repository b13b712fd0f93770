"""Parsing and Chinese rendering of the short durations used in the community file."""

from __future__ import annotations

import re
from datetime import timedelta

_PART_RE = re.compile(r"(\d+)\s*([smhd])")
_WHOLE_RE = re.compile(r"^\s*(?:\d+\s*[smhd]\s*)+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """Parse ``90s``, ``5m``, ``2h``, ``1d`` or combinations such as ``1h30m``.

    Bare numbers are refused on purpose: "5" could mean seconds or minutes, and a wrong guess
    would silently change a promise made to residents.
    """
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not _WHOLE_RE.match(value.lower()):
        raise ValueError(
            f"bad duration {value!r}: use a number with a unit, like 90s, 5m, 2h, 1d or 1h30m"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(value.lower()))
    if seconds <= 0:
        raise ValueError(f"bad duration {value!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration_zh(delta: timedelta) -> str:
    """Render a duration the way a resident would say it: 5分钟, 2小时, 1天, 90秒."""
    seconds = int(delta.total_seconds())
    for unit_seconds, unit in ((86400, "天"), (3600, "小时"), (60, "分钟")):
        if seconds >= unit_seconds and seconds % unit_seconds == 0:
            return f"{seconds // unit_seconds}{unit}"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60}分钟"
    if seconds > 60:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}分{rest}秒"
    return f"{seconds}秒"
