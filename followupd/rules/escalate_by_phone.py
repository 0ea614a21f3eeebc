"""``escalate_by_phone``: when something goes wrong, the owner calls instead of writing.

DOMAIN.md, source 001: a problem is handled on the phone, not by email. Two
triggers each give the owner one call task (calendar):

- an open issue of a listed severity (high, critical), on a mission that is
  not closed, still unresolved `after_working_days` working days after the day
  it was opened: ``escalate_by_phone:<issue>:call``, due at the opening of
  the send window of that working day;
- an unpaid invoice `invoice_overdue_days` days past its due date, where
  ``invoice_due``'s written nudges end: ``escalate_by_phone:<number>:overdue-call``;
  a client's promise to pay moves it as it moves those nudges
  (`followupd.rules.promises`), never into the wait. One call for a
  contact's late invoices, not one each: the task lists the contact's other
  unpaid invoices at least `list_after_days` (15) late, and those get no
  call of their own once a call (recorded, not called off) listed them: a call
  due no later than their own.

The task names the mission's contact, the number as a ``tel:`` link, the
reason, and what was last said (the mission's latest touchpoint); an
overdue call also how many written nudges the client was actually sent. Working
days are counted from the day the issue was opened in the owner's zone, on
days that are working days for both the owner and the client. Neither a
dispute nor a pause stops a call: a dispute is exactly when to call.

The subject and the task's description are rendered when it is recorded.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ScalarSelect, Select, join, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from followupd.config.rule_options import EscalateByPhoneOptions
from followupd.domain.payments import Payment, unpaid_on
from followupd.domain.states import STANDING_STATES, MissionStatus, Severity
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.news import with_news
from followupd.rules.parties import Party, to_owner
from followupd.rules.promises import PromisePause, promise_pauses
from followupd.rules.threads import emails_sent, invoice_thread
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, FollowUp, Invoice, Issue, Mission, Touchpoint
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

# A date moves forward to the next working day: rarely more than a week, this
# bounds the candidates a query must consider.
SHIFT_MARGIN = timedelta(days=21)
ISSUE_STEP = "call"
INVOICE_STEP = "overdue-call"


def working_days_span(count: int) -> timedelta:
    """At most how long `count` working days after a day can take (with a one-day week)."""
    return timedelta(days=7 * (count + 1)) + SHIFT_MARGIN


def latest_touchpoint_id() -> ScalarSelect[int]:
    """The id of the most recent touchpoint of the query's mission (correlated subquery).

    Meant for the ON clause of an outer join, so that only the candidate rows
    of a query look their touchpoint up (through the index on mission_id).
    """
    return (
        select(Touchpoint.id)
        .where(Touchpoint.mission_id == Mission.id)
        .order_by(Touchpoint.at.desc(), Touchpoint.id.desc())
        .limit(1)
        .correlate_except(Touchpoint)
        .scalar_subquery()
    )


def with_parties(
    subject: type[Issue | Invoice], mission_id: InstrumentedAttribute[int]
) -> Select[Any, Any, Any, Any, Any]:
    """The rows of `subject` (issues, invoices), each with its mission, the mission's client,
    its contact if any (``contact``) and its latest touchpoint if any (``last``).

    One join with its ON clauses, so that the rows are read as plain columns (`streamed`:
    the touchpoint a light row as the others, not an ORM object): chained ORM joins from
    those columns cannot tell which table the touchpoint's is joined from.
    """
    contact, last = aliased(Contact), aliased(Touchpoint)
    parties = (
        join(subject, Mission, mission_id == Mission.id)
        .join(Client, Mission.client_id == Client.id)
        .outerjoin(contact, Mission.contact_id == contact.id)
        .outerjoin(last, last.id == latest_touchpoint_id())
    )
    return select(
        record(subject),
        record(Mission),
        record(Client),
        record(contact, "contact"),
        record(last, "last"),
    ).select_from(parties)


def local_day(touchpoint: Touchpoint | None, party: Party) -> date | None:
    """The day of a touchpoint in the recipient's zone (None without a touchpoint)."""
    return touchpoint.at.astimezone(party.tz).date() if touchpoint is not None else None


