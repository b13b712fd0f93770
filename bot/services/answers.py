"""Known answers told at once (一次性告知): a common question gets its whole answer."""

from __future__ import annotations

import logging

import nlp
from bot.directory import DirectoryHolder
from bot.domain import DISTRICT, Answer, DomainError
from bot.ports import Clock, UnitOfWorkFactory

logger = logging.getLogger(__name__)
MAX_TOPIC_WORDS = 10
MAX_TOPIC_WORD = 40
MAX_ANSWER = 1500


class BadAnswer(DomainError):
    """An answer that cannot be saved; ``reason`` is topic, text or missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_topic(words: str | list[str]) -> list[str]:
    """Topic words from a list or from text separated by spaces, commas or 、."""
    if isinstance(words, str):
        for sep in ",，、;；":
            words = words.replace(sep, " ")
        words = words.split()
    topic = [" ".join(str(w).split()) for w in words]
    topic = [w for w in topic if w]
    if not topic or len(topic) > MAX_TOPIC_WORDS or any(len(w) > MAX_TOPIC_WORD for w in topic):
        raise BadAnswer("topic")
    return topic


def _text(text: str) -> str:
    text = text.strip().replace("\x00", "")
    if not text or len(text) > MAX_ANSWER:
        raise BadAnswer("text")
    return text


class AnswerBook:
    """The answers of every community, cached in memory and refreshed on every change."""

    def __init__(self, uows: UnitOfWorkFactory, directory: DirectoryHolder, clock: Clock) -> None:
        self._uows = uows
        self._directory = directory
        self._clock = clock
        self._cache: dict[str, list[Answer]] | None = None
        # Each answer's topic words as the classifier normalises text, built with the cache.
        self._topics: dict[int, list[str]] = {}

    async def all(self) -> dict[str, list[Answer]]:
        """Answers by scope ('*' for the district)."""
        if self._cache is None:
            async with self._uows() as uow:
                scopes = [DISTRICT, *(c.id for c in self._directory.current.communities)]
                rows = await uow.answers.for_scopes(scopes)
            cache: dict[str, list[Answer]] = {}
            for answer in rows:
                cache.setdefault(answer.scope, []).append(answer)
            self._topics = {a.id: [nlp.normalize(w) for w in a.topic] for a in rows}
            self._cache = cache
        return self._cache

    async def match(self, community_id: str, text: str) -> Answer | None:
        """The community's own answer for a topic the text names, else the district's."""
        clean = nlp.normalize(text)
        answers = await self.all()
        for scope in (community_id, DISTRICT):
            for answer in answers.get(scope, []):
                if any(word in clean for word in self._topics.get(answer.id, ())):
                    return answer
        return None

    async def add(self, scope: str, topic: str | list[str], text: str) -> Answer:
        """A new answer."""
        async with self._uows() as uow:
            answer = await uow.answers.add(
                scope, parse_topic(topic), _text(text), self._clock.now()
            )
            await uow.commit()
        self._cache = None
        logger.info("answer #%d added for %s", answer.id, scope)
        return answer

    async def update(self, answer_id: int, topic: str | list[str], text: str) -> None:
        """Change an answer."""
        async with self._uows() as uow:
            found = await uow.answers.update(
                answer_id, parse_topic(topic), _text(text), self._clock.now()
            )
            if not found:
                raise BadAnswer("missing")
            await uow.commit()
        self._cache = None

    async def delete(self, answer_id: int) -> None:
        """Delete an answer."""
        async with self._uows() as uow:
            if not await uow.answers.remove(answer_id):
                raise BadAnswer("missing")
            await uow.commit()
        self._cache = None
