"""One daemon among several on one PostgreSQL database: who leads, and word of new work.

Every instance evaluates and delivers (claims never overlap, see
`followupd.delivery`). Work that must run once per database, the CalDAV sync
and housekeeping, runs only on the leader: the instance holding a
session-level advisory lock on its coordination connection. When the leader
dies, PostgreSQL ends its session and frees the lock, and the next instance
to try (every `heartbeat` seconds) takes it over.

The same connection LISTENs on the ``followupd`` channel, so that an
instance hears at once of follow-ups another one recorded or released, and
of data a terminal command changed. When the connection drops, the instance
stops leading, keeps delivering on its timers (the polling fallback), and
reconnects with a growing delay.

On SQLite there is one instance by construction: `Solo` always leads and
hears nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine

from followupd.store.coordination import CHANNEL, LEADER, NAMESPACE, is_postgres

log = logging.getLogger("followupd")

HEARTBEAT_SECONDS = 5.0
RECONNECT_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# A leader whose machine vanished without closing its connection must lose
# the lock in seconds, not after the kernel's two hours: the server probes
# this session's socket (a dead process is seen at once anyway). The client
# probes too, to notice a vanished server.
SERVER_KEEPALIVES = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5,
                     "tcp_keepalives_count": 3}  # fmt: skip
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3, "application_name": "followupd coordination"}  # fmt: skip


class Coordination(Protocol):
    @property
    def is_leader(self) -> bool: ...

    async def run(self) -> None: ...


class Solo:
    """The only instance: always the leader, nobody to hear from."""

    is_leader = True

    async def run(self) -> None:
        return None


class Cluster:
    """An instance among others: leadership and notices over one PostgreSQL connection."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_leadership: Callable[[bool], None],
        on_notice: Callable[[str], None],
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.engine = engine
        self.on_leadership = on_leadership
        self.on_notice = on_notice
        self.heartbeat = heartbeat
        self._leading = False
        self._failures = 0  # connections lost in a row: how long to wait before the next

    @property
    def is_leader(self) -> bool:
        return self._leading

    async def run(self) -> None:
        """Stay connected, listening, and trying to lead, until cancelled."""
        import psycopg

        self._failures = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                self._lead(False)
                raise
            except Exception as error:
                self._lead(False)
                delay = RECONNECT_SECONDS[min(self._failures, len(RECONNECT_SECONDS) - 1)]
                self._failures += 1
                if isinstance(error, psycopg.OperationalError):  # the server, the network
                    log.warning(
                        "lost the coordination connection (%s); timers only, again in %.0f s",
                        _first_line(error),
                        delay,
                    )
                else:  # not a connection problem: show all of it
                    log.exception("coordination failed; timers only, trying again in %.0f s", delay)
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        import psycopg

        args, params = self.engine.dialect.create_connect_args(self.engine.url)
        connection: Any = await psycopg.AsyncConnection.connect(
            *args, **{**params, **KEEPALIVES}, autocommit=True
        )
        async with connection:
            for setting, value in SERVER_KEEPALIVES.items():
                await connection.execute(f"SET {setting} = {value}")
            await connection.execute(f"LISTEN {CHANNEL}")
            self._failures = 0  # connected again: the next loss starts the delays over
            while True:
                if not self._leading:
                    cursor = await connection.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, LEADER)
                    )
                    row = await cursor.fetchone()
                    self._lead(bool(row and row[0]))
                async for notice in connection.notifies(timeout=self.heartbeat):
                    self.on_notice(notice.payload)

    def _lead(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            self.on_leadership(leading)


def coordination_for(
    engine: Engine,
    *,
    on_leadership: Callable[[bool], None],
    on_notice: Callable[[str], None],
) -> Coordination:
    if is_postgres(engine):
        return Cluster(engine, on_leadership=on_leadership, on_notice=on_notice)
    return Solo()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
