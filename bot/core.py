"""The core assembled: every service the edges call, built from a unit-of-work factory."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import CommunityFile
from bot.ports import Clock, UnitOfWorkFactory
from bot.services.intake import DirectoryHolder, IntakeService
from bot.services.rules import RuleBook
from bot.services.setup import SeedReport, seed_from_file


@dataclass
class Core:
    """What the Telegram handlers, the web admin and the sandbox share."""

    uows: UnitOfWorkFactory
    clock: Clock
    directory: DirectoryHolder
    rules: RuleBook
    intake: IntakeService


async def build_core(uows: UnitOfWorkFactory, file: CommunityFile, clock: Clock) -> Core:
    """Seed the database from the file if needed, then load what the services work from."""
    report: SeedReport = await seed_from_file(uows, file, clock)
    directory = DirectoryHolder(report.directory)
    rules = RuleBook(uows)
    await rules.reload([c.id for c in report.directory.communities])
    return Core(
        uows=uows,
        clock=clock,
        directory=directory,
        rules=rules,
        intake=IntakeService(uows, rules, directory, clock),
    )
