"""Who must act on a request: the grid, the first responder, the escalation ladder, and who
of them is at work right now (责任到人, AB岗 backup takeover)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.directory import Directory, Grid, StaffMember
from bot.domain import Category, Presence
from bot.roster import on_roster

POST_NAMES = {"property": "物业管家", "grid_worker": "网格员"}

Available = Callable[[StaffMember], bool]


@dataclass(frozen=True)
class Level:
    """One rung of the escalation ladder: who stands there, and why they were chosen."""

    number: int
    staff: tuple[StaffMember, ...]
    reason: str


@dataclass(frozen=True)
class Pick:
    """Who takes a ticket on the ladder, at which level, and why."""

    assignee: StaffMember
    level: int
    reason: str


@dataclass(frozen=True)
class Route:
    """Where a request goes, and why (the reason is kept with the assignment)."""

    grid: Grid
    assignee: StaffMember | None
    reason: str
    level: int = 0


def grid_for(directory: Directory, home: Grid, building: str | None) -> Grid:
    """The group (or a private reporter's home) gives the grid; a building named in the text
    overrides it when that building belongs to another grid of the same community."""
    if building:
        named = directory.grid_for_building(home.community_id, building)
        if named is not None:
            return named
    return home


def _post(grid: Grid, post: str) -> str | None:
    return grid.property if post == "property" else grid.grid_worker


def first_responder(directory: Directory, grid: Grid, category: Category) -> tuple[str, str]:
    """Level 0 by the community's routing policy: (staff id, post name), or ("", "")."""
    policy = directory.community(grid.community_id).routing
    preferred = policy.first.get(category, ("grid_worker",))
    # A grid without the preferred post still has someone: the other post covers it.
    for post in (*preferred, *(p for p in POST_NAMES if p not in preferred)):
        staff_id = _post(grid, post)
        if staff_id and directory.member(staff_id) is not None:
            return staff_id, POST_NAMES[post]
    return "", ""


def ladder(directory: Directory, grid_id: str, category: Category) -> list[Level]:
    """Grid → backup post (AB岗) → community staff → street staff; empty rungs left out."""
    grid = directory.grid(grid_id)
    community = directory.community(grid.community_id)

    def members(ids: tuple[str, ...]) -> tuple[StaffMember, ...]:
        found = (directory.member(i) for i in ids)
        return tuple(m for m in found if m is not None)

    first_id, post = first_responder(directory, grid, category)
    first = members((first_id,)) if first_id else ()
    rungs = [
        Level(0, first, f"网格{grid.id}{post}"),
        Level(1, tuple(m for m in members(grid.backup) if m.id != first_id), f"网格{grid.id}备岗"),
        Level(2, members(community.staff), community.name),
        Level(3, members(directory.street.staff) if directory.street else (), "街道"),
    ]
    return [rung for rung in rungs if rung.staff]


def is_available(
    member: StaffMember, presence: Presence | None, now: datetime, timezone: str
) -> bool:
    """On duty now: not /offduty, and inside the roster or a manual /onduty."""
    if presence is not None and presence.off_duty:
        return False
    if presence is not None and presence.on_duty_until is not None and now < presence.on_duty_until:
        return True
    return on_roster(member.roster, now.astimezone(ZoneInfo(timezone)))


def pick(rungs: list[Level], above: int, available: Available) -> Pick | None:
    """The first rung numbered ``above`` or higher with someone on duty, and the first such
    person there; the reason names who was passed over. When nobody at all is on duty the
    ticket still needs an owner: the first rung's first person takes it (and is pinged)."""
    candidates = [rung for rung in rungs if rung.number >= above]
    if not candidates:
        return None
    passed: list[StaffMember] = []
    for rung in candidates:
        for member in rung.staff:
            if available(member):
                if not passed:
                    return Pick(member, rung.number, rung.reason)
                names = "、".join(m.name for m in passed)
                return Pick(member, rung.number, f"备岗接替：{rung.reason}（{names}不在岗）")
            passed.append(member)
    first = candidates[0]
    return Pick(first.staff[0], first.number, f"{first.reason}（均不在岗）")


def route(
    directory: Directory,
    home: Grid,
    category: Category,
    building: str | None,
    available: Available = lambda _member: True,
) -> Route:
    """Pick the grid and the first assignee who is on duty.

    Repairs go to the grid's property manager (物业管家) where there is one; disputes
    (群网首调) and services go to the grid worker, as the community's policy says. An
    off-duty first responder passes the ticket to the backup post, then up the ladder.
    """
    grid = grid_for(directory, home, building)
    picked = pick(ladder(directory, grid.id, category), 0, available)
    if picked is None:
        return Route(grid, None, f"网格{grid.id}无责任人")
    return Route(grid, picked.assignee, picked.reason, picked.level)
