"""Opening the database: engines, sessions, and schema migrations.

SQLite is opened in WAL mode with foreign keys on, and with explicit BEGIN
IMMEDIATE so that SQLAlchemy's transactions are the database's transactions
(pysqlite's own transaction handling would otherwise defer them), each holding
the write lock from its start. PostgreSQL goes through
psycopg 3. Schema changes are Alembic migrations applied by `init` and the
daemon; other commands refuse to run on a schema that is not current.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from followupd.errors import FollowupdError, ServiceUnavailable
from followupd.store.coordination import MIGRATION, NAMESPACE

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0014"  # tests check it is alembic's head
SQLITE_BUSY_TIMEOUT_MS = 30_000
CLOSE_WAIT_SECONDS = 5.0  # at most, for connections in use in other threads to come back


class SchemaNotCurrent(FollowupdError):
    """The database is missing, or older (or newer) than this followupd."""


def make_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "connect", _postgresql_on_connect)
        return engine
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _postgresql_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """No JIT compilation: it is planned for a query whose estimated cost is high, and a
    rule's correlated subqueries look costly to the planner while they run in tens of
    milliseconds; compiling them took longer (0.36 s of a 3 s evaluation pass)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # IMMEDIATE: the write lock at the start, waited for like any lock. A
    # deferred transaction that has read, then writes after another connection
    # committed, fails at once with SQLITE_BUSY (WAL's snapshot rule), and the
    # daemon's passes run side by side. One user's database can afford to
    # take its transactions one at a time.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def describe(url: URL) -> str:
    """The URL as it may be shown: never with its password."""
    return url.render_as_string(hide_password=True)


class Store:
    """The database of one followupd: an engine and a session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: URL, *, create: bool = True) -> Store:
        """Open the database at `url`; without `create`, a missing SQLite file is an error."""
        file = url.database if url.get_backend_name() == "sqlite" else None
        if not create and file and file != ":memory:" and not Path(file).exists():
            raise SchemaNotCurrent(
                f"there is no database at {url.database} yet: run `followupd init`"
            )
        return cls(make_engine(url))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, or rolled back."""
        with self.sessions.begin() as session:
            yield session

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Close every connection, once those in use come back (`wait` seconds at most).

        A thread may still be finishing a statement when its caller stopped
        waiting for it (a daemon's pass cancelled at shutdown): its connection,
        given back to a pool already disposed of, would be left open.
        """
        checked_out = getattr(self.engine.pool, "checkedout", None)
        deadline = time.monotonic() + wait
        while checked_out is not None and checked_out() and time.monotonic() < deadline:
            time.sleep(0.01)  # the other thread's statement: milliseconds as a rule
        self.engine.dispose()

    # -- schema ----------------------------------------------------------------------
    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        with _reachable(self.engine), self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            revision: str | None = connection.scalar(
                text("SELECT version_num FROM alembic_version")
            )
            return revision

    def upgrade(self) -> tuple[str | None, str | None]:
        """Bring the schema to the newest revision; return (before, after)."""
        before = self.current_revision()
        if before == HEAD_REVISION:  # the common case: no need to load alembic
            return before, before
        from alembic import command

        with _reachable(self.engine), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # instances started together: one migrates
                connection.execute(select(func.pg_advisory_xact_lock(NAMESPACE, MIGRATION)))
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")  # reads the revision again: after the wait, none to do
        return before, self.current_revision()

    def require_current(self) -> None:
        """Refuse a schema other than HEAD_REVISION: one query, Alembic not loaded."""
        current, head = self.current_revision(), HEAD_REVISION
        if current is None:
            raise SchemaNotCurrent(
                f"the database {describe(self.engine.url)} has no followupd schema yet: "
                "run `followupd init`"
            )
        if current != head:
            raise SchemaNotCurrent(
                f"the database is at schema revision {current}, this followupd needs {head}: "
                "run `followupd init` to upgrade it"
            )


@contextmanager
def _reachable(engine: Engine) -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise ServiceUnavailable(
            f"cannot reach the database {describe(engine.url)}: {reason}"
        ) from error


def _alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
