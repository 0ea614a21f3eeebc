"""The outbox's reads carry what their Protocols say: every column, of the declared type.

The engine, delivery and channels are typed against the Protocols of
`followupd.store.outbox.rows`, while the reads hand them SQLAlchemy rows: a
column dropped from a read, or a Protocol that says more than the read gives,
fails here (mypy cannot see through a row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from followupd.channels.calendar import ical
from followupd.domain.states import Audience, CalendarState, Channel, FollowUpState
from followupd.store import live_items
from followupd.store.db import Store
from followupd.store.models import Client, Contact, FollowUp, LiveItem, Mission
from followupd.store.outbox import claim, digests, lookup, recording
from followupd.store.outbox.rows import FollowUpRow, PendingRow, PeriodRow
from tests.conftest import sample_followup

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def columns_of(protocol: type) -> dict[str, Any]:
    """The properties `protocol` declares (its bases' included), with their types."""
    return {
        name: get_type_hints(member.fget)["return"]
        for base in reversed(protocol.__mro__)
        for name, member in vars(base).items()
        if isinstance(member, property) and member.fget is not None
    }


def assert_carries(rows: Sequence[object], protocol: type) -> None:
    assert rows, "a read to check gave no row"
    for row in rows:
        for name, kind in columns_of(protocol).items():
            assert hasattr(row, name), f"{type(row).__name__} has no {name} ({protocol.__name__})"
            value = getattr(row, name)
            assert isinstance(value, kind), f"{name} is {value!r}, not {kind}"


@pytest.fixture
def outbox(store: Store) -> Store:
    """A pending client email, a sent calendar task still open, with a contact."""
    with store.session() as session:
        client = Client(key="acme", name="ACME")
        contact = Contact(key="acme-jo", client=client, name="Jo", phone="+33 1 00 00 00 00")
        mission = Mission(key="m1", client=client, contact=contact, title="Audit",
                          status="active", start=NOW.date())  # fmt: skip
        session.add_all([client, contact, mission])
        session.flush()
        email = sample_followup("email", NOW - timedelta(hours=1))
        email.mission_id, email.thread_key, email.body = mission.id, "thread", "Bonjour"
        task = sample_followup("task", NOW - timedelta(days=1))
        task.audience, task.channel = Audience.OWNER, Channel.CALENDAR
        task.recipient, task.owner = None, "me"
        task.rule, task.step, task.contact_id = "escalate_by_phone", "call", contact.id
        task.state, task.sent_at = FollowUpState.SENT, NOW
        session.add_all([email, task])
        session.flush()
        live_items.raised(session, task, "/cal/task.ics", NOW)
    return store


def read(store: Store, reading: Callable[[Session], Sequence[object]]) -> Sequence[object]:
    with store.session() as session:
        return reading(session)


def test_a_row_recorded_or_claimed_has_every_column(outbox: Store) -> None:
    assert_carries(read(outbox, lambda s: recording.load(s, ["email", "task"])), FollowUpRow)
    with outbox.session() as session:
        claimed = claim.claim(session, NOW, "w", ["email"], batch=10, lease=timedelta(minutes=5))
    assert_carries(claimed, FollowUpRow)
    assert [(row.key, row.state, row.lease_owner) for row in claimed] == [("email", "sending", "w")]


def test_the_rows_a_rule_is_asked_about_have_its_columns(outbox: Store) -> None:
    assert_carries(read(outbox, recording.pending), PendingRow)
    assert_carries(read(outbox, lambda s: [row for _, row in live_items.open_items(s)]), PendingRow)


def test_the_feed_reads_every_column_of_an_item(outbox: Store) -> None:
    """The feed builds from light rows of `live_items`: each column there, as the ORM has it."""
    with outbox.session() as session:
        (orm,) = session.scalars(select(LiveItem))
        ((row, name, phone),) = live_items.feed_items(session, NOW - timedelta(days=30))
    assert {column.key: getattr(row, column.key) for column in LiveItem.__table__.columns} == {
        column.key: getattr(orm, column.key) for column in LiveItem.__table__.columns
    }
    assert (row.state, name, phone) == (CalendarState.OPEN, "Jo", "+33 1 00 00 00 00")
    built = ical.item_of(row, ZoneInfo("Europe/Paris"), name, phone)
    assert (built.uid, built.phone_uri) == ("task@followupd", "tel:+33100000000")


def test_the_feed_reads_of_a_period_to_come_what_its_item_shows(outbox: Store) -> None:
    """A period still to deliver is shown as the item it will be, from a third of its columns."""
    with outbox.session() as session:
        coming = sample_followup("coming", NOW + timedelta(days=1))
        coming.audience, coming.channel, coming.recipient = Audience.OWNER, Channel.CALENDAR, None
        coming.body, coming.contact_id = "Appeler Jo", session.scalar(select(Contact.id))
        session.add(coming)
    with outbox.session() as session:
        ((row, name, phone),) = live_items.previews(session)
    assert_carries([row], PeriodRow)
    raised = live_items.as_raised(None, row, NOW)
    shown = ical.item_of(raised, ZoneInfo("Europe/Paris"), name, phone)
    assert (shown.uid, shown.summary, shown.description) == (
        "coming@followupd",
        "Facture F-1",
        "Appeler Jo",
    )


def test_an_orm_follow_up_is_a_follow_up_row(outbox: Store) -> None:
    """`followupd outbox` shows ORM objects with the same code as the rows of a pass."""
    rows: list[FollowUpRow] = []
    with outbox.session() as session:
        rows += lookup.listing(session)
        assert_carries(rows, FollowUpRow)
    orm: FollowUpRow = FollowUp()  # mypy checks the model against the Protocol
    assert isinstance(orm, FollowUp)


def test_a_value_longer_than_its_column_is_refused_or_kept_whole_never_cut(store: Store) -> None:
    """PostgreSQL refuses a key over its 400 characters, as a plain INSERT would (the insert
    by arrays once cast them to varchar(400)[], which cuts); SQLite keeps it whole."""
    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    row = digests.digest_rows("o1", "o1@example.com", "fr", [at], at)[0]
    row["key"] = "k" * 401
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="too long"), store.session() as session:
            recording.insert_new(session, [row])
    else:
        with store.session() as session:
            recording.insert_new(session, [row])
    with store.session() as session:
        keys = session.scalars(select(FollowUp.key)).all()
    assert keys == ([] if store.engine.dialect.name == "postgresql" else [row["key"]])


def test_a_key_given_twice_in_one_insert_is_recorded_and_returned_once(store: Store) -> None:
    """The first row given wins; the second conflicts with it, as with one already stored."""
    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    first, second = (digests.digest_rows("o1", "o1@example.com", "fr", [at], at)[0] for _ in "12")
    first["subject"], second["subject"] = "first", "second"
    with store.session() as session:
        made = recording.insert_recorded(session, [first, second])
    with store.session() as session:
        stored = session.execute(select(FollowUp.key, FollowUp.subject)).all()
    assert [(row.key, row.subject) for row in made] == [(first["key"], "first")]
    assert [tuple(row) for row in stored] == [(first["key"], "first")]
