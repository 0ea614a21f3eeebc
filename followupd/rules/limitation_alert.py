"""``limitation_alert``: an unpaid invoice nears the day it can no longer be claimed in court.

`months_ahead` months (6) before the last day to act (followupd.domain.limitation:
5 years against a business client, L110-4 C. com.; 2 years against a
consumer, L218-2 C. consom.; from the invoice's issue, or the mission's end
when earlier), the owner gets one calendar task: the invoice, what is left
unpaid, the last day, and what stops the clock (a claim in court, not a
formal notice). Key ``limitation_alert:<number>:<last day>``: a new last day
(the client's kind or the mission's end changed) is a new alert, and the
pending one is cancelled.

The task fires once, however long followupd was down, until the last day
itself: its grace runs to the end of that day (`grace_days` does not apply).
Paid, the invoice's alert is cancelled. A dispute or a closed mission changes
nothing: the claim runs out all the same.

These are the periods of French law, the seller's: only an owner whose
``country`` is FR gets alerts (elsewhere the periods differ, and a wrong date
would do harm).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import Session

from followupd.config.rule_options import LimitationAlertOptions
from followupd.domain.limitation import LAW, YEARS, last_day_to_act, limitation_start
from followupd.domain.months import add_months
from followupd.domain.payments import unpaid_on
from followupd.domain.states import ClientKind
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.parties import to_owner
from followupd.rules.unpaid import invoices_now, settled, unpaid_invoices
from followupd.store.models import Client, Invoice, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import streamed

# A day moves forward to the next working day: rarely more than a week, this
# bounds the candidates a query must consider.
SHIFT_MARGIN = timedelta(days=21)
STEP = "alert"
FRANCE = "FR"


class LimitationAlert(Rule[LimitationAlertOptions]):
    name = "limitation_alert"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        if evaluation.owner.country != FRANCE:
            return
        query = unpaid_invoices(
            evaluation, or_(*(self._started_in_reach(evaluation, kind) for kind in ClientKind))
        )
        for invoice, mission, client, who in streamed(evaluation.session, query):
            start = limitation_start(invoice.issued, mission.end)
            last_day = last_day_to_act(start, client.kind)
            alert_day = add_months(last_day, -self.options.months_ahead)
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            party = to_owner(owner, client.country)
            due_at = evaluation.calendar.due_at(alert_day, 0, party.tz, party.countries)
            if not evaluation.start <= due_at <= evaluation.end:
                continue
            payments = sorted(invoice.payments)
            values = {
                "invoice": invoice,
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "unpaid": unpaid_on(invoice.amount, payments, alert_day),
                "last_payment": payments[-1] if payments else None,
                "start": start,
                "last_day": last_day,
                "years": YEARS[client.kind],
                "law": LAW[client.kind],
                "consumer": client.kind == ClientKind.CONSUMER,
            }
            intent = self.intent(
                party,
                due_at,
                key=alert_key(invoice.number, last_day),
                step=STEP,
                subject_key=invoice.number,
                subject=evaluation.templates.subject(party.language, self.name, STEP, values),
                mission_id=mission.id,
                contact_id=who.id if who else None,
                owner=entry.key,
            )
            # until the last day, never after: then the alert has nothing left to save
            barred_at = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=party.tz)
            yield replace(intent, expires_at=min(intent.expires_at, barred_at))

    @property
    def grace(self) -> timedelta:
        """At least from an alert to its limit: `evaluate` ends each at its last day."""
        return timedelta(days=31 * self.options.months_ahead) + SHIFT_MARGIN

    def _started_in_reach(self, evaluation: Evaluation, kind: ClientKind) -> ColumnElement[bool]:
        """Invoices of `kind`'s clients whose limitation may start where an alert is in the window.

        The start is the issue date or the mission's end (the earlier): either in
        the span is a candidate; `evaluate` computes the exact day.
        """
        months = 12 * YEARS[kind] - self.options.months_ahead
        earliest = add_months(evaluation.start.date(), -months) - SHIFT_MARGIN
        # months counted from a 29th-31st land up to 3 days early (clamped), a zone a day
        latest = add_months(evaluation.end.date(), -months) + timedelta(days=4)
        return and_(
            Client.kind == kind,
            or_(Invoice.issued.between(earliest, latest), Mission.end.between(earliest, latest)),
        )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        now = invoices_now(session, (row.subject_key for row in pending), Invoice.issued,
                           Mission.end, Client.kind)  # fmt: skip
        reasons: dict[str, str] = {}
        for row in pending:
            found = now.get(row.subject_key)
            if (gone := settled(row.subject_key, found)) is not None:
                reasons[row.key] = gone
            elif found is not None:
                last_day = last_day_to_act(limitation_start(found.issued, found.end), found.kind)
                if row.key != alert_key(row.subject_key, last_day):
                    reasons[row.key] = (
                        f"invoice {row.subject_key}: the last day to act is now {last_day}"
                    )
        return reasons


def alert_key(number: str, last_day: date) -> str:
    """The key of the alert of invoice `number` whose limitation ends on `last_day`."""
    return f"{LimitationAlert.name}:{number}:{last_day.isoformat()}"
