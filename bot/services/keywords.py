"""Admins' live edits of the routing words: validate, preview (what-if), save, audit, undo.

Every change is written with its audit line in one transaction, then the affected
communities' rules are rebuilt, so the running bot uses them from the next message.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, replace

import yaml

import nlp
from bot.config import MAX_KEYWORD
from bot.directory import DirectoryHolder
from bot.domain import (
    DISTRICT,
    DomainError,
    KeywordChange,
    KeywordEntry,
    LoggedMessage,
    merge_keywords,
)
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.rules import RuleBook
from nlp.rules import DECISIVE_WEIGHT

logger = logging.getLogger(__name__)
DEFAULT_WEIGHT = DECISIVE_WEIGHT  # one such word alone makes a ticket
MAX_WEIGHT = 100.0
WHAT_IF_MESSAGES = 200
MAX_IMPORT_BYTES = 1_000_000


class BadKeyword(DomainError):
    """A keyword edit that cannot be saved; ``reason`` is a key of the edges' texts."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # category, word, weight, scope, missing, yaml
        self.detail = detail


@dataclass(frozen=True)
class Relabel:
    """One message the proposed rules would treat differently."""

    text: str
    before: str  # category now
    after: str  # category with the change


@dataclass(frozen=True)
class WhatIf:
    """How a change would re-label the community's recent messages."""

    looked_at: int
    new_tickets: list[Relabel]  # none -> request
    stopped: list[Relabel]  # request -> none
    moved: list[Relabel]  # request -> another request category


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    added: int
    changed: int
    unchanged: int


def check_word(category: str, word: str) -> str:
    """The word as it will be stored; raises :class:`BadKeyword` if it cannot be used."""
    if category not in nlp.EDITABLE_KINDS:
        raise BadKeyword("category", category)
    word = " ".join(str(word).split())
    if not word or len(word) > MAX_KEYWORD or any(ord(c) < 32 for c in word):
        raise BadKeyword("word", word[:40])
    try:
        nlp.compile_rule(category, word, 1.0)
    except nlp.RuleError as exc:
        raise BadKeyword("word", str(exc)) from None
    return word


def check_weight(weight: object) -> float:
    """A weight above 0 and at most 100."""
    try:
        value = float(weight)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadKeyword("weight", str(weight)[:20]) from None
    if not math.isfinite(value) or value <= 0 or value > MAX_WEIGHT:
        raise BadKeyword("weight", str(weight)[:20])
    return round(value, 3)


def _state(entry: KeywordEntry | None) -> tuple[float, bool] | None:
    return None if entry is None else (entry.weight, entry.enabled)


