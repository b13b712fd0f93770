"""On-duty rosters: when a staff member is at work, written as "mon-fri 08:30-17:30".

A roster is a list of shifts. A person with no roster is on duty at all times unless they
say otherwise with /offduty; a person with a roster is on duty inside its shifts only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAME_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_SHIFT = re.compile(
    r"^\s*(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class Shift:
    """Days of the week (0 = Monday) and a time range; an end before the start runs past
    midnight into the next day (a night shift belongs to the day it starts)."""

    days: frozenset[int]
    start: time
    end: time
    text: str  # as written, normalised: "mon-fri 08:30-17:30"

    def covers(self, local: datetime) -> bool:
        """Whether this shift is running at ``local`` (a wall-clock time in the district)."""
        moment = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= moment < self.end
        # Overnight: the evening part today, or the morning part of yesterday's shift.
        return (weekday in self.days and moment >= self.start) or (
            (weekday - 1) % 7 in self.days and moment < self.end
        )


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(0, 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad time {text!r}: use HH:MM between 00:00 and 24:00")
    return time(hours, minutes)


def _days(text: str) -> frozenset[int]:
    if text == "daily":
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(
                f"bad days {part!r}: use mon tue wed thu fri sat sun, ranges like mon-fri, "
                "lists like mon,wed,fri, or daily"
            )
        start, end = DAYS.index(first), DAYS.index(last or first)
        span = range(start, end + 1) if start <= end else (*range(start, 7), *range(end + 1))
        days.update(span)
    return frozenset(days)


def parse_shift(value: object) -> Shift:
    """Read one shift like "mon-fri 08:30-17:30", "sat,sun 09:00-12:00" or "daily 22:00-06:00".

    Raises:
        ValueError: with a message that says how to write it.
    """
    if not isinstance(value, str):
        raise ValueError(f'bad shift {value!r}: write it like "mon-fri 08:30-17:30"')
    match = _SHIFT.match(value.lower())
    if match is None:
        raise ValueError(f'bad shift {value!r}: write it like "mon-fri 08:30-17:30"')
    start, end = _clock(match["start"]), _clock(match["end"])
    if start == end:
        raise ValueError(f"bad shift {value!r}: it starts and ends at the same time")
    text = f"{match['days']} {start:%H:%M}-{match['end']}"
    return Shift(_days(match["days"]), start, end, text)


def on_roster(shifts: tuple[Shift, ...], local: datetime) -> bool:
    """Whether a roster has the person at work at ``local``; no roster means always."""
    return not shifts or any(shift.covers(local) for shift in shifts)


def describe(shifts: tuple[Shift, ...]) -> str:
    """A roster in Chinese, for the staff member's own /onduty answer."""
    if not shifts:
        return "全天"
    parts = []
    for shift in shifts:
        days = "、".join(DAY_NAME_ZH[d] for d in sorted(shift.days))
        parts.append(f"{days} {shift.start:%H:%M}-{shift.end:%H:%M}")
    return "；".join(parts)
