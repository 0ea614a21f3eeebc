"""INSERT … ON CONFLICT in the store's dialect, whose module is imported on first use.

SQLAlchemy's PostgreSQL dialect takes as long to import as a short command
takes to run: a store on SQLite never needs it, one on PostgreSQL never
needs SQLite's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert


def insert_of(session: Session) -> Callable[[Any], PostgresInsert | SqliteInsert]:
    """The dialect's ``insert``, with ``on_conflict_do_nothing`` and ``on_conflict_do_update``."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
