"""Shared fixtures: a config, and stores on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import URL, Connection, make_url

from followupd.cli.main import main
from followupd.config.load import DATABASE_URL_VARIABLE
from followupd.store.db import Store, _alembic_config
from followupd.store.models import Base, FollowUp
from tests.davserver import PASSWORD, PASSWORD_VARIABLE, DavServer, dav_server
from tests.imapserver import ImapServer, throwaway_dovecot
from tests.imapserver_cyrus import CyrusServer, throwaway_cyrus
from tests.pgserver import throwaway_postgres

# each reminder by email on its own: most tests follow one reminder; the daily digest,
# the default, has tests of its own (tests/test_digest_delivery.py)
MINIMAL_CONFIG = """\
[owner]
name = "Claire Martin"
email = "claire@cabinet.example"
phone = "+33 6 00 00 00 00"
reminders_by_email = "each"
"""
# a [rules.invoice_due] table for the tests written before client nudges were grouped by
# contact, whose clients have several invoices: one email per invoice, as then
ONE_EMAIL_PER_INVOICE = "[rules.invoice_due]\ngroup_by_client = false\n"
SQLITE_UNDER_HOME = Path(".local/state/followupd/followupd.db")  # the default database
_database_numbers = itertools.count()


def sample_followup(key: str, due_at: datetime) -> FollowUp:
    """A client email of invoice_due, as evaluation records it."""
    return FollowUp(
        key=key,
        rule="invoice_due",
        step="nudge-1",
        subject_key="F-1",
        concern=key,
        audience="client",
        channel="email",
        recipient="a@b.example",
        language="fr",
        subject="Facture F-1",
        due_at=due_at,
        created_at=due_at,
        updated_at=due_at,
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole run (loopback only)."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[ImapServer]:
    """One throwaway Dovecot for the whole run (loopback only); `new_user()` isolates a test."""
    with throwaway_dovecot() as server:
        yield server


@pytest.fixture
def imap_server(dovecot_server: ImapServer) -> ImapServer:
    """The IMAP server of a test written for one: Dovecot. A module whose tests must run
    on every implementation overrides it with `imap_server_any`."""
    return dovecot_server


@pytest.fixture(scope="session")
def cyrus_server() -> Iterator[CyrusServer]:
    """One throwaway Cyrus IMAP for the whole run, started by the first test that asks."""
    with throwaway_cyrus() as server:
        yield server


IMAP_SERVERS = ["dovecot", "cyrus"]  # every real IMAP implementation the suite runs


@pytest.fixture(scope="session", params=IMAP_SERVERS)
def imap_server_any(request: pytest.FixtureRequest) -> ImapServer:
    """Each IMAP server in turn (the test runs once per implementation), same interface.

    The same instances as `dovecot_server` and `cyrus_server`, one of each per run.
    """
    fixture = {"dovecot": "dovecot_server", "cyrus": "cyrus_server"}[request.param]
    server: ImapServer = request.getfixturevalue(fixture)
    return server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used an IMAP server shows the tail of that server's log."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    servers = {id(server): server for server in funcargs.values() if isinstance(server, ImapServer)}
    for server in servers.values() if report.failed else ():
        kind = "Cyrus" if isinstance(server, CyrusServer) else "Dovecot"
        report.sections.append((f"{kind}'s log, last lines", server.log_tail()))
    return report


def fresh_postgres_database(server_url: str) -> URL:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"followupd_{os.getpid()}_{next(_database_numbers)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name)


def pytest_configure(config: pytest.Config) -> None:
    """Forget the shell's followupd settings: a test must never reach the user's database."""
    config.addinivalue_line(
        "markers", "one_engine: the database engine is irrelevant to it: not run on PostgreSQL"
    )
    for name in ("FOLLOWUPD_CONFIG", DATABASE_URL_VARIABLE):
        os.environ.pop(name, None)


ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """This test's database, empty, on each engine; the command line's too (see `home`).

    The SQLite file is where the command line puts it by default for `home`.
    """
    if request.param == "sqlite":
        return make_url(f"sqlite:///{tmp_path / 'home' / SQLITE_UNDER_HOME}")
    return fresh_postgres_database(request.getfixturevalue("postgres_url"))


def schema_revision(url: URL) -> str | None:
    """The schema revision of the database at `url` (None: no followupd schema)."""
    store = Store.open(url)
    try:
        return store.current_revision()
    finally:
        store.close()


def rows_digest(connection: Connection) -> str:
    """A digest of every row of every table: equal digests, same content (either engine)."""
    digest = hashlib.sha256()
    for table in Base.metadata.sorted_tables:
        digest.update(table.name.encode())
        for row in sorted(repr(tuple(row)) for row in connection.execute(select(table))):
            digest.update(row.encode())
    return digest.hexdigest()


def database_digest(url: URL) -> str:
    """`rows_digest` of the database at `url`."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return rows_digest(connection)
    finally:
        engine.dispose()


