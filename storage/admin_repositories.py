"""Repositories behind the admin features: keyword audit, message log, answers, web logins."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import Answer, KeywordChange, KeywordEntry, LoggedMessage
from storage.coordination import notify
from storage.models import (
    AdminCredentialRow,
    AdminSessionRow,
    AnswerRow,
    KeywordChangeRow,
    KeywordRow,
    MessageLogRow,
)
from storage.repositories import keyword_entry
from storage.statements import insert_ignoring


def _state(value: dict[str, Any] | None) -> tuple[float, bool] | None:
    return None if value is None else (float(value["weight"]), bool(value["enabled"]))


def _json(value: tuple[float, bool] | None) -> dict[str, Any] | None:
    return None if value is None else {"weight": value[0], "enabled": value[1]}


def _change(row: KeywordChangeRow) -> KeywordChange:
    return KeywordChange(
        id=row.id,
        at=row.at,
        actor=row.actor,
        scope=row.community_id,
        category=row.category,
        word=row.word,
        before=_state(row.before),
        after=_state(row.after),
        note=row.note,
    )


class SqlKeywordAdminRepository:
    """Single keyword rows and their audit log, for admins' edits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entries(self, scope: str) -> list[KeywordEntry]:
        """Every rule stored for one scope, disabled ones included."""
        rows = await self.session.scalars(
            select(KeywordRow)
            .where(KeywordRow.community_id == scope)
            .order_by(KeywordRow.category, KeywordRow.id)
        )
        return [keyword_entry(r) for r in rows]

    async def get(self, scope: str, category: str, word: str) -> KeywordEntry | None:
        """One rule, or None."""
        row = await self._row(scope, category, word)
        return keyword_entry(row) if row else None

    async def _row(self, scope: str, category: str, word: str) -> KeywordRow | None:
        return await self.session.scalar(
            select(KeywordRow).where(
                KeywordRow.community_id == scope,
                KeywordRow.category == category,
                KeywordRow.word == word,
            )
        )

    async def put(self, entry: KeywordEntry, at: datetime) -> None:
        """Insert or update one rule."""
        row = await self._row(entry.scope, entry.category, entry.word)
        if row is None:
            self.session.add(
                KeywordRow(
                    community_id=entry.scope,
                    category=entry.category,
                    word=entry.word,
                    weight=entry.weight,
                    enabled=entry.enabled,
                    updated_at=at,
                )
            )
        else:
            row.weight, row.enabled, row.updated_at = entry.weight, entry.enabled, at
        await self.session.flush()

    async def remove(self, scope: str, category: str, word: str) -> None:
        """Delete one rule."""
        await self.session.execute(
            delete(KeywordRow).where(
                KeywordRow.community_id == scope,
                KeywordRow.category == category,
                KeywordRow.word == word,
            )
        )

    async def log(  # noqa: PLR0917 - one audit line is these facts
        self,
        at: datetime,
        actor: str,
        scope: str,
        category: str,
        word: str,
        before: tuple[float, bool] | None,
        after: tuple[float, bool] | None,
        note: str = "",
    ) -> int:
        """Append an audit line; returns its number."""
        row = KeywordChangeRow(
            at=at,
            actor=actor[:100],
            community_id=scope,
            category=category,
            word=word,
            before=_json(before),
            after=_json(after),
            note=note[:200],
        )
        self.session.add(row)
        await notify(self.session, "grid_keywords", scope)  # other processes reload the rules
        await self.session.flush()
        return row.id

    async def changes(self, scope: str | None = None, limit: int = 200) -> list[KeywordChange]:
        """The audit log, newest first; ``scope`` None: every scope."""
        query = select(KeywordChangeRow).order_by(KeywordChangeRow.id.desc()).limit(limit)
        if scope is not None:
            query = query.where(KeywordChangeRow.community_id == scope)
        return [_change(r) for r in await self.session.scalars(query)]

    async def change(self, change_id: int) -> KeywordChange | None:
        """One audit line."""
        row = await self.session.get(KeywordChangeRow, change_id)
        return _change(row) if row else None


def _message(row: MessageLogRow) -> LoggedMessage:
    return LoggedMessage(
        id=row.id,
        community_id=row.community_id,
        chat_id=row.chat_id,
        message_id=row.message_id,
        at=row.at,
        text=row.text,
        category=row.category,
        confidence=row.confidence,
        urgent=row.urgent,
        ticket_id=row.ticket_id,
        relabel=row.relabel,
    )


