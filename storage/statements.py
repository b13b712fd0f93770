"""Statement shapes several repositories share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

CHUNK = 500  # ids per IN list (SQLite allows 32,766 parameters; keep statements small)


def insert_ignoring(session: AsyncSession, model: type[Any], *index: str) -> Any:
    """``INSERT … ON CONFLICT (index) DO NOTHING`` in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = pg_insert(model)
    else:
        statement = sqlite_insert(model)
    return statement.on_conflict_do_nothing(index_elements=list(index))


async def update_in(
    session: AsyncSession, key: InstrumentedAttribute[Any], ids: Iterable[Any], **values: Any
) -> None:
    """Set ``values`` on the rows whose ``key`` is one of ``ids``, a chunk per statement."""
    chosen = list(ids)
    for start in range(0, len(chosen), CHUNK):
        await session.execute(
            update(key.class_).where(key.in_(chosen[start : start + CHUNK])).values(**values)
        )
