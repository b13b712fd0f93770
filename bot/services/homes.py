"""Residents who write to the bot privately: where they live, asked once and remembered.

Some residents will not post a leak in front of the whole building. In private chat the bot
has no group to place them by, so it asks which community and building they live in
(buttons built from the directory), keeps their first message while it asks, and then takes
their reports exactly like group reports.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.directory import Community, DirectoryHolder
from bot.domain import Home
from bot.ports import Clock, UnitOfWorkFactory
from bot.services.intake import MAX_STORED_TEXT, storable


def _building_order(label: str) -> tuple[int, str]:
    digits = re.match(r"\d+", label)
    return (int(digits.group()) if digits else 10**6, label)


class HomeService:
    """Remembers where private reporters live."""

    def __init__(self, uows: UnitOfWorkFactory, directory: DirectoryHolder, clock: Clock) -> None:
        self._uows = uows
        self._directory = directory
        self._clock = clock

    async def get(self, user_id: int) -> Home:
        """What we know (possibly nothing yet)."""
        async with self._uows() as uow:
            return await uow.homes.get(user_id) or Home(user_id)

    async def keep_pending(self, user_id: int, message_id: int, text: str) -> Home:
        """Hold a report while the resident is asked where they live (the latest one wins)."""
        return await self._update(
            user_id,
            pending_message_id=message_id,
            pending_text=storable(text, MAX_STORED_TEXT),
        )

    async def forget(self, user_id: int) -> Home:
        """/home: ask again (they moved, or chose the wrong building)."""
        return await self._update(user_id, community_id=None, building=None)

    async def choose_community(self, user_id: int, community_id: str) -> Home:
        """The first answer. Raises KeyError for a community that is not in the directory."""
        self.community(community_id)
        return await self._update(user_id, community_id=community_id, building=None)

    async def choose_building(self, user_id: int, community_id: str, building: str) -> Home:
        """The second answer; returns the home with any pending report, which the caller
        now handles (and then calls :meth:`clear_pending`). Raises KeyError when the building
        is not one of the community's."""
        if building not in self.buildings(community_id):
            raise KeyError(building)
        return await self._update(user_id, community_id=community_id, building=building)

    async def clear_pending(self, user_id: int) -> None:
        """The held report has been handled."""
        await self._update(user_id, pending_message_id=None, pending_text=None)

    def communities(self) -> tuple[Community, ...]:
        """Every community, for the first question."""
        return self._directory.current.communities

    def community(self, community_id: str) -> Community:
        """A community by id. Raises KeyError when there is none."""
        return self._directory.current.community(community_id)

    def buildings(self, community_id: str) -> list[str]:
        """The community's buildings in numeric order, for the second question."""
        community = self.community(community_id)
        labels = {b for grid in community.grids for b in grid.buildings}
        return sorted(labels, key=_building_order)

    async def _update(self, user_id: int, **changes: object) -> Home:
        async with self._uows() as uow:
            home = await uow.homes.get(user_id) or Home(user_id)
            home = replace(home, **changes)  # type: ignore[arg-type]
            await uow.homes.save(home, self._clock.now())
            await uow.commit()
        return home
