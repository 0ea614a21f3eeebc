"""Messages accepted by their server, recorded sent in one transaction, on the driver itself.

Delivery records the messages the server accepted together, up to the
handover's window (one: `deliverer.UNRECORDED`), before more may end
(followupd.delivery.handover), so this transaction's cost is paid in series.
Through a session it costs a pool checkout, a cache key, an ORM flush and a
reset; here it is the statement
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

The check of a sub-batch's claims right before it goes (`renewed`: which are
still ours, their leases renewed) runs the same way on the same connection,
one at a time with the records.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, update
from sqlalchemy.engine import Dialect, Engine

from followupd.domain.states import FollowUpState
from followupd.store.models import FollowUp
from followupd.store.outbox.claim import SENT_VALUES

_TABLE = cast(Table, FollowUp.__table__)
_IF_OURS = (
    _TABLE.c.id == bindparam("row_id"),
    _TABLE.c.state == FollowUpState.SENDING,
    _TABLE.c.lease_owner == bindparam("worker"),
)
_SENT_IF_OURS = update(_TABLE).where(*_IF_OURS).values(SENT_VALUES)
_RENEWED_IF_OURS = update(_TABLE).where(*_IF_OURS).values(lease_expires_at=bindparam("until"))
_NO_WAIT = 0  # SQLite's busy timeout for a record on the event loop's thread: it never waits


class _Compiled:
    """`statement` compiled once for `dialect`, its parameters `given` at each run converted
    by their columns' types, the others fixed."""

    def __init__(self, statement: Update, dialect: Dialect, given: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: list[str] | None = (
            list(compiled.positiontup or []) if dialect.positional else None
        )
        self.processors: dict[str, Callable[[Any], Any] | None] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        fixed = compiled.construct_params(dict.fromkeys(given))
        self.fixed = {name: self.processed(name, value) for name, value in fixed.items()
                      if name not in given}  # fmt: skip

    def processed(self, name: str, value: Any) -> Any:
        if isinstance(value, Enum):  # a state: its word, whatever the driver makes of an enum
            value = value.value
        processor = self.processors.get(name)
        return processor(value) if processor is not None and value is not None else value

    def params(self, common: dict[str, Any], each: Sequence[dict[str, Any]]) -> list[Any]:
        """The driver's parameters for one run a row: `common` to all, `each` its own."""
        given = self.fixed | {name: self.processed(name, value) for name, value in common.items()}
        every: list[Any] = []
        for own in each:
            values = given | {name: self.processed(name, value) for name, value in own.items()}
            every.append(values if self.names is None else tuple(values[n] for n in self.names))
        return every


class SentRecord:
    """Records rows sent, a group at a time, on a driver connection of `engine` kept until
    `close`; and checks claims (`renewed`) on it.

    One statement group at a time: one waits for the other in a thread, and one on the event
    loop's thread (`at_once`) gives None rather than wait. `close` may come from any thread,
    at any time, and never waits: a record under way closes the connection as it ends. On
    SQLite the connection waits for no lock (`at_once`) but in a thread, and gets its wait
    back as it goes back to the pool.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self.sent = _Compiled(_SENT_IF_OURS, dialect, ("row_id", "worker", "at", "sent_with"))
        self.renew = _Compiled(_RENEWED_IF_OURS, dialect, ("row_id", "worker", "until"))
        sqlite = dialect.name == "sqlite"
        self.begin = "BEGIN IMMEDIATE" if sqlite else None
        self.running = threading.Lock()  # held while the driver runs statements
        self.guard = threading.Lock()  # over the two fields below, never held while the driver runs
        self.users = 0  # statements under way or waiting for `running`
        self.closing = False
        self.connection = engine.raw_connection()
        self.lock_wait: int | None = None  # SQLite's busy timeout (ms), given back in a thread
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
        found = self._sent(sent, worker, at, wait=True)
        assert found is not None  # it waited
        return found

    def at_once(
        self, sent: Sequence[tuple[int, str]], worker: str, at: datetime
    ) -> set[int] | None:
        """The same record if it waits for nothing (on the event loop's thread); None when it
        would wait, and on PostgreSQL: then it is for `__call__`, in a thread."""
        return None if self.lock_wait is None else self._sent(sent, worker, at, wait=False)

    def _sent(
        self, sent: Sequence[tuple[int, str]], worker: str, at: datetime, *, wait: bool
    ) -> set[int] | None:
        each = [{"row_id": row_id, "sent_with": message_id} for row_id, message_id in sent]
        params = self.sent.params({"worker": worker, "at": at}, each)
        found = self._record(self.sent.sql, params, wait)
        if found is None:
            return None
        return {row_id for (row_id, _), done in zip(sent, found, strict=True) if done}

    def renewed(self, row_ids: Sequence[int], worker: str, until: datetime) -> set[int]:
        """Which of rows `row_ids` `worker` still holds, their leases renewed until `until`,
        in one transaction (in a thread: it may wait for the database)."""
        found = self._renewed(row_ids, worker, until, wait=True)
        assert found is not None  # it waited
        return found

    def renewed_at_once(
        self, row_ids: Sequence[int], worker: str, until: datetime
    ) -> set[int] | None:
        """The same check if it waits for nothing (on the event loop's thread); None when it
        would wait, and on PostgreSQL: then it is for `renewed`, in a thread."""
        if self.lock_wait is None:
            return None
        return self._renewed(row_ids, worker, until, wait=False)

    def _renewed(
        self, row_ids: Sequence[int], worker: str, until: datetime, *, wait: bool
    ) -> set[int] | None:
        params = self.renew.params({"worker": worker, "until": until},
                                   [{"row_id": row_id} for row_id in row_ids])  # fmt: skip
        found = self._record(self.renew.sql, params, wait)
        if found is None:
            return None
        return {row_id for row_id, done in zip(row_ids, found, strict=True) if done}

    def _record(self, sql: str, params: list[Any], wait: bool) -> list[bool] | None:
        with self.guard:
            if self.closing:
                raise RuntimeError("the record of sent messages is closed")
            self.users += 1
        try:
            if not self.running.acquire(blocking=wait):
                return None  # another statement runs (in a thread): this one waits there
            try:
                if not wait or self.lock_wait is None:
                    return self._run(sql, params, wait)
                self._pragma(f"busy_timeout = {self.lock_wait}")
                try:
                    return self._run(sql, params, wait)
                finally:
                    self._pragma(f"busy_timeout = {_NO_WAIT}")
            finally:
                self.running.release()
        finally:
            with self.guard:
                self.users -= 1
                last = self.closing and self.users == 0
            if last:  # closed while this record ran: its connection ends now
                self._give_back()

    def _run(self, sql: str, params: list[Any], wait: bool) -> list[bool] | None:
        """`sql` run for each of `params`, in one transaction: whether each changed its row;
        None, and nothing made, if it may not `wait` and SQLite is busy (its write lock
        taken)."""
        cursor = self.connection.cursor()
        try:
            if self.begin is not None:
                cursor.execute(self.begin)
            done = []
            for each in params:
                cursor.execute(sql, each)
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
        """Return the connection to the pool, now or once the statements under way end."""
        with self.guard:
            if self.closing:
                return
            self.closing = True
            if self.users:
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
