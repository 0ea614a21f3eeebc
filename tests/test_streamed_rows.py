"""`streamed` reads a query of records as plain columns, and gives the rows the ORM would.

The rules read their candidates through `store.rows.streamed`, which leaves the
ORM out for a query of `record`s and single columns: each record is made of its
slice of the row. Here the same queries read both ways give the same rows, with
the same fields, the same values of the same types, and None for an entity an
outer join did not find.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Bundle, Session, aliased

from followupd.domain.payments import Payment
from followupd.domain.states import MissionStatus, TouchpointKind
from followupd.store.db import Store
from followupd.store.models import Client, Contact, Invoice, Mission, Touchpoint
from followupd.store.rows import record, streamed


def filled(store: Store) -> None:
    """Two missions, one with a contact and one without; invoices and a touchpoint."""
    with store.session() as session:
        client = Client(key="acme", name="ACME", country="FR")
        contact = Contact(key="acme-jo", client=client, name="Jo", email="jo@acme.example")
        with_contact = Mission(key="m1", client=client, contact=contact, title="Audit",
                               status=MissionStatus.ACTIVE, start=date(2026, 1, 5),
                               end=date(2026, 3, 1), deposit_amount=Decimal("500.00"))  # fmt: skip
        alone = Mission(key="m2", client=client, title="Refonte", status=MissionStatus.CLOSED,
                        start=date(2025, 6, 1))  # fmt: skip
        session.add_all([client, contact, with_contact, alone])
        session.flush()
        session.add_all([
            Invoice(number="F1", mission_id=with_contact.id, amount=Decimal("1200.00"),
                    issued=date(2026, 2, 1), due=date(2026, 3, 3),
                    payments=(Payment(date(2026, 3, 10), Decimal("200.00")),)),
            Invoice(number="F2", mission_id=alone.id, amount=Decimal("90.50"),
                    issued=date(2025, 7, 1), due=date(2025, 7, 31), paid=date(2025, 8, 2)),
            Touchpoint(key="t1", mission_id=with_contact.id, kind=TouchpointKind.MEETING,
                       at=datetime(2026, 2, 3, 14, 30, tzinfo=UTC)),
        ])  # fmt: skip


def both_ways(session: Session, query: Select[*tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """The rows of `query` through the ORM, and through `streamed`, each as a list of tuples."""
    by_orm = [tuple(row) for row in session.execute(query)]
    return by_orm, [tuple(row) for row in streamed(session, query, size=1)]


def same_rows(by_orm: list[Any], by_streamed: list[Any]) -> None:
    assert by_streamed == by_orm
    for orm_row, plain_row in zip(by_orm, by_streamed, strict=True):
        for orm_value, plain_value in zip(orm_row, plain_row, strict=True):
            if orm_value is not None and hasattr(orm_value, "_fields"):  # a record: a light row
                assert plain_value._fields == orm_value._fields
                assert repr(plain_value) == repr(tuple(orm_value))
                for name in orm_value._fields:
                    found, expected = getattr(plain_value, name), getattr(orm_value, name)
                    assert (type(found), found) == (type(expected), expected), name
            else:
                assert type(plain_value) is type(orm_value)


def test_records_outer_joined_and_single_columns_read_as_the_orm_reads_them(store: Store) -> None:
    filled(store)
    contact = aliased(Contact)
    met = select(func.max(Touchpoint.at)).where(Touchpoint.mission_id == Mission.id)
    query = (
        select(
            record(Mission),
            record(Client),
            record(contact, "contact"),
            met.scalar_subquery().label("met"),
            exists().where(Invoice.mission_id == Mission.id).label("invoiced"),
            Mission.key,
        )
        .join(Client, Mission.client_id == Client.id)
        .outerjoin(contact, Mission.contact_id == contact.id)
        .order_by(Mission.key)
    )
    with store.session() as session:
        by_orm, by_streamed = both_ways(session, query)
    same_rows(by_orm, by_streamed)
    (_, _, who, met_at, invoiced, key), (_, _, nobody, never, _, _) = by_streamed
    assert (who.name, met_at, invoiced, key) == ("Jo", datetime(2026, 2, 3, 14, 30, tzinfo=UTC),
                                                 True, "m1")  # fmt: skip
    assert (nobody, never) == (None, None)


def test_invoices_with_their_payments_read_in_batches_as_the_orm_reads_them(store: Store) -> None:
    filled(store)
    query = (
        select(record(Invoice), record(Mission))
        .join(Mission, Invoice.mission_id == Mission.id)
        .where(Invoice.amount > 0)
        .order_by(Invoice.number)
    )
    with store.session() as session:
        by_orm = [tuple(row) for row in session.execute(query)]
        batches = [list(batch) for batch in streamed(session, query, size=1).partitions()]
    assert [len(batch) for batch in batches] == [1, 1]
    same_rows(by_orm, [tuple(row) for batch in batches for row in batch])
    assert batches[0][0][0].payments == (Payment(date(2026, 3, 10), Decimal("200.00")),)


def test_a_query_with_another_bundle_is_left_to_the_orm(store: Store) -> None:
    filled(store)
    mission: Bundle[Any] = Bundle("mission", Mission.key, Mission.status)
    query: Select[*tuple[Any, ...]] = select(Mission.id, mission).order_by(Mission.id)
    with store.session() as session:
        by_orm, by_streamed = both_ways(session, query)
    same_rows(by_orm, by_streamed)
    assert [row[1].key for row in by_streamed] == ["m1", "m2"]


def test_objects_added_to_the_session_are_flushed_before_the_read(store: Store) -> None:
    filled(store)
    query = select(record(Mission)).order_by(Mission.key)
    with store.session() as session:
        client = session.scalars(select(Client)).one()
        session.add(Mission(key="m3", client=client, title="Ajout", status=MissionStatus.ACTIVE,
                            start=date(2026, 4, 1)))  # fmt: skip
        assert [mission.key for (mission,) in streamed(session, query)] == ["m1", "m2", "m3"]
