"""Seeding the database from the community file."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.config import CommunityFile
from bot.directory import Directory
from bot.domain import DISTRICT
from bot.ports import Clock, UnitOfWorkFactory

logger = logging.getLogger(__name__)
DIGEST_KEY = "community_file_digest"


@dataclass(frozen=True)
class SeedReport:
    """What seeding did."""

    action: str  # "seeded", "updated" or "unchanged"
    directory: Directory


async def seed_from_file(uows: UnitOfWorkFactory, file: CommunityFile, clock: Clock) -> SeedReport:
    """Make the database reflect the community file.

    On the first start everything is copied, keywords included. When the file changes later,
    the organisation (staff, grids, groups, SLA) is updated from it, but keywords are not: from
    then on admins own them at runtime and the database is their truth.
    """
    async with uows() as uow:
        stored_digest = await uow.directory.get_meta(DIGEST_KEY)
        if stored_digest == file.digest:
            directory = await uow.directory.load()
            if directory is not None:
                return SeedReport("unchanged", directory)
        await uow.directory.replace(file.directory)
        first = await uow.keywords.count() == 0 and stored_digest is None
        if first:
            await uow.keywords.add_many(DISTRICT, file.keywords, clock.now())
        # The file's answers follow the file; answers admins added on the web stay.
        for scope, answers in file.answers.items():
            await uow.answers.replace_from_file(scope, answers, clock.now())
        await uow.directory.set_meta(DIGEST_KEY, file.digest)
        directory = await uow.directory.load()
        await uow.commit()
    assert directory is not None
    action = "seeded" if first else "updated"
    logger.info(
        "community file %s the database: %d communities, %d groups, %d staff",
        action,
        len(directory.communities),
        len(directory.groups),
        len(directory.staff),
    )
    return SeedReport(action, directory)