class SqlMessageLogRepository:
    """Recent group messages as the classifier saw them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, messages: Sequence[LoggedMessage]) -> None:
        """Record these messages in one statement; one already recorded (same chat and
        message: an update handled again after a crash) is skipped."""
        if not messages:
            return
        rows = [
            {
                "community_id": m.community_id,
                "chat_id": m.chat_id,
                "message_id": m.message_id,
                "at": m.at,
                "text": m.text,
                "category": m.category,
                "confidence": m.confidence,
                "urgent": m.urgent,
                "ticket_id": m.ticket_id,
            }
            for m in messages
        ]
        await self.session.execute(
            insert_ignoring(self.session, MessageLogRow, "chat_id", "message_id"), rows
        )

    async def recent(self, community_id: str, limit: int) -> list[LoggedMessage]:
        """The community's last messages, newest first."""
        rows = await self.session.scalars(
            select(MessageLogRow)
            .where(MessageLogRow.community_id == community_id)
            .order_by(MessageLogRow.id.desc())
            .limit(limit)
        )
        return [_message(r) for r in rows]

    async def for_review(
        self, community_ids: list[str], below: float, limit: int
    ) -> list[LoggedMessage]:
        """Messages the classifier was unsure about, or that staff re-labelled, newest first."""
        rows = await self.session.scalars(
            select(MessageLogRow)
            .where(
                MessageLogRow.community_id.in_(community_ids),
                (MessageLogRow.confidence < below) | MessageLogRow.relabel.is_not(None),
            )
            .order_by(MessageLogRow.id.desc())
            .limit(limit)
        )
        return [_message(r) for r in rows]

    async def relabel(self, chat_id: int, message_id: int, label: str) -> None:
        """Record what staff said a message really was."""
        await self.session.execute(
            update(MessageLogRow)
            .where(MessageLogRow.chat_id == chat_id, MessageLogRow.message_id == message_id)
            .values(relabel=label)
        )

    async def prune(self, community_id: str, keep: int) -> int:
        """Forget all but the community's last ``keep`` messages; returns how many went."""
        cutoff = await self.session.scalar(
            select(MessageLogRow.id)
            .where(MessageLogRow.community_id == community_id)
            .order_by(MessageLogRow.id.desc())
            .offset(keep)
            .limit(1)
        )
        if cutoff is None:
            return 0
        result = await self.session.execute(
            delete(MessageLogRow).where(
                MessageLogRow.community_id == community_id, MessageLogRow.id <= cutoff
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def count(self, community_id: str) -> int:
        """How many messages of the community are kept."""
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(MessageLogRow)
                .where(MessageLogRow.community_id == community_id)
            )
            or 0
        )


def _answer(row: AnswerRow) -> Answer:
    return Answer(row.id, row.community_id, tuple(row.topic), row.text, row.from_file)


class SqlAnswerRepository:
    """Known answers to common questions, per community or district-wide."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_scopes(self, scopes: list[str]) -> list[Answer]:
        """Answers of these scopes, in the order they were written."""
        rows = await self.session.scalars(
            select(AnswerRow).where(AnswerRow.community_id.in_(scopes)).order_by(AnswerRow.id)
        )
        return [_answer(r) for r in rows]

    async def add(
        self, scope: str, topic: list[str], text: str, at: datetime, from_file: bool = False
    ) -> Answer:
        """Store a new answer."""
        row = AnswerRow(
            community_id=scope, topic=topic, text=text, from_file=from_file, updated_at=at
        )
        self.session.add(row)
        await self.session.flush()
        return _answer(row)

    async def update(self, answer_id: int, topic: list[str], text: str, at: datetime) -> bool:
        """Change an answer; False if there is none with this number."""
        result = await self.session.execute(
            update(AnswerRow)
            .where(AnswerRow.id == answer_id)
            .values(topic=topic, text=text, updated_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def remove(self, answer_id: int) -> bool:
        """Delete an answer; False if there is none with this number."""
        result = await self.session.execute(delete(AnswerRow).where(AnswerRow.id == answer_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def replace_from_file(
        self, scope: str, answers: list[tuple[list[str], str]], at: datetime
    ) -> None:
        """Make the file's answers of a scope what the file says; admins' own stay."""
        await self.session.execute(
            delete(AnswerRow).where(AnswerRow.community_id == scope, AnswerRow.from_file)
        )
        for topic, text in answers:
            await self.add(scope, topic, text, at, from_file=True)


class SqlAdminRepository:
    """Admins' web passwords (hashes only) and their sessions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def password_hash(self, staff_id: str) -> str | None:
        """The stored hash, or None when no password was ever set."""
        row = await self.session.get(AdminCredentialRow, staff_id)
        return row.password_hash if row else None

    async def set_password_hash(self, staff_id: str, password_hash: str, at: datetime) -> None:
        """Store a new hash; every open session of this admin ends."""
        row = await self.session.get(AdminCredentialRow, staff_id)
        if row is None:
            self.session.add(
                AdminCredentialRow(staff_id=staff_id, password_hash=password_hash, updated_at=at)
            )
        else:
            row.password_hash, row.updated_at = password_hash, at
        await self.session.execute(
            delete(AdminSessionRow).where(AdminSessionRow.staff_id == staff_id)
        )
        await self.session.flush()

    async def add_session(
        self, token_hash: str, staff_id: str, csrf: str, at: datetime, expires_at: datetime
    ) -> None:
        """Open a session."""
        self.session.add(
            AdminSessionRow(
                token_hash=token_hash,
                staff_id=staff_id,
                csrf=csrf,
                created_at=at,
                expires_at=expires_at,
            )
        )
        await self.session.flush()

    async def session_for(self, token_hash: str, now: datetime) -> tuple[str, str] | None:
        """(staff id, CSRF token) of a live session, or None."""
        row = await self.session.get(AdminSessionRow, token_hash)
        if row is None or row.expires_at <= now:
            return None
        return row.staff_id, row.csrf

    async def end_session(self, token_hash: str) -> None:
        """Log out."""
        await self.session.execute(
            delete(AdminSessionRow).where(AdminSessionRow.token_hash == token_hash)
        )

    async def purge_sessions(self, now: datetime) -> None:
        """Forget expired sessions."""
        await self.session.execute(delete(AdminSessionRow).where(AdminSessionRow.expires_at <= now))
