"""``invoice_due``: an unpaid invoice gets a heads-up to the owner, then nudges to the client.

Steps are offsets from the due date (the README, "What it does"). Client nudges of one
invoice share an email thread; its templates are told how many emails of that
thread the client was already sent (`earlier_emails`). While the mission is disputed a client nudge
becomes a call task for the owner instead (its own key, so that the email,
if already recorded, is cancelled and the call recorded); while the mission is
paused, client nudges wait for the pause to end. A client's promise to pay
makes them wait past the promised date, then resume where they were, and
a promise not kept gives the owner a call task (`followupd.rules.promises`,
`followupd.rules.broken_promises`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.rule_options import InvoiceDueOptions
from followupd.domain.states import Audience, MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.broken_promises import broken_promises, promise_changed
from followupd.rules.parties import route_money_step
from followupd.rules.promises import promise_pauses
from followupd.rules.replies import reply_pauses
from followupd.rules.threads import emails_sent, invoice_thread
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Invoice, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record

# A due date moves forward to the next working day: rarely more than a week,
# this bounds the candidates a query must consider.
SHIFT_MARGIN = timedelta(days=21)


class InvoiceDue(Rule[InvoiceDueOptions]):
    name = "invoice_due"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        steps = self.options.steps
        if not steps:
            return
        offsets = [step.offset_days for step in steps]
        earliest = evaluation.start.date() - SHIFT_MARGIN - timedelta(days=max(offsets))
        latest = evaluation.end.date() + timedelta(days=1 - min(offsets))
        contact = aliased(Contact)
        replied = reply_pauses(
            evaluation.session,
            evaluation.settings,
            evaluation.calendar,
            since=evaluation.start - timedelta(days=1),
            rule=self.name,
        )
        promises = promise_pauses(
            evaluation.session,
            evaluation.settings,
            evaluation.calendar,
            owns=evaluation.owns(Mission.owner),
            options=self.options,
        )
        query = (
            select(record(Invoice), record(Mission), record(Client), record(contact, "contact"))
            .join(Mission, Invoice.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(
                evaluation.owns(Mission.owner),
                Invoice.paid.is_(None),
                or_(
                    Invoice.number.in_(sorted(subject for _, subject in replied)),
                    Invoice.number.in_(sorted(promises)),
                    Invoice.due.between(earliest, latest),
                    and_(
                        Mission.paused_until.is_not(None),
                        Mission.paused_until.between(earliest, evaluation.end.date()),
                    ),
                ),
            )
        )
        templates = evaluation.templates
        owner = evaluation.owner
        candidates = evaluation.session.execute(query).all()
        threads = [invoice_thread(invoice.number) for invoice, *_ in candidates]
        sent = emails_sent(evaluation.session, threads)
        for invoice, mission, client, who in candidates:
            thread = invoice_thread(invoice.number)
            values = {
                "invoice": invoice,
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "earlier_emails": sent.get(thread, 0),
                "promised": invoice.promised if invoice.number in promises else None,
            }
            for step in steps:
                party, key, template_step, nominal = route_money_step(
                    owner,
                    Audience(step.audience),
                    f"{self.name}:{invoice.number}:{step.name}",
                    step.name,
                    invoice.due + timedelta(days=step.offset_days),
                    mission,
                    client,
                    who,
                    replied.get((self.name, invoice.number)),
                    promises.get(invoice.number),
                )
                due_at = evaluation.calendar.due_at(nominal, 0, party.tz, party.countries)
                if not evaluation.start <= due_at <= evaluation.end:
                    continue
                yield self.intent(
                    party,
                    due_at,
                    key=key,
                    step=step.name,
                    subject_key=invoice.number,
                    subject=templates.subject(
                        party.language, self.name, template_step, {**values, "step": step.name}
                    ),
                    mission_id=mission.id,
                    contact_id=who.id if who else None,
                    thread_key=thread if party.audience == Audience.CLIENT else None,
                )
        yield from broken_promises(self, evaluation, promises)

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        numbers = {row.subject_key for row in pending}
        state: dict[str, tuple[date | None, str]] = {}
        for chunk in chunked(sorted(numbers)):
            for number, paid, status in session.execute(
                select(Invoice.number, Invoice.paid, Mission.status)
                .join(Mission, Invoice.mission_id == Mission.id)
                .where(Invoice.number.in_(chunk))
            ):
                state[number] = (paid, status)
        reasons: dict[str, str] = {}
        for row in pending:
            found = state.get(row.subject_key)
            if found is None:
                reasons[row.key] = f"invoice {row.subject_key} no longer exists"
            elif found[0] is not None:
                reasons[row.key] = f"invoice {row.subject_key} paid on {found[0]}"
            elif row.audience == Audience.CLIENT and found[1] == MissionStatus.DISPUTED:
                reasons[row.key] = "mission disputed: a call task replaces the email"
        reasons.update(promise_changed(session, [row for row in pending if row.key not in reasons]))
        return reasons