class KeywordAdmin:
    """The one place keyword rules change, for the bot commands and the web admin alike."""

    def __init__(
        self, uows: UnitOfWorkFactory, rules: RuleBook, directory: DirectoryHolder, clock: Clock
    ) -> None:
        self._uows = uows
        self._rules = rules
        self._directory = directory
        self._clock = clock

    def scopes(self) -> list[str]:
        """'*' (the district) and every community id."""
        return [DISTRICT, *(c.id for c in self._directory.current.communities)]

    def check_scope(self, scope: str) -> str:
        """A known scope, or :class:`BadKeyword`."""
        if scope not in self.scopes():
            raise BadKeyword("scope", scope)
        return scope

    async def entries(self, scope: str, category: str | None = None) -> list[KeywordEntry]:
        """The rules stored for a scope (disabled ones too), optionally of one category."""
        self.check_scope(scope)
        async with self._uows() as uow:
            rows = await uow.keyword_admin.entries(scope)
        return [e for e in rows if category is None or e.category == category]

    async def history(self, scope: str | None = None, limit: int = 200) -> list[KeywordChange]:
        """The audit log, newest first."""
        async with self._uows() as uow:
            return await uow.keyword_admin.changes(scope, limit)

    async def put(
        self,
        actor: str,
        scope: str,
        category: str,
        word: str,
        *,
        weight: float | None = None,
        enabled: bool | None = None,
    ) -> KeywordChange | None:
        """Add a rule, or change its weight or switch it on or off. None: nothing changed."""
        self.check_scope(scope)
        word = check_word(category, word)
        async with self._uows() as uow:
            before = await uow.keyword_admin.get(scope, category, word)
            after = KeywordEntry(
                scope,
                category,
                word,
                check_weight(weight)
                if weight is not None
                else (before.weight if before else DEFAULT_WEIGHT),
                enabled if enabled is not None else (before.enabled if before else True),
            )
            change = await self._apply(uow, actor, before, after, "")
            await uow.commit()
        await self._reload(scope)
        return change

    async def delete(self, actor: str, scope: str, category: str, word: str) -> KeywordChange:
        """Delete a rule of this scope."""
        self.check_scope(scope)
        word = " ".join(str(word).split())
        async with self._uows() as uow:
            before = await uow.keyword_admin.get(scope, category, word)
            if before is None:
                raise BadKeyword("missing", word)
            await uow.keyword_admin.remove(scope, category, word)
            change_id = await uow.keyword_admin.log(
                self._clock.now(), actor, scope, category, word, _state(before), None
            )
            change = await uow.keyword_admin.change(change_id)
            await uow.commit()
        await self._reload(scope)
        assert change is not None
        return change

    async def rollback(self, actor: str, change_id: int) -> KeywordChange | None:
        """Put a rule back the way it was before an audited change. None: it already is."""
        async with self._uows() as uow:
            original = await uow.keyword_admin.change(change_id)
            if original is None:
                raise BadKeyword("missing", f"#{change_id}")
            scope, category, word = original.scope, original.category, original.word
            current = await uow.keyword_admin.get(scope, category, word)
            note = f"撤销 #{change_id}"
            if original.before is None:
                if current is None:
                    return None
                await uow.keyword_admin.remove(scope, category, word)
                change_id = await uow.keyword_admin.log(
                    self._clock.now(), actor, scope, category, word, _state(current), None, note
                )
                change = await uow.keyword_admin.change(change_id)
            else:
                weight, enabled = original.before
                target = KeywordEntry(scope, category, word, weight, enabled)
                change = await self._apply(uow, actor, current, target, note)
            await uow.commit()
        await self._reload(scope)
        return change

    async def _apply(
        self,
        uow: UnitOfWork,
        actor: str,
        before: KeywordEntry | None,
        after: KeywordEntry,
        note: str,
    ) -> KeywordChange | None:
        if _state(before) == _state(after):
            return None
        now = self._clock.now()
        await uow.keyword_admin.put(after, now)
        change_id = await uow.keyword_admin.log(
            now, actor, after.scope, after.category, after.word, _state(before), _state(after), note
        )
        return await uow.keyword_admin.change(change_id)

    async def _reload(self, scope: str) -> None:
        communities = [c.id for c in self._directory.current.communities]
        await self._rules.reload(communities if scope == DISTRICT else [scope])
        logger.info("keyword rules of %s changed; classifier rebuilt", scope)

    async def what_if(
        self,
        scope: str,
        category: str,
        word: str,
        *,
        weight: float | None,
        enabled: bool = True,
        limit: int = WHAT_IF_MESSAGES,
    ) -> WhatIf:
        """How the last ``limit`` messages (of the community, or of every community for the
        district) would be labelled with this rule set so (weight None: deleted)."""
        self.check_scope(scope)
        word = check_word(category, word)
        weight = check_weight(weight) if weight is not None else None
        communities = [c.id for c in self._directory.current.communities]
        targets = communities if scope == DISTRICT else [scope]
        async with self._uows() as uow:
            district = await uow.keyword_admin.entries(DISTRICT)
            work = []
            for community_id in targets:
                own = await uow.keyword_admin.entries(community_id)
                messages = await uow.messages.recent(community_id, limit)
                work.append((district, own, messages))

        def changed(entries: list[KeywordEntry], here: str) -> list[KeywordEntry]:
            if here != scope:
                return entries
            kept = [e for e in entries if (e.category, e.word) != (category, word)]
            if weight is None:
                return kept
            return [*kept, KeywordEntry(scope, category, word, weight, enabled)]

        def compare() -> WhatIf:
            looked, new, stopped, moved = 0, [], [], []
            for (district_rows, own_rows, messages), community_id in zip(
                work, targets, strict=True
            ):
                old_rules = nlp.Rules(keywords=merge_keywords(district_rows, own_rows))
                new_rules = nlp.Rules(
                    keywords=merge_keywords(
                        changed(district_rows, DISTRICT), changed(own_rows, community_id)
                    )
                )
                for message in messages:
                    looked += 1
                    before = nlp.classify(message.text, old_rules).category
                    after = nlp.classify(message.text, new_rules).category
                    if before == after:
                        continue
                    item = Relabel(message.text, before, after)
                    if before == "none":
                        new.append(item)
                    elif after == "none":
                        stopped.append(item)
                    else:
                        moved.append(item)
            return WhatIf(looked, new, stopped, moved)

        # Two classifications per message: off the event loop, residents keep being answered.
        return await asyncio.to_thread(compare)

    async def export_yaml(self, scope: str) -> str:
        """The scope's enabled rules in the community file's ``keywords:`` format."""
        entries = [e for e in await self.entries(scope) if e.enabled]
        table: dict[str, dict[str, float]] = {kind: {} for kind in nlp.EDITABLE_KINDS}
        for entry in entries:
            table[entry.category][entry.word] = entry.weight
        table = {kind: words for kind, words in table.items() if words}
        header = f"# keywords of {'the district' if scope == DISTRICT else scope}\n"
        body = yaml.safe_dump({"keywords": table}, allow_unicode=True, sort_keys=False)
        return header + body

    async def import_yaml(self, actor: str, scope: str, text: str) -> ImportReport:
        """Add or re-weigh rules from YAML in the ``keywords:`` format (a bare category
        mapping works too). Rules not in the file are left alone. All or nothing."""
        self.check_scope(scope)
        if len(text.encode("utf-8", "replace")) > MAX_IMPORT_BYTES:
            raise BadKeyword("yaml", "too large")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadKeyword("yaml", str(exc).splitlines()[0]) from None
        if isinstance(data, dict) and "keywords" in data:
            data = data["keywords"]
        if not isinstance(data, dict):
            raise BadKeyword("yaml", "expected keywords: {category: {word: weight}}")
        wanted: list[KeywordEntry] = []
        for category, words in data.items():
            if not isinstance(words, dict):
                raise BadKeyword("yaml", f"{category}: expected word: weight lines")
            for word, weight in words.items():
                clean = check_word(str(category), str(word))
                wanted.append(KeywordEntry(scope, str(category), clean, check_weight(weight)))
        added = changed = unchanged = 0
        async with self._uows() as uow:
            for entry in wanted:
                before = await uow.keyword_admin.get(scope, entry.category, entry.word)
                target = replace(entry, enabled=True)
                if await self._apply(uow, actor, before, target, "导入") is None:
                    unchanged += 1
                elif before is None:
                    added += 1
                else:
                    changed += 1
            await uow.commit()
        await self._reload(scope)
        return ImportReport(added, changed, unchanged)

    async def review_queue(self, below: float, limit: int = 200) -> list[LoggedMessage]:
        """Recent messages the classifier was unsure about or staff re-labelled."""
        ids = [c.id for c in self._directory.current.communities]
        async with self._uows() as uow:
            return await uow.messages.for_review(ids, below, limit)

    async def try_text(self, community_id: str, text: str) -> nlp.Classification:
        """What the running rules make of a sentence."""
        return await self._rules.classify(community_id, text)
