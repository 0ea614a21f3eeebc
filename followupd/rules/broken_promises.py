"""A promise to pay not kept: the owner is told to call, once per promise.

When the pause a promise started ends (`followupd.rules.promises`) and the
invoice is still unpaid, ``invoice_due`` gives the owner a call task, due at
the opening of the send window that day:
``invoice_due:<number>:promise-broken-<promised date>``. A new promised date
is a new promise, with its own reminder; the task of the old one goes
(completed by followupd) when the promise changes or is withdrawn, as when
the invoice is paid.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.config.rule_options import InvoiceDueOptions
from followupd.domain.items import PROMISE_BROKEN
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.parties import to_owner
from followupd.rules.promises import PromisePause
from followupd.rules.unpaid import unpaid_invoices
from followupd.store.chunks import chunked
from followupd.store.models import Invoice
from followupd.store.outbox.rows import PendingRow


def broken_promise_key(rule: str, number: str, promised: date) -> str:
    return f"{rule}:{number}:{PROMISE_BROKEN}-{promised.isoformat()}"


def broken_promises(
    rule: Rule[InvoiceDueOptions], evaluation: Evaluation, pauses: Mapping[str, PromisePause]
) -> Iterator[Intent]:
    """The owner's call tasks for the promises whose pause ends in the evaluation's window."""
    if not pauses:
        return
    query = unpaid_invoices(evaluation)
    for chunk in chunked(sorted(pauses)):
        for invoice, mission, client, who in evaluation.session.execute(
            query.where(Invoice.number.in_(chunk))
        ):
            pause = pauses[invoice.number]
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            party = to_owner(owner, client.country)
            due_at = evaluation.calendar.due_at(pause.until, 0, party.tz, party.countries)
            if not evaluation.start <= due_at <= evaluation.end:
                continue
            values = {
                "invoice": invoice,
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "promised": pause.promised,
                "step": PROMISE_BROKEN,
            }
            yield rule.intent(
                party,
                due_at,
                key=broken_promise_key(rule.name, invoice.number, pause.promised),
                step=PROMISE_BROKEN,
                subject_key=invoice.number,
                subject=evaluation.templates.subject(
                    party.language, rule.name, PROMISE_BROKEN, values
                ),
                mission_id=mission.id,
                contact_id=who.id if who else None,
                owner=entry.key,
            )


def promise_changed(session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
    """Of the broken-promise reminders among `pending`, those of a promise since changed: why."""
    reminders = [row for row in pending if row.step == PROMISE_BROKEN]
    promised: dict[str, date | None] = {}
    for chunk in chunked(sorted({row.subject_key for row in reminders})):
        for number, day in session.execute(
            select(Invoice.number, Invoice.promised).where(Invoice.number.in_(chunk))
        ):
            promised[number] = day
    reasons: dict[str, str] = {}
    for row in reminders:
        now = promised.get(row.subject_key)
        if now is not None and row.key == broken_promise_key(row.rule, row.subject_key, now):
            continue
        reasons[row.key] = (
            f"invoice {row.subject_key}: promised to pay by {now.isoformat()} now"
            if now is not None
            else f"invoice {row.subject_key}: the promise to pay was withdrawn"
        )
    return reasons
