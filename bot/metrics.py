"""What the bot counts for operators, in Prometheus' terms (served at ``/metrics``).

One :class:`Metrics` per core, with its own registry, so two cores in one process (tests,
benchmarks) never mix their counts. The services call the small methods below; nothing here
touches the database: the outbox depth is read by the web handler at scrape time.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Classifying a short message takes well under a millisecond; long ones go to a thread.
_CLASSIFY_BUCKETS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
# A deadline is acted on within milliseconds; after downtime, minutes or hours late.
_LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0)
_BREACH_OUTCOMES = ("breach", "breach at top", "escalated")


class Metrics:
    """Counters, gauges and histograms of one running core."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            "grid_messages_in",
            "Messages and button presses received, by kind",
            ["kind"],
            registry=r,
        )
        self.tickets_opened = Counter(
            "grid_tickets_opened", "Tickets opened, by category", ["category"], registry=r
        )
        self.classification = Histogram(
            "grid_classification_seconds",
            "Time to classify one message",
            buckets=_CLASSIFY_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge(
            "grid_outbox_depth", "Messages waiting to be sent or being sent", registry=r
        )
        self.sends = Counter(
            "grid_sends",
            "Outgoing messages by result (sent, failed, refused, rejected)",
            ["result"],
            registry=r,
        )
        self.breaches = Counter(
            "grid_sla_breaches", "5321 deadlines missed, by stage", ["stage"], registry=r
        )
        self.timers = Counter(
            "grid_timers_fired",
            "Deadlines and reminders acted on, by outcome",
            ["outcome"],
            registry=r,
        )
        self.lateness = Histogram(
            "grid_scheduler_lateness_seconds",
            "How late a deadline was acted on",
            buckets=_LATENESS_BUCKETS,
            registry=r,
        )

    def message_in(self, kind: str) -> None:
        """One update arrived: ``group``, ``private``, ``edit`` or ``button``."""
        self.messages_in.labels(kind).inc()

    def classified(self, seconds: float) -> None:
        """One message classified in ``seconds``."""
        self.classification.observe(seconds)

    def ticket_opened(self, category: str) -> None:
        """A new ticket (not a "me too" joining one)."""
        self.tickets_opened.labels(category).inc()

    def sent(self, result: str) -> None:
        """One attempt to deliver an outbox message ended so."""
        self.sends.labels(result).inc()

    def fired(self, kind: str, stage: str, outcome: str, due: datetime, at: datetime) -> None:
        """The scheduler acted on a timer ``(at - due)`` late."""
        self.timers.labels(outcome).inc()
        self.lateness.observe(max(0.0, (at - due).total_seconds()))
        if kind == "breach" and outcome in _BREACH_OUTCOMES:
            self.breaches.labels(stage or "unknown").inc()

    def exposition(self, outbox_depth: int | None) -> bytes:
        """The text format Prometheus scrapes (``None``: the depth keeps its last value)."""
        if outbox_depth is not None:
            self.outbox_depth.set(outbox_depth)
        return generate_latest(self.registry)
