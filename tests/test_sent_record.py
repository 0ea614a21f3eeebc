"""The record of messages sent: at once on SQLite when it waits for nothing, else in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url, select, update

from followupd.store.db import SQLITE_BUSY_TIMEOUT_MS, Store
from followupd.store.models import FollowUp
from followupd.store.outbox.sent_record import SentRecord
from tests.conftest import sample_followup

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """The waits for SQLite's write lock are SQLite's alone."""
    opened = Store.open(make_url(f"sqlite:///{tmp_path / 'outbox.db'}"))
    opened.upgrade()
    yield opened
    opened.close()


def claimed(store: Store, worker: str = "w1", key: str = "invoice_due:F-1:nudge-1") -> int:
    """One follow-up claimed by `worker`: its id."""
    with store.session() as session:
        row = sample_followup(key, AT)
        session.add(row)
        session.flush()
        session.execute(
            update(FollowUp)
            .where(FollowUp.id == row.id)
            .values(state="sending", lease_owner=worker, lease_expires_at=AT)
        )
        return row.id


def state_of(store: Store, row_id: int) -> tuple[str, str | None]:
    with store.session() as session:
        found = session.execute(
            select(FollowUp.state, FollowUp.message_id).where(FollowUp.id == row_id)
        ).one()
        return str(found[0]), found[1]


def test_a_record_is_made_at_once_where_it_waits_for_nothing(store: Store) -> None:
    row_id = claimed(store)
    sent = SentRecord(store.engine)
    try:
        done = sent.at_once([(row_id, "<m@x>")], "w1", AT)
    finally:
        sent.close()
    if store.engine.dialect.name == "sqlite":
        assert done == {row_id}
        assert state_of(store, row_id) == ("sent", "<m@x>")
    else:  # a round trip to the server: always in a thread
        assert done is None
        assert state_of(store, row_id) == ("sending", None)


@pytest.mark.sqlite_only  # SQLite's write lock and busy timeout
def test_a_record_that_would_wait_for_the_lock_is_left_to_a_thread(
    sqlite_store: Store,
) -> None:
    """Another connection holds SQLite's write lock: `at_once` makes nothing and returns at
    once; the record in a thread waits for the lock and is made once it is free."""
    store = sqlite_store
    row_id = claimed(store)
    sent = SentRecord(store.engine)
    holder = store.engine.raw_connection()
    try:
        cursor = holder.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        assert sent.at_once([(row_id, "<m@x>")], "w1", AT) is None
        results: list[set[int]] = []
        pairs = [(row_id, "<m@x>")]
        waiting = threading.Thread(target=lambda: results.append(sent(pairs, "w1", AT)))
        waiting.start()
        waiting.join(timeout=0.2)
        assert waiting.is_alive(), "the record in a thread waits for the lock"
        holder.commit()
        waiting.join(timeout=10)
        assert results == [{row_id}]
    finally:
        holder.close()
        sent.close()
    assert state_of(store, row_id) == ("sent", "<m@x>")


@pytest.mark.sqlite_only  # SQLite's write lock and busy timeout
def test_the_connection_goes_back_to_the_pool_waiting_for_locks_again(
    sqlite_store: Store,
) -> None:
    sent = SentRecord(sqlite_store.engine)
    driver = sent.connection.dbapi_connection  # stays open in the pool
    assert driver is not None
    checkpoints = driver.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert driver.execute("PRAGMA busy_timeout").fetchone() == (0,)
    assert checkpoints == (0,), "no checkpoint (its writes and sync) on the event loop"
    sent.close()
    assert driver.execute("PRAGMA busy_timeout").fetchone() == (SQLITE_BUSY_TIMEOUT_MS,)
    assert driver.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)  # SQLite's default


def test_a_claim_taken_over_is_not_recorded_and_the_others_are(store: Store) -> None:
    taken = claimed(store, worker="w2")
    ours = claimed(store, key="invoice_due:F-2:nudge-1")
    sent = SentRecord(store.engine)
    pairs = [(taken, "<m@x>"), (ours, "<n@x>")]  # recorded together
    try:
        done = sent.at_once(pairs, "w1", AT)
        if done is None:  # PostgreSQL: in a thread
            done = sent(pairs, "w1", AT)
    finally:
        sent.close()
    assert done == {ours}
    assert state_of(store, taken) == ("sending", None)
    assert state_of(store, ours) == ("sent", "<n@x>")


def test_a_check_renews_the_leases_still_ours_and_names_them(store: Store) -> None:
    taken = claimed(store, worker="w2")
    ours = claimed(store, key="invoice_due:F-2:nudge-1")
    sent = SentRecord(store.engine)
    until = AT + timedelta(minutes=10)
    try:
        found = sent.renewed_at_once([taken, ours], "w1", until)
        if found is None:  # PostgreSQL: in a thread
            found = sent.renewed([taken, ours], "w1", until)
    finally:
        sent.close()
    assert found == {ours}
    with store.session() as session:
        leases = dict(session.execute(select(FollowUp.id, FollowUp.lease_expires_at)).all())
    assert leases[ours] == until and leases[taken] == AT, leases
