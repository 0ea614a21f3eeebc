"""A message accepted by its server, recorded sent in one statement, on the driver itself.

Delivery records each message the server accepted before the next one may
end (followupd.delivery.handover), so this statement's cost is paid once a
message, in series. Through a session it costs a pool checkout, a cache key,
an ORM flush and a reset; here it is the statement SQLAlchemy compiled once
for the engine's dialect, with its parameters converted by the columns' own
types, run on one driver connection kept for a delivery pass: a BEGIN (the
IMMEDIATE one on SQLite, as in followupd.store.db), the UPDATE, a COMMIT.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Engine

from followupd.domain.states import FollowUpState
from followupd.store.models import FollowUp
from followupd.store.outbox.claim import SENT_VALUES

_TABLE = cast(Table, FollowUp.__table__)
_SENT_IF_OURS = (
    update(_TABLE)
    .where(
        _TABLE.c.id == bindparam("row_id"),
        _TABLE.c.state == FollowUpState.SENDING,
        _TABLE.c.lease_owner == bindparam("worker"),
    )
    .values(SENT_VALUES)
)
_GIVEN = ("row_id", "worker", "at", "sent_with")


class SentRecord:
    """Records rows sent, one at a time, on a driver connection of `engine` kept until `close`.

    Not for two records at once (delivery's handover runs one at a time); `close` may come
    from any thread, at any time, and never waits: a record under way closes the
    connection as it ends.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = _SENT_IF_OURS.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: list[str] | None = (
            list(compiled.positiontup or []) if dialect.positional else None
        )
        self.processors: dict[str, Callable[[Any], Any] | None] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        fixed = compiled.construct_params(dict.fromkeys(_GIVEN))
        self.fixed = {name: self._processed(name, value) for name, value in fixed.items()
                      if name not in _GIVEN}  # fmt: skip
        self.begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else None
        self.guard = threading.Lock()  # over the two flags below, never held while the driver runs
        self.busy = False  # a record under way
        self.closing = False
        self.connection = engine.raw_connection()

    def _processed(self, name: str, value: Any) -> Any:
        if isinstance(value, Enum):  # a state: its word, whatever the driver makes of an enum
            value = value.value
        processor = self.processors.get(name)
        return processor(value) if processor is not None and value is not None else value

    def __call__(self, row_id: int, message_id: str, worker: str, at: datetime) -> bool:
        """Row `row_id` recorded sent with `message_id` if `worker` still holds its lease."""
        given = {"row_id": row_id, "worker": worker, "at": at, "sent_with": message_id}
        values = self.fixed | {name: self._processed(name, value) for name, value in given.items()}
        params: Any = values if self.names is None else tuple(values[n] for n in self.names)
        with self.guard:
            if self.closing:
                raise RuntimeError("the record of sent messages is closed")
            self.busy = True
        try:
            return self._run(params)
        finally:
            with self.guard:
                self.busy = False
                closing = self.closing
            if closing:  # closed while this record ran: its connection ends now
                self.connection.close()

    def _run(self, params: Any) -> bool:
        cursor = self.connection.cursor()
        try:
            if self.begin is not None:
                cursor.execute(self.begin)
            cursor.execute(self.sql, params)
            done = cursor.rowcount == 1
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()
        return done

    def close(self) -> None:
        """Return the connection to the pool, now or once the record under way ends."""
        with self.guard:
            if self.closing:
                return
            self.closing = True
            if self.busy:
                return
        self.connection.close()
