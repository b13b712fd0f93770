"""Which grid a request belongs to and who must act on it first."""

from __future__ import annotations

from dataclasses import dataclass

from bot.directory import Directory, Grid, Group, StaffMember
from bot.domain import Category


@dataclass(frozen=True)
class Route:
    """Where a request goes, and why (the reason is kept with the assignment)."""

    grid: Grid
    assignee: StaffMember | None
    reason: str


def route(directory: Directory, group: Group, category: Category, building: str | None) -> Route:
    """Pick the grid and the first assignee.

    The group gives the grid; a building named in the text overrides it when that building
    belongs to another grid of the same community. Repairs go to the grid's property manager
    (物业管家) where there is one; disputes (群网首调) and services go to the grid worker.
    """
    grid = directory.grid(group.grid_id)
    if building:
        named = directory.grid_for_building(group.community_id, building)
        if named is not None:
            grid = named
    if category == Category.REPAIR:
        order = ((grid.property, "物业管家"), (grid.grid_worker, "网格员"))
    else:
        order = ((grid.grid_worker, "网格员"), (grid.property, "物业管家"))
    for staff_id, label in order:
        member = directory.member(staff_id) if staff_id else None
        if member is not None:
            return Route(grid, member, f"网格{grid.id}{label}")
    return Route(grid, None, f"网格{grid.id}无责任人")