@pytest.fixture
def store(database_url: URL) -> Iterator[Store]:
    """A store with the current schema, on each engine."""
    opened = Store.open(database_url)
    opened.upgrade()
    yield opened
    opened.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: URL) -> Path:
    """An empty HOME and working directory, and the test's database for every command.

    On PostgreSQL, ``$FOLLOWUPD_DATABASE_URL`` points the command line (and the
    daemons the test starts) at it, since the test's configs name no database.
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    for name in ("FOLLOWUPD_CONFIG", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    if database_url.get_backend_name() == "postgresql":
        monkeypatch.setenv(DATABASE_URL_VARIABLE, database_url.render_as_string(False))
    else:
        monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    return home


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests about SQLite itself (its file, its WAL), or about no engine, run on SQLite only.

    Every test on PostgreSQL, and every one on Xandikos, is `slow`: the quick loop
    runs on the first engine and CalDAV server (SQLite, Radicale), CI on both.
    """
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        on_postgres = _engine_of(item) == "postgresql"
        one = item.get_closest_marker("sqlite_only") or item.get_closest_marker("one_engine")
        (dropped if on_postgres and one else kept).append(item)
        if item.get_closest_marker("postgresql") or _server_of(item) == "xandikos":
            item.add_marker(pytest.mark.slow)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _engine_of(item: pytest.Item | pytest.Function | object) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("database_url") if callspec is not None else None


def _server_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("dav_kind") if callspec is not None else None


@pytest.fixture(autouse=True)
def _every_database_on_each_engine(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that made a database without running on each engine.

    This is what keeps "the whole suite runs on SQLite and on PostgreSQL"
    true as tests are added: a test that writes a SQLite file must take the
    `database_url`, `store` or `home` fixture (or say it is `sqlite_only`),
    and its PostgreSQL run must not have fallen back to a SQLite file.
    """
    if "tmp_path" not in request.fixturenames or request.node.get_closest_marker("sqlite_only"):
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")  # now: it must outlive this check
    yield
    made = sorted(str(path) for path in tmp_path.rglob("*.db"))
    engine = _engine_of(request.node)
    if made and engine is None:
        pytest.fail(
            f"made {made[0]} but runs on SQLite only: take `store`, `home` or `database_url`"
        )
    if made and engine == "postgresql":
        pytest.fail(f"the PostgreSQL run wrote SQLite file {made[0]}")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


class RunCli(Protocol):
    def __call__(self, *args: str | Path) -> Result: ...


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run the command line in-process: ``cli("missions", "--config", path)``."""

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def dav_kind() -> str:
    """Which CalDAV server `dav` is: Radicale, unless a module or test parametrizes this.

    ``@pytest.mark.parametrize("dav_kind", SERVERS)`` on a test, or a fixture of
    this name with ``params=SERVERS`` in a module, runs it against each server.
    """
    return "radicale"


@pytest.fixture
def dav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dav_kind: str) -> Iterator[DavServer]:
    """A real CalDAV server on a free loopback port (see `dav_kind`); its password in the env."""
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with dav_server(tmp_path / dav_kind, dav_kind) as server:
        yield server


def to_revision(store: Store, revision: str, *, down: bool) -> None:
    """`store`'s schema moved to `revision`, down or up, by alembic's own commands."""
    config = _alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
