"""Classifier rules per community, built from the stored keywords and swapped whole."""

from __future__ import annotations

import asyncio
import logging
import time

import nlp
from bot.metrics import Metrics
from bot.ports import UnitOfWorkFactory

logger = logging.getLogger(__name__)
# Segmenting a long message takes milliseconds; beyond this length it runs in a worker thread
# so the event loop keeps answering other residents meanwhile.
OFFLOAD_CHARS = 300


class RuleBook:
    """The current :class:`nlp.Rules` of each community.

    Rules are immutable; a reload builds new ones and replaces the reference, so a message
    being classified never sees a half-applied change.
    """

    def __init__(self, uows: UnitOfWorkFactory, metrics: Metrics | None = None) -> None:
        self._uows = uows
        self._metrics = metrics
        self._rules: dict[str, nlp.Rules] = {}
        self._version = 0

    async def reload(self, community_ids: list[str]) -> None:
        """Rebuild the rules of these communities from the database."""
        fresh: dict[str, nlp.Rules] = {}
        async with self._uows() as uow:
            for community_id in community_ids:
                table = await uow.keywords.table_for(community_id)
                self._version += 1
                fresh[community_id] = nlp.Rules(keywords=table, version=self._version)
        self._rules = {**self._rules, **fresh}
        logger.info("classifier rules loaded for %d communities", len(fresh))

    def rules_for(self, community_id: str) -> nlp.Rules:
        """The community's rules (empty rules for an unknown community)."""
        return self._rules.get(community_id) or nlp.Rules(keywords={})

    async def classify(self, community_id: str, text: str) -> nlp.Classification:
        """Classify a message with the community's rules, off the loop when it is long."""
        rules = self.rules_for(community_id)
        started = time.perf_counter()
        if len(text) > OFFLOAD_CHARS:
            result = await asyncio.to_thread(nlp.classify, text, rules)
        else:
            result = nlp.classify(text, rules)
        if self._metrics is not None:
            self._metrics.classified(time.perf_counter() - started)
        return result
