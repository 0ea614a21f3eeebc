"""The unpaid invoices a money rule looks at, with whom they concern.

`invoice_due`, `formal_notice` and `limitation_alert` each start from the same
rows: an invoice not marked paid, its mission, its client and the mission's
contact (None when it has none), on the missions of the evaluation's owner.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import aliased

from followupd.rules.base import Evaluation
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
        .where(evaluation.owns(Mission.owner), Invoice.paid.is_(None), *where)
    )
