"""Who serves where: staff, communities, grids and groups, with the lookups intake needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta

from bot.domain import Category, Role, Stage, Tier
from bot.roster import Shift


@dataclass(frozen=True)
class SlaPolicy:
    """The 5321 rule as configured: three 5-minute steps and resolve times by tier."""

    understand: timedelta
    plan: timedelta
    reply: timedelta
    resolve: dict[Tier, timedelta]
    day_end: time
    confirm: timedelta = timedelta(days=1)

    def window(self, stage: Stage, tier: Tier) -> timedelta:
        """How long a stage may take."""
        if stage == Stage.RESOLVE:
            return self.resolve[tier]
        return {Stage.UNDERSTAND: self.understand, Stage.PLAN: self.plan, Stage.REPLY: self.reply}[
            stage
        ]


@dataclass(frozen=True)
class StaffMember:
    """Someone the bot may ping."""

    id: str
    name: str
    telegram_id: int
    role: Role
    roster: tuple[Shift, ...] = ()  # empty: on duty at all times unless /offduty


# Who takes each kind of request first, by post in the grid: "property" (物业管家) or
# "grid_worker" (网格员); the first post the grid has filled wins.
POSTS = ("property", "grid_worker")


@dataclass(frozen=True)
class RoutingPolicy:
    """A community's dispatch rule (派单规则); the default is the sources' practice."""

    first: dict[Category, tuple[str, ...]] = field(
        default_factory=lambda: {
            Category.REPAIR: ("property", "grid_worker"),  # 物业 where there is one
            Category.DISPUTE: ("grid_worker",),  # 群网首调: first-level mediation
            Category.SERVICE: ("grid_worker",),
        }
    )
    urgent_to_community: bool = True  # emergencies reach community staff at once
    me_too: bool = True  # a later report of the same problem joins the open ticket
    me_too_window: timedelta = timedelta(hours=2)  # … if it comes this soon after
    burst_building: int = 3  # 工单预警: this many reports of one category in one building …
    burst_community: int = 5  # … or in the whole community …
    burst_window: timedelta = timedelta(minutes=15)  # … this close together: one incident


@dataclass(frozen=True)
class Grid:
    """The unit of routing: a few buildings with a named person responsible (责任到人)."""

    id: str
    name: str
    community_id: str
    buildings: tuple[str, ...]
    grid_worker: str | None
    property: str | None
    backup: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """A residents' group chat that belongs to one grid."""

    chat_id: int
    name: str
    community_id: str
    grid_id: str


@dataclass(frozen=True)
class Community:
    """A 社区 with its own staff, grids and groups."""

    id: str
    name: str
    staff: tuple[str, ...]
    grids: tuple[Grid, ...]
    groups: tuple[Group, ...]
    routing: RoutingPolicy = field(default_factory=RoutingPolicy)


@dataclass(frozen=True)
class Street:
    """The 街道 office above the communities."""

    name: str
    staff: tuple[str, ...]


@dataclass(frozen=True)
class Directory:
    """A consistent snapshot of the organisation, built from the database at start-up."""

    timezone: str
    sla: SlaPolicy
    staff: tuple[StaffMember, ...]
    street: Street | None
    communities: tuple[Community, ...]
    _groups: dict[int, Group] = field(default_factory=dict, init=False, repr=False, compare=False)
    _grids: dict[str, Grid] = field(default_factory=dict, init=False, repr=False, compare=False)
    _staff: dict[str, StaffMember] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for community in self.communities:
            for group in community.groups:
                self._groups[group.chat_id] = group
            for grid in community.grids:
                self._grids[grid.id] = grid
        for member in self.staff:
            self._staff[member.id] = member

    def group(self, chat_id: int) -> Group | None:
        """The group with this chat id, or None for a chat the bot does not serve."""
        return self._groups.get(chat_id)

    def grid(self, grid_id: str) -> Grid:
        """The grid with this id (ids come from validated configuration)."""
        return self._grids[grid_id]

    def by_telegram(self, telegram_id: int) -> StaffMember | None:
        """The staff member with this Telegram user id, if any."""
        return next((m for m in self.staff if m.telegram_id == telegram_id), None)

    def member(self, staff_id: str) -> StaffMember | None:
        """The staff member with this id, if any."""
        return self._staff.get(staff_id)

    def community(self, community_id: str) -> Community:
        """The community with this id. Raises KeyError for an unknown id (ids stored on
        tickets come from validated configuration; ids on buttons may be forged)."""
        for community in self.communities:
            if community.id == community_id:
                return community
        raise KeyError(community_id)

    def grid_for_building(self, community_id: str, building: str) -> Grid | None:
        """The grid of this community that owns the building, if one does."""
        for grid in self.community(community_id).grids:
            if building in grid.buildings:
                return grid
        return None

    @property
    def groups(self) -> tuple[Group, ...]:
        """Every group the bot serves."""
        return tuple(self._groups.values())


class DirectoryHolder:
    """The current organisation snapshot; replaced whole when the database changes."""

    def __init__(self, directory: Directory) -> None:
        self.current = directory