def utc_day(instant: datetime) -> date:
    """The day of a stored instant, as reasons name it (stored instants are in UTC)."""
    return instant.date()


class EscalateByPhone(Rule[EscalateByPhoneOptions]):
    name = "escalate_by_phone"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        """Each call task due in the window: open issues first, then overdue invoices."""
        yield from self._issue_calls(evaluation)
        yield from self._invoice_calls(evaluation)

    def _issue_calls(self, evaluation: Evaluation) -> Iterator[Intent]:
        severities = self.options.severities
        if not severities:
            return
        after = self.options.after_working_days
        # the local day an issue was opened is within a day of its UTC instant
        earliest = evaluation.start - working_days_span(after) - timedelta(days=1)
        latest = evaluation.end + timedelta(days=1)
        query = with_parties(Issue, Issue.mission_id).where(
            evaluation.owns(Mission.owner),
            Issue.resolved.is_(None),
            Issue.severity.in_(severities),
            Mission.status != MissionStatus.CLOSED,
            Issue.opened.between(earliest, latest),
        )
        calendar = evaluation.calendar
        for issue, mission, client, who, touchpoint in streamed(evaluation.session, query):
            owner = evaluation.whose(mission.owner).person
            party = to_owner(owner, client.country)
            opened_on = issue.opened.astimezone(party.tz).date()
            day = calendar.add_working_days(opened_on, after, party.countries)
            due_at = calendar.due_at(day, 0, party.tz, party.countries)
            if not evaluation.start <= due_at <= evaluation.end:
                continue
            values = {
                "issue": issue,
                "opened_on": opened_on,
                "due_on": day,  # what the task says of the issue holds on its day
                "mission": mission,
                "client": client,
                "contact": who,
                "last": touchpoint,
                "last_on": local_day(touchpoint, party),
                "owner": owner,
            }
            key = f"{self.name}:{issue.key}:{ISSUE_STEP}"
            yield self._intent(evaluation, key, ISSUE_STEP, issue.key, party, due_at, values)

    def _invoice_calls(self, evaluation: Evaluation) -> Iterator[Intent]:
        overdue = timedelta(days=self.options.invoice_overdue_days)
        earliest = evaluation.start.date() - SHIFT_MARGIN - overdue
        latest = evaluation.end.date() + timedelta(days=1) - overdue
        promises = promise_pauses(
            evaluation.session,
            evaluation.settings,
            evaluation.calendar,
            owns=evaluation.owns(Mission.owner),
        )
        window = (
            evaluation.owns(Mission.owner),
            Invoice.paid.is_(None),
            or_(
                Invoice.due.between(earliest, latest),
                Invoice.number.in_(sorted(promises)),
            ),
        )
        query = with_parties(Invoice, Invoice.mission_id).where(*window)
        # what tells an invoice's key; only the contacts with a new one are read whole (a
        # call lists the contact's other late invoices, and one call may stand for several)
        narrow: Select[*tuple[Any, ...]] = (
            select(Invoice.id, Invoice.number, Invoice.due, Client.country, Mission.contact_id)
            .join(Mission, Invoice.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .where(*window)
        )

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, number, due_on, country, _ = row
            due_at = self._call_due_at(evaluation, promises, number, due_on, country)
            if evaluation.start <= due_at <= evaluation.end:
                yield self._invoice_key(number)

        def tie(row: Sequence[Any]) -> Hashable:
            """The contact whose invoices one call lists; an invoice without one, alone."""
            invoice_id, _, _, _, contact_id = row
            return ("contact", contact_id) if contact_id is not None else ("invoice", invoice_id)

        due = []
        # kept: `vanished` cancels an invoice's call only when it is paid or gone
        for only in with_news(evaluation, narrow, keys, Invoice.id, kept=True, group=tie):
            for invoice, mission, client, who, touchpoint in streamed(
                evaluation.session, query.where(*only)
            ):
                party = to_owner(evaluation.owner, client.country)  # the group's zone, country
                due_at = self._call_due_at(evaluation, promises, invoice.number, invoice.due,
                                           client.country)  # fmt: skip
                if evaluation.start <= due_at <= evaluation.end:
                    due.append((due_at, invoice, mission, client, who, touchpoint, party))
        due.sort(key=lambda found: (found[0], found[1].number))
        sent = emails_sent(evaluation.session, [invoice_thread(found[1].number) for found in due])
        contacts = {who.id for _, _, _, _, who, _, _ in due if who is not None}
        late = late_of_contacts(evaluation, contacts)
        calls = recorded_calls(evaluation, contacts)
        listing = timedelta(days=self.options.list_after_days)
        for due_at, invoice, mission, client, who, touchpoint, party in due:
            entry = evaluation.whose(mission.owner)
            dated = due_at.astimezone(party.tz).date()
            others: list[LateInvoice] = []
            if who is not None:
                earlier = calls.setdefault((who.id, entry.key), [])
                # a call due after this one (recorded, when this one was missed or its
                # invoice came later) had not listed it when this one fell due
                if any(number != invoice.number and on <= due_at
                       and on.astimezone(party.tz).date() >= invoice.due + listing
                       for number, on in earlier):  # fmt: skip
                    continue  # a call about this contact listed it already
                others = [found.on(dated) for found in late.get((who.id, entry.key), [])
                          if found.number != invoice.number and found.due + listing <= dated
                          and not (found.number in promises
                                   and promises[found.number].until > dated)]  # fmt: skip
                earlier.append((invoice.number, due_at))
            values = {
                "invoice": invoice,
                "mission": mission,
                "client": client,
                "contact": who,
                "last": touchpoint,
                "last_on": local_day(touchpoint, party),
                "owner": entry.person,
                "earlier_emails": sent.get(invoice_thread(invoice.number), 0),
                "others": others,
                "unpaid": unpaid_on(invoice.amount, invoice.payments, dated),
            }
            key = self._invoice_key(invoice.number)
            yield self._intent(evaluation, key, INVOICE_STEP, invoice.number, party, due_at, values)

    def _invoice_key(self, number: str) -> str:
        return f"{self.name}:{number}:{INVOICE_STEP}"

    def _call_due_at(
        self, evaluation: Evaluation, promises: Mapping[str, PromisePause], number: str,
        due: date, country: str | None,
    ) -> datetime:  # fmt: skip
        """When the call about an invoice due on `due` is due: `invoice_overdue_days` later,
        moved by a promise as its nudges are."""
        party = to_owner(evaluation.owner, country)  # the group's zone and country
        nominal = due + timedelta(days=self.options.invoice_overdue_days)
        if (promised := promises.get(number)) is not None:
            nominal = promised.call_moved(nominal)
        return evaluation.calendar.due_at(nominal, 0, party.tz, party.countries)

    def _intent(
        self,
        evaluation: Evaluation,
        key: str,
        step: str,
        subject_key: str,
        party: Party,
        due_at: datetime,
        values: dict[str, Any],
    ) -> Intent:
        mission: Mission = values["mission"]
        who: Contact | None = values["contact"]
        return self.intent(
            party,
            due_at,
            key=key,
            step=step,
            subject_key=subject_key,
            subject=evaluation.templates.subject(party.language, self.name, step, values),
            mission_id=mission.id,
            contact_id=who.id if who else None,
            owner=evaluation.whose(mission.owner).key,
        )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        reasons: dict[str, str] = {}
        issue_rows = [row for row in pending if row.step == ISSUE_STEP]
        invoice_rows = [row for row in pending if row.step == INVOICE_STEP]
        issues: dict[str, tuple[datetime | None, Severity, str, MissionStatus]] = {}
        for chunk in chunked(sorted({row.subject_key for row in issue_rows})):
            for key, resolved, severity, mission_key, status in session.execute(
                select(Issue.key, Issue.resolved, Issue.severity, Mission.key, Mission.status)
                .join(Mission, Issue.mission_id == Mission.id)
                .where(Issue.key.in_(chunk))
            ):
                issues[key] = (resolved, severity, mission_key, status)
        for row in issue_rows:
            issue = issues.get(row.subject_key)
            if issue is None:
                reasons[row.key] = f"issue {row.subject_key} no longer exists"
                continue
            resolved, severity, mission_key, status = issue
            if resolved is not None:
                reasons[row.key] = f"issue {row.subject_key} resolved on {utc_day(resolved)}"
            elif severity not in self.options.severities:
                reasons[row.key] = f"issue {row.subject_key} lowered to {severity} severity"
            elif status == MissionStatus.CLOSED:
                reasons[row.key] = f"mission {mission_key} closed"
        paid_on: dict[str, date | None] = {}
        for chunk in chunked(sorted({row.subject_key for row in invoice_rows})):
            for number, paid in session.execute(
                select(Invoice.number, Invoice.paid).where(Invoice.number.in_(chunk))
            ):
                paid_on[number] = paid
        for row in invoice_rows:
            if row.subject_key not in paid_on:
                reasons[row.key] = f"invoice {row.subject_key} no longer exists"
            elif (paid := paid_on[row.subject_key]) is not None:
                reasons[row.key] = f"invoice {row.subject_key} paid on {paid}"
        return reasons


@dataclass(frozen=True)
class LateInvoice:
    """Another unpaid invoice of a contact, as an overdue call lists it."""

    number: str
    due: date
    amount: Decimal
    payments: tuple[Payment, ...]
    currency: str
    unpaid: Decimal = Decimal(0)  # on the call's day
    days_late: int = 0

    def on(self, day: date) -> LateInvoice:
        """This invoice as it stands on `day`."""
        unpaid = unpaid_on(self.amount, self.payments, day)
        return replace(self, unpaid=unpaid, days_late=(day - self.due).days)


def late_of_contacts(
    evaluation: Evaluation, contacts: Iterable[int]
) -> dict[tuple[int, str], list[LateInvoice]]:
    """The unpaid invoices of each owner's missions of each contact in `contacts`, oldest first.

    By (contact id, owner key): an owner's call lists their own missions' invoices only.
    """
    found: dict[tuple[int, str], list[LateInvoice]] = {}
    for chunk in chunked(sorted(set(contacts))):
        query = (
            select(
                Mission.contact_id,
                Invoice.number,
                Invoice.due,
                Invoice.amount,
                Invoice.payments,
                Mission.currency,
                Mission.owner,
            )
            .join(Mission, Invoice.mission_id == Mission.id)
            .where(
                evaluation.owns(Mission.owner),
                Mission.contact_id.in_(chunk),
                Invoice.paid.is_(None),
            )
            .order_by(Invoice.due, Invoice.number)
        )
        rows = evaluation.session.execute(query)
        for contact, number, due, amount, payments, currency, owner in rows:
            found.setdefault((contact or 0, evaluation.whose(owner).key), []).append(
                LateInvoice(number, due, amount, tuple(payments), currency)
            )
    return found


def recorded_calls(
    evaluation: Evaluation, contacts: Iterable[int]
) -> dict[tuple[int, str], list[tuple[str, datetime]]]:
    """The overdue calls recorded for each contact and not called off, about the
    evaluation's missions, by (contact, owner key): (invoice, when due). Keyed by owner as
    `late_of_contacts` is: a contact two consultants share gets a call from each."""
    found: dict[tuple[int, str], list[tuple[str, datetime]]] = {}
    for chunk in chunked(sorted(set(contacts))):
        query = (
            select(FollowUp.contact_id, Mission.owner, FollowUp.subject_key, FollowUp.due_at)
            .join(Invoice, Invoice.number == FollowUp.subject_key)
            .join(Mission, Invoice.mission_id == Mission.id)
            .where(
                FollowUp.rule == EscalateByPhone.name,
                FollowUp.step == INVOICE_STEP,
                FollowUp.state.in_(STANDING_STATES),
                evaluation.owns(Mission.owner),
                FollowUp.contact_id.in_(chunk),
            )
        )
        for contact, owner, number, due_at in evaluation.session.execute(query):
            key = (contact or 0, evaluation.whose(owner).key)
            found.setdefault(key, []).append((number, due_at))
    return found
