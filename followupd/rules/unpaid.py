"""The unpaid invoices a money rule looks at, with whom they concern.

`invoice_due`, `formal_notice` and `limitation_alert` each start from the same
rows: an invoice not marked paid, its mission, its client and the mission's
contact (None when it has none), on the missions of the evaluation's owner.
And each asks, of its pending follow-ups, whether their invoice is still there
and unpaid (`invoices_now`, `settled`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, select
from sqlalchemy.orm import Session, aliased

from followupd.rules.base import Evaluation
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Invoice, Mission
from followupd.store.rows import record


def unpaid_invoices(
    evaluation: Evaluation, *where: ColumnElement[bool]
) -> Select[Invoice, Mission, Client, Contact]:
    """The owner's unpaid invoices that `where` keeps: rows (invoice, mission, client, contact)."""
    contact = aliased(Contact)
    return (
        select(record(Invoice), record(Mission), record(Client), record(contact, "contact"))
        .join(Mission, Invoice.mission_id == Mission.id)
        .join(Client, Mission.client_id == Client.id)
        .outerjoin(contact, Mission.contact_id == contact.id)
        .where(*unpaid_of(evaluation), *where)
    )


def unpaid_of(evaluation: Evaluation) -> tuple[ColumnElement[bool], ...]:
    """What keeps, of the invoices joined to their missions, the owner's unpaid ones."""
    return evaluation.owns(Mission.owner), Invoice.paid.is_(None)


def invoices_now(session: Session, numbers: Iterable[str], *columns: Any) -> dict[str, Row[Any]]:
    """The invoices numbered `numbers` as they stand, by number: rows (number, paid, *columns).

    `columns` may be of the invoice, its mission or its client. An invoice no
    longer in the store has no row.
    """
    found: dict[str, Row[Any]] = {}
    for chunk in chunked(sorted(set(numbers))):
        query = (
            select(Invoice.number, Invoice.paid, *columns)
            .join(Mission, Invoice.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .where(Invoice.number.in_(chunk))
        )
        for row in session.execute(query):
            found[row.number] = row
    return found


def settled(number: str, now: Row[Any] | None) -> str | None:
    """Why a follow-up about invoice `number` has gone (`now`: `invoices_now`'s row), or None."""
    if now is None:
        return f"invoice {number} no longer exists"
    if now.paid is not None:
        return f"invoice {number} paid on {now.paid}"
    return None
