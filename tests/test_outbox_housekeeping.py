"""The outbox as the daemon keeps it: tidying, the next delivery time, the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from followupd.daemon.metrics import Metrics
from followupd.domain.states import FollowUpState
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.outbox import housekeeping
from tests.conftest import sample_followup

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
RETENTION = timedelta(days=30)


def add(store: Store, key: str, state: str, due: datetime, **columns: object) -> None:
    row = sample_followup(key, due)
    row.state = FollowUpState(state)
    for name, value in columns.items():
        setattr(row, name, value)
    with store.session() as session:
        session.add(row)


def states(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.session() as session:
        query = select(FollowUp.key, FollowUp.state, FollowUp.lease_owner)
        return {key: (state, owner) for key, state, owner in session.execute(query)}


def test_tidy_hands_back_expired_leases_and_deletes_only_old_finished_rows(store: Store) -> None:
    old, recent = NOW - RETENTION - timedelta(days=1), NOW - RETENTION + timedelta(days=1)
    add(store, "old-sent", "sent", old, updated_at=old)
    add(store, "old-dead", "dead", old, updated_at=old)
    add(store, "recent-sent", "sent", recent, updated_at=recent)
    add(store, "old-pending", "pending", old, updated_at=old)
    add(store, "lost-lease", "sending", old, lease_owner="w", lease_expires_at=NOW - timedelta(1))
    add(store, "held-lease", "sending", old, lease_owner="w", lease_expires_at=NOW + timedelta(1))
    with store.session() as session:
        housekeeping.tidy(session, NOW, RETENTION)
    assert states(store) == {
        "recent-sent": ("sent", None),
        "old-pending": ("pending", None),
        "lost-lease": ("pending", None),
        "held-lease": ("sending", "w"),
    }


def test_the_next_delivery_is_the_soonest_due_retry_or_lease_end(store: Store) -> None:
    with store.session() as session:
        assert housekeeping.next_deliverable(session) is None
    add(store, "sent", "sent", NOW - timedelta(hours=5))
    add(store, "retry", "pending", NOW - timedelta(hours=1), next_attempt_at=NOW + timedelta(2))
    with store.session() as session:
        assert housekeeping.next_deliverable(session) == NOW + timedelta(days=2), "not its due"
    add(store, "later", "pending", NOW + timedelta(hours=3))
    with store.session() as session:
        assert housekeeping.next_deliverable(session) == NOW + timedelta(hours=3)
    add(store, "claimed", "sending", NOW, lease_expires_at=NOW + timedelta(minutes=5))
    with store.session() as session:
        assert housekeeping.next_deliverable(session) == NOW + timedelta(minutes=5)


def test_counts_by_state_by_rule_and_sent_since(store: Store) -> None:
    add(store, "a", "sent", NOW, sent_at=NOW - timedelta(hours=2))
    add(store, "b", "sent", NOW, sent_at=NOW - timedelta(days=2))
    add(store, "c", "pending", NOW, rule="deposit_due")
    add(store, "d", "pending", NOW)
    with store.session() as session:
        assert housekeeping.count_by_state(session) == {"sent": 2, "pending": 2}
        assert housekeeping.count_by_state_and_rule(session) == {
            ("sent", "invoice_due"): 2,
            ("pending", "invoice_due"): 1,
            ("pending", "deposit_due"): 1,
        }
        assert housekeeping.sent_since(session, NOW - timedelta(days=1)) == 1
        assert housekeeping.sent_since(session, NOW) == 0


def test_metrics_show_the_counts_by_state_and_rule(store: Store) -> None:
    add(store, "a", "sent", NOW, sent_at=NOW)
    add(store, "b", "pending", NOW, rule="deposit_due")
    shown = Metrics(lambda: store, lambda: NOW.date()).render().decode()
    assert 'followupd_followups{rule="invoice_due",state="sent"} 1.0' in shown
    assert 'followupd_followups{rule="deposit_due",state="pending"} 1.0' in shown
    assert 'state="failed"' not in shown
