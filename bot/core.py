"""The core assembled: every service the edges call, built from a unit-of-work factory."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import CommunityFile
from bot.directory import DirectoryHolder
from bot.metrics import Metrics
from bot.ports import Clock, Notifier, UnitOfWorkFactory
from bot.services.admins import AdminAuth
from bot.services.answers import AnswerBook
from bot.services.figures import FigureService
from bot.services.homes import HomeService
from bot.services.inbox import Inbox
from bot.services.incidents import IncidentService
from bot.services.intake import IntakeService
from bot.services.journal import Journal
from bot.services.keywords import KeywordAdmin
from bot.services.outbox import Sender
from bot.services.ratelimit import RateLimits
from bot.services.reports import WeeklyNotes
from bot.services.rules import RuleBook
from bot.services.scheduler import DeadlineScheduler
from bot.services.setup import SeedReport, seed_from_file
from bot.services.tickets import TicketService


@dataclass
class Core:
    """What the Telegram handlers, the web admin and the sandbox share."""

    uows: UnitOfWorkFactory
    clock: Clock
    directory: DirectoryHolder
    rules: RuleBook
    intake: IntakeService
    tickets: TicketService
    scheduler: DeadlineScheduler
    sender: Sender
    inbox: Inbox
    journal: Journal
    incidents: IncidentService
    homes: HomeService
    answers: AnswerBook
    keywords: KeywordAdmin
    figures: FigureService
    weekly: WeeklyNotes
    auth: AdminAuth
    metrics: Metrics


async def build_core(
    uows: UnitOfWorkFactory,
    file: CommunityFile,
    clock: Clock,
    notifier: Notifier | None = None,
    limits: RateLimits | None = None,
) -> Core:
    """Seed the database from the file if needed, then load what the services work from.

    The scheduler is built but not started: the runtime starts it once it can send.
    """
    report: SeedReport = await seed_from_file(uows, file, clock)
    directory = DirectoryHolder(report.directory)
    metrics = Metrics()
    rules = RuleBook(uows, metrics)
    await rules.reload([c.id for c in report.directory.communities])
    tickets = TicketService(uows, directory, clock)
    scheduler = DeadlineScheduler(uows, tickets, clock, metrics=metrics)
    tickets.wake = scheduler.wake
    sender = Sender(uows, clock, limits, notifier, metrics=metrics)
    sender.after_delivery = tickets.after_delivery
    tickets.kick = sender.kick
    answers = AnswerBook(uows, directory, clock)
    incidents = IncidentService(uows, directory, clock, tickets)
    figures = FigureService(uows, directory, clock)
    journal = Journal(uows, clock)
    return Core(
        uows=uows,
        clock=clock,
        directory=directory,
        rules=rules,
        intake=IntakeService(
            uows,
            rules,
            directory,
            clock,
            tickets,
            answers=answers,
            incidents=incidents,
            journal=journal,
            metrics=metrics,
        ),
        tickets=tickets,
        scheduler=scheduler,
        sender=sender,
        inbox=Inbox(uows, clock, journal),
        journal=journal,
        incidents=incidents,
        homes=HomeService(uows, directory, clock),
        answers=answers,
        keywords=KeywordAdmin(uows, rules, directory, clock),
        figures=figures,
        weekly=WeeklyNotes(uows, directory, clock, figures, tickets),
        auth=AdminAuth(uows, directory, clock),
        metrics=metrics,
    )
