"""The outbox (messages written with the change that caused them, sent afterwards in order)
and the inbox (updates kept from the moment they are fetched until they are handled)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.domain import Button, Notice, OutboxMessage
from storage.coordination import notify
from storage.models import InboxRow, OutboxRow
from storage.statements import table, update_in

PENDING, SENDING, SENT, DROPPED, MERGED = "pending", "sending", "sent", "dropped", "merged"
MAX_ERROR = 300
_MISSING = object()
OUTBOX = table(OutboxRow)  # Core: one executemany, whatever values are None


_HEADS = (
    select(*OUTBOX.c)
    .where(
        OUTBOX.c.id.in_(
            select(func.min(OUTBOX.c.id))
            .where(OUTBOX.c.state.in_((PENDING, SENDING)))
            .group_by(OUTBOX.c.chat_id)
        ),
        OUTBOX.c.state == PENDING,
    )
    .order_by(OUTBOX.c.id)
    .limit(bindparam("limit"))
)
_CLAIM = (
    update(OUTBOX)
    .where(OUTBOX.c.id.in_(bindparam("message_ids", expanding=True)), OUTBOX.c.state == PENDING)
    .values(state=SENDING, attempts=OUTBOX.c.attempts + 1)
    .returning(OUTBOX.c.id)
)


def _notice(row: OutboxRow | Row[Any]) -> Notice:
    mention = row.mention
    return Notice(
        chat_id=row.chat_id,
        text=row.text,
        reply_to=row.reply_to,
        buttons=tuple(Button(label, data) for label, data in row.buttons),
        ticket_id=row.ticket_id,
        kind=row.kind,
        mention=(int(mention[0]), str(mention[1])) if mention else None,
    )


def _message(row: OutboxRow | Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        notice=_notice(row),
        created_at=row.created_at,
        attempts=row.attempts,
        state=row.state,
        next_at=row.next_at,
    )


class SqlOutboxRepository:
    """Rows of ``outbox``; see :class:`storage.models.OutboxRow` for the states."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, notices: Iterable[Notice], at: datetime) -> None:
        """Queue these (inside the caller's transaction), in one statement."""
        rows = [
            {
                "chat_id": n.chat_id,
                "text": n.text,
                "reply_to": n.reply_to,
                "buttons": [[b.label, b.data] for b in n.buttons],
                "mention": list(n.mention) if n.mention else None,
                "ticket_id": n.ticket_id,
                "kind": n.kind,
                "created_at": at,
                "state": PENDING,
                "attempts": 0,
                "next_at": at,
                "error": "",
            }
            for n in notices
        ]
        if not rows:
            return
        # Rows in list order: ids rise in the order given, which is the order they are sent.
        await self.session.execute(insert(OUTBOX), rows)
        await notify(self.session, "grid_outbox")  # the sending process may be another one

    async def heads(self, limit: int) -> list[OutboxMessage]:
        """The oldest unsent message of each chat where nothing is being sent, oldest first,
        due or not (one statement, built once: the sender asks on every pass)."""
        rows = await self.session.execute(_HEADS, {"limit": limit})
        return [_message(r) for r in rows]

    async def pending_in(
        self, chat_id: int, kinds: Iterable[str], limit: int
    ) -> list[OutboxMessage]:
        """A chat's pending messages of these kinds, oldest first."""
        rows = await self.session.scalars(
            select(OutboxRow)
            .where(
                OutboxRow.state == PENDING,
                OutboxRow.chat_id == chat_id,
                OutboxRow.kind.in_(list(kinds)),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        return [_message(r) for r in rows]

    async def count_pending(self, chat_id: int | None = None) -> int:
        """How many messages wait or are being sent (in one chat, or in all)."""
        query = (
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.state.in_((PENDING, SENDING)))
        )
        if chat_id is not None:
            query = query.where(OutboxRow.chat_id == chat_id)
        return int(await self.session.scalar(query) or 0)

    async def _set(self, message_id: int, **values: object) -> None:
        await self.session.execute(
            update(OutboxRow).where(OutboxRow.id == message_id).values(**values)
        )

    async def claim(self, message_ids: list[int]) -> set[int]:
        """Claim pending messages for sending now, in one statement (a crash leaves them to
        be sent again); the ids claimed — one no longer pending was taken by another sender."""
        if not message_ids:
            return set()
        rows = await self.session.execute(_CLAIM, {"message_ids": message_ids})
        return {message_id for (message_id,) in rows}

    async def sent(self, message_ids: Iterable[int], at: datetime) -> None:
        """They reached Telegram (one statement for a pass's worth)."""
        await update_in(self.session, OutboxRow.id, message_ids, state=SENT, sent_at=at, error="")

    async def retry(self, message_id: int, at: datetime, error: str) -> None:
        """Try again at ``at``."""
        await self._set(message_id, state=PENDING, next_at=at, error=error[:MAX_ERROR])

    async def drop(self, message_id: int, error: str) -> None:
        """Give up on it for good (the reason is kept)."""
        await self._set(message_id, state=DROPPED, error=error[:MAX_ERROR])

    async def merge(self, into: int, notice: Notice, merged: list[int]) -> None:
        """Send ``notice`` as message ``into``; the ``merged`` ones went out inside it."""
        await self._set(
            into,
            text=notice.text,
            reply_to=notice.reply_to,
            buttons=[[b.label, b.data] for b in notice.buttons],
            kind=notice.kind,
            ticket_id=notice.ticket_id,
        )
        if merged:
            await self.session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(merged), OutboxRow.state == PENDING)
                .values(state=MERGED, merged_into=into)
            )

    async def resume(self) -> int:
        """After a restart: messages caught mid-send are pending again; returns how many."""
        result = await self.session.execute(
            update(OutboxRow).where(OutboxRow.state == SENDING).values(state=PENDING)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def for_ticket(self, ticket_id: int) -> list[OutboxMessage]:
        """Everything queued about a ticket, oldest first."""
        rows = await self.session.scalars(
            select(OutboxRow).where(OutboxRow.ticket_id == ticket_id).order_by(OutboxRow.id)
        )
        return [_message(r) for r in rows]


_INBOX = table(InboxRow)
_KNOWN_UPDATES = select(_INBOX.c.update_id, _INBOX.c.payload).where(
    _INBOX.c.update_id.in_(bindparam("update_ids", expanding=True))
)
_KEEP_UPDATES = insert(_INBOX)


class SqlInboxRepository:
    """Rows of ``inbox``, keyed by Telegram's update id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def keep_many(
        self, updates: list[tuple[int, dict[str, Any]]], at: datetime, owner: int | None = None
    ) -> set[int]:
        """Keep a fetched batch as fetched by process ``owner``; returns the ids that are new.
        An update kept already (fetched again) is not new. Telegram may reuse an update id
        after a quiet week: a different update under a known id replaces the old row and
        counts as new. Two statements for the batch, however long."""
        if not updates:
            return set()
        latest = dict(updates)  # one row per id, the last payload seen
        known = {
            row.update_id: row.payload
            for row in await self.session.execute(_KNOWN_UPDATES, {"update_ids": list(latest)})
        }
        fresh = {u for u, payload in latest.items() if known.get(u, _MISSING) != payload}
        new = [
            {"update_id": u, "payload": latest[u], "received_at": at, "owner": owner}
            for u in fresh
            if u not in known
        ]
        if new:
            await self.session.execute(_KEEP_UPDATES, new)
        for update_id in fresh & known.keys():  # a reused id: rare
            await self.session.execute(
                update(InboxRow)
                .where(InboxRow.update_id == update_id)
                .values(payload=latest[update_id], received_at=at, done_at=None, owner=owner)
            )
        return fresh

    async def done(self, update_ids: Iterable[int], at: datetime) -> None:
        """These updates were handled."""
        await update_in(self.session, InboxRow.update_id, update_ids, done_at=at)

    async def undone_owners(self) -> set[int | None]:
        """The processes that kept updates not yet handled (None: kept before revision 0008)."""
        rows = await self.session.scalars(
            select(InboxRow.owner).where(InboxRow.done_at.is_(None)).distinct()
        )
        return set(rows)

    async def take_over(
        self, owners: set[int | None], owner: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Make the undone updates of these (dead) processes ``owner``'s and return them,
        oldest first. A conditional update: two processes never take the same update."""
        known = [o for o in owners if o is not None]
        condition: ColumnElement[bool] = InboxRow.owner.in_(known)
        if None in owners:
            condition = or_(condition, InboxRow.owner.is_(None))
        ids = list(
            await self.session.scalars(
                select(InboxRow.update_id)
                .where(InboxRow.done_at.is_(None), condition)
                .order_by(InboxRow.update_id)
                .limit(limit)
            )
        )
        if not ids:
            return []
        rows = await self.session.scalars(
            update(InboxRow)
            .where(InboxRow.update_id.in_(ids), InboxRow.done_at.is_(None), condition)
            .values(owner=owner)
            .returning(InboxRow)
            .execution_options(synchronize_session=False)
        )
        return [r.payload for r in sorted(rows, key=lambda r: r.update_id)]

    async def prune(self, before: datetime) -> int:
        """Forget updates handled before ``before``; returns how many."""
        result = await self.session.execute(
            delete(InboxRow).where(InboxRow.done_at.is_not(None), InboxRow.done_at < before)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
