"""The invoices the receivables report reads (followupd.domain.receivables), set-based.

Which invoices count on a day: those open on it (not paid in full by then;
part payments are deducted in the domain), those paid in full in the twelve
months to it (days to pay), and the sales DSO's countback may walk back
through: every invoice issued from the first of the month of the oldest open
one, since the sales from then on hold every open invoice whole. Two
statements whatever the number of invoices: that oldest date, then the rows.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from followupd.domain.owner_scope import Scope
from followupd.domain.receivables import InvoiceFacts, year_before
from followupd.store.models import Client, Invoice, Mission


def invoice_facts(
    session: Session, day: date, owner: Scope | None = None, *, history: bool = True
) -> list[InvoiceFacts]:
    """The facts of the invoices that count on `day`, of `owner`'s missions (None: everyone's).

    Without `history`, the invoices open on `day` only: enough for the aging
    (the daemon's ``/metrics``), not for DSO or days to pay.
    """
    mine = owner.holds(Mission.owner) if owner is not None else true()
    issued = Invoice.issued <= day
    open_on_day = or_(Invoice.paid.is_(None), Invoice.paid > day)
    wanted: list[ColumnElement[bool]] = [open_on_day]
    if history:
        wanted.append(Invoice.paid > year_before(day))
        oldest = session.scalar(
            select(func.min(Invoice.issued))
            .join(Mission, Invoice.mission_id == Mission.id)
            .where(issued, open_on_day, mine)
        )
        if oldest is not None:
            wanted.append(Invoice.issued >= oldest.replace(day=1))
    query = (
        select(
            Invoice.number,
            Client.key,
            Client.name,
            Mission.currency,
            Invoice.amount,
            Invoice.issued,
            Invoice.due,
            Invoice.paid,
            Invoice.payments,
        )
        .join(Mission, Invoice.mission_id == Mission.id)
        .join(Client, Mission.client_id == Client.id)
        .where(issued, mine, or_(*wanted))
        .order_by(Invoice.issued, Invoice.number)
    )
    return [InvoiceFacts(*row) for row in session.execute(query)]
