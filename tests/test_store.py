"""The store on both engines: schema, migrations, time zones, constraints."""

from __future__ import annotations

import gc
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, StatementError

from followupd.store.db import HEAD_REVISION, SchemaNotCurrent, Store
from followupd.store.models import Base, Client, FollowUp, Mission
from tests.conftest import fresh_postgres_database, sample_followup

PARIS_WINTER = timezone(timedelta(hours=1))


def test_upgrade_creates_every_table_and_is_idempotent(database_url: URL) -> None:
    store = Store.open(database_url)
    try:
        with pytest.raises(SchemaNotCurrent, match="followupd init"):
            store.require_current()
        before, after = store.upgrade()
        assert before is None
        assert after == store.head_revision()
        assert store.upgrade() == (after, after)
        store.require_current()
        tables = set(inspect(store.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        store.close()


def test_migrations_match_the_models(store: Store) -> None:
    """A model change without its migration would fail here."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_instants_keep_their_moment_and_come_back_in_utc(store: Store) -> None:
    local = datetime(2026, 11, 30, 9, 0, tzinfo=PARIS_WINTER)
    with store.session() as session:
        session.add(sample_followup("k1", local))
    with store.session() as session:
        due = session.scalar(select(FollowUp.due_at).where(FollowUp.key == "k1"))
    assert due == local
    assert due is not None and due.utcoffset() == timedelta(0)
    assert due.hour == 8


def test_naive_instants_are_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.session() as session:
        session.add(sample_followup("k1", datetime(2026, 11, 30, 9, 0)))


def test_followup_keys_are_unique(store: Store) -> None:
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with store.session() as session:
        session.add(sample_followup("invoice_due:F-1:nudge-1", now))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(sample_followup("invoice_due:F-1:nudge-1", now + timedelta(days=1)))
    with store.session() as session:
        assert session.scalar(select(FollowUp.due_at)) == now


def test_check_constraints_refuse_unknown_states(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session() as session:
        client = Client(key="acme", name="ACME")
        session.add(client)
        session.flush()
        session.add(
            Mission(
                key="m",
                client_id=client.id,
                title="t",
                start=date(2026, 1, 1),
                status="finished",
            )
        )


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Mission(key="m", client_id=999, title="t", start=date(2026, 1, 1)))


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(make_url(f"sqlite:///{tmp_path / 'x.db'}"))
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        store.close()


def test_a_transaction_that_fails_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(Client(key="acme", name="ACME"))
        session.flush()
        raise RuntimeError("boom")
    with store.session() as session:
        assert session.scalars(select(Client)).all() == []


def test_upgrading_a_first_schema_database_keeps_its_followups(database_url: URL) -> None:
    from alembic import command

    from followupd.store.db import _alembic_config

    store = Store.open(database_url)
    try:
        with store.engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        stamp = now if store.engine.dialect.name == "postgresql" else now.replace(tzinfo=None)
        with store.engine.begin() as connection:  # a row as the first schema had them
            connection.execute(
                text(
                    "INSERT INTO followups (key, rule, step, subject_key, audience, channel,"
                    " language, subject, due_at, late, state, attempts, created_at, updated_at)"
                    " VALUES ('invoice_due:F-1:nudge-1', 'invoice_due', 'nudge-1', 'F-1',"
                    " 'client', 'email', 'fr', 'Facture F-1', :at, false, 'pending', 0,"
                    " :at, :at)"
                ),
                {"at": stamp},
            )
        before, after = store.upgrade()
        assert (before, after) == ("0001", store.head_revision())
        with store.session() as session:
            kept = session.scalars(select(FollowUp)).one()
        assert kept.key == "invoice_due:F-1:nudge-1"
        assert kept.body == ""
        assert kept.due_at == now
    finally:
        store.close()


def test_the_head_revision_the_daemon_knows_is_alembics() -> None:
    """Store.upgrade skips Alembic (10 MB of imports) when the schema is at HEAD_REVISION."""
    assert Store.open(make_url("sqlite://")).head_revision() == HEAD_REVISION


def test_closing_waits_for_a_connection_still_in_use_in_another_thread(
    database_url: URL,
) -> None:
    """A daemon's pass cancelled at shutdown may leave a thread finishing a statement: closing
    the store waits for its connection to come back, so none is left open (a ResourceWarning,
    an error here, when the pool is gone first)."""
    store = Store.open(database_url)
    store.upgrade()
    inside, release, done = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        with store.session() as session:
            session.execute(text("SELECT 1"))  # its connection checked out
            inside.set()
            release.wait(timeout=60)
            session.execute(text("SELECT 1"))
            done.set()  # the connection goes back as the block ends

    worker = threading.Thread(target=work)
    worker.start()
    assert inside.wait(timeout=60)
    threading.Timer(0.2, release.set).start()  # the statement ends while close waits
    store.close()
    assert done.is_set(), "close returned once the thread gave its connection back"
    worker.join(timeout=60)
    gc.collect()  # a connection left open would warn here


@pytest.mark.postgresql
def test_postgresql_connections_plan_without_jit(postgres_url: str) -> None:
    """A rule's correlated subqueries look costly to the planner: JIT compiled them for
    longer than they ran. Every connection of a PostgreSQL store has it off."""
    store = Store.open(fresh_postgres_database(postgres_url))
    try:
        with store.engine.connect() as first, store.engine.connect() as second:
            assert first.scalar(text("SHOW jit")) == "off"
            assert second.scalar(text("SHOW jit")) == "off"
    finally:
        store.close()
