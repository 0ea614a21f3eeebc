"""Messages accepted by their server, recorded sent in one transaction, on the driver itself.

Delivery records the messages the server accepted together, up to a
sub-batch's, before more may end (followupd.delivery.handover), so this
transaction's cost is paid in series. Through a session it costs a pool
checkout, a cache key, an ORM flush and a reset; here it is the statement
SQLAlchemy compiled once for the engine's dialect, with its parameters
converted by the columns' own types, run on one driver connection kept for a
delivery pass: a BEGIN (the IMMEDIATE one on SQLite, as in
followupd.store.db), the UPDATE of each row (its rowcount says whether it
was still ours), a COMMIT.

On SQLite the record is first tried on the caller's thread (`at_once`: the
event loop's), without waiting for the write lock: a local statement of tens
of microseconds, where a hop to a thread and back costs about as much again,
and more in the switches between the two threads. When another connection
holds the lock, it is made in a thread (`__call__`), waiting for the lock as
every statement does. A statement on PostgreSQL is a round trip: always in a
thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
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
_NO_WAIT = 0  # SQLite's busy timeout for a record on the event loop's thread: it never waits


class SentRecord:
    """Records rows sent, a group at a time, on a driver connection of `engine` kept until `close`.

    Not for two records at once (delivery's handover runs one at a time); `close` may come
    from any thread, at any time, and never waits: a record under way closes the
    connection as it ends. On SQLite the connection waits for no lock (`at_once`) but
    in `__call__`, and gets its wait back as it goes back to the pool.
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
        sqlite = dialect.name == "sqlite"
        self.begin = "BEGIN IMMEDIATE" if sqlite else None
        # the worker and the time of the last record, and them as the driver takes them
        self.pass_given: tuple[tuple[str, datetime] | None, Any, Any] = (None, None, None)
        self.guard = threading.Lock()  # over the two flags below, never held while the driver runs
        self.busy = False  # a record under way
        self.closing = False
        self.connection = engine.raw_connection()
        self.lock_wait: int | None = None  # SQLite's busy timeout (ms), given back in __call__
        self.checkpoints: int | None = None  # SQLite's wal_autocheckpoint, given back in the pool
        if sqlite:
            try:
                self.lock_wait = int(self._pragma("busy_timeout"))
                self._pragma(f"busy_timeout = {_NO_WAIT}")
                # the WAL folded into the database (written, synced) by the other
                # connections' commits, in threads: never by a record on the event loop
                self.checkpoints = int(self._pragma("wal_autocheckpoint"))
                self._pragma("wal_autocheckpoint = 0")
            except BaseException:
                self.connection.invalidate()  # not left out of the pool, nor back in it half set
                self.connection.close()
                raise

    def _processed(self, name: str, value: Any) -> Any:
        if isinstance(value, Enum):  # a state: its word, whatever the driver makes of an enum
            value = value.value
        processor = self.processors.get(name)
        return processor(value) if processor is not None and value is not None else value

    def _pragma(self, setting: str) -> Any:
        cursor = self.connection.cursor()
        try:
            cursor.execute(f"PRAGMA {setting}")
            found = cursor.fetchone()
        finally:
            cursor.close()
        return found[0] if found else None

    def __call__(self, sent: Sequence[tuple[int, str]], worker: str, at: datetime) -> set[int]:
        """Rows (id, the Message-ID it went with) recorded sent, in one transaction, where
        `worker` still holds their lease: the ids recorded (in a thread: it may wait for the
        database)."""
        found = self._record(self._params(sent, worker, at), wait=True)
        assert found is not None  # it waited
        return {row_id for (row_id, _), done in zip(sent, found, strict=True) if done}

    def at_once(
        self, sent: Sequence[tuple[int, str]], worker: str, at: datetime
    ) -> set[int] | None:
        """The same record if it waits for nothing (on the event loop's thread); None when it
        would wait, and on PostgreSQL: then it is for `__call__`, in a thread."""
        if self.lock_wait is None:
            return None
        found = self._record(self._params(sent, worker, at), wait=False)
        if found is None:
            return None
        return {row_id for (row_id, _), done in zip(sent, found, strict=True) if done}

    def _params(self, sent: Sequence[tuple[int, str]], worker: str, at: datetime) -> list[Any]:
        if self.pass_given[0] != (worker, at):  # the same for every message of a pass
            self.pass_given = (
                (worker, at),
                self._processed("worker", worker),
                self._processed("at", at),
            )
        _, processed_worker, processed_at = self.pass_given
        given = self.fixed | {"worker": processed_worker, "at": processed_at}
        every: list[Any] = []
        for row_id, message_id in sent:
            values = given | {
                "row_id": self._processed("row_id", row_id),
                "sent_with": self._processed("sent_with", message_id),
            }
            every.append(values if self.names is None else tuple(values[n] for n in self.names))
        return every

    def _record(self, params: list[Any], wait: bool) -> list[bool] | None:
        with self.guard:
            if self.closing:
                raise RuntimeError("the record of sent messages is closed")
            self.busy = True
        try:
            if not wait or self.lock_wait is None:
                return self._run(params, wait)
            self._pragma(f"busy_timeout = {self.lock_wait}")
            try:
                return self._run(params, wait)
            finally:
                self._pragma(f"busy_timeout = {_NO_WAIT}")
        finally:
            with self.guard:
                self.busy = False
                closing = self.closing
            if closing:  # closed while this record ran: its connection ends now
                self._give_back()

    def _run(self, params: list[Any], wait: bool) -> list[bool] | None:
        """The record, each row's statement in one transaction: whether each row was ours;
        None, and nothing made, if it may not `wait` and SQLite is busy (its write lock
        taken)."""
        cursor = self.connection.cursor()
        try:
            if self.begin is not None:
                cursor.execute(self.begin)
            done = []
            for each in params:
                cursor.execute(self.sql, each)
                done.append(cursor.rowcount == 1)
            self.connection.commit()
        except sqlite3.OperationalError as error:
            self.connection.rollback()
            if not wait and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return None
            raise
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
        self._give_back()

    def _give_back(self) -> None:
        """The connection back to the pool, with SQLite's wait for locks and its checkpoints as
        they were."""
        if self.lock_wait is not None:
            try:
                self._pragma(f"busy_timeout = {self.lock_wait}")
                self._pragma(f"wal_autocheckpoint = {self.checkpoints}")
            except Exception:  # not fit for the pool any more: closed for good
                self.connection.invalidate()
        self.connection.close()
