"""Client nudges grouped by contact: one email for the invoices whose steps leave together.

The design, for ``[rules.invoice_due] group_by_client = true`` (the default):

- **Each step stays a follow-up of its own.** The rule records every step of
  every invoice under its usual key (``invoice_due:<number>:<step>``), with
  the single-invoice email rendered, exactly as without grouping. So a step
  is recorded once and counted once, whatever happens to the others; `outbox
  list` and `tick --json` show each invoice's step; an invoice paid before
  delivery is cancelled at the check before sending (its rule's `vanished`)
  and so drops out; and a catch-up supersedes the older steps of one
  invoice, never another invoice's.
- **Grouping happens when they leave.** Delivery claims due rows in one
  statement; the client nudges of one contact (same owner, recipient and
  language) among them are sent as one email. It lists, besides, the
  contact's other invoices that are overdue and that the client could be
  nudged about today (not paid, not disputed, not paused, not waiting for a
  promise, not below ``min_client_amount``), with no step of their own: so
  the email, and its total, say all that the client owes late. With one
  step and nothing else owed late, it is that step's own email, word for
  word, as without grouping. Otherwise the email is made then, from the
  store as it is at that moment (what each invoice still owes after part
  payments, days late), with the template
  ``invoice_due/grouped.j2``, worded after the firmest step among them
  (followupd.rules.client_nudges). The first of them by due time carries
  the email: its row keeps the subject and body sent, and its reason lists
  the steps it carried; each carried row is recorded sent with the same
  Message-ID, body and subject, its reason naming the carrier.
- **Nothing twice.** The Message-ID is made from the keys of the steps an
  email carries (one step: its own key, as without grouping): a crash
  between the server's acceptance and the record sends the same email again
  with the same Message-ID, which mail clients show once; every step is
  recorded sent once, in the same transaction as its carrier.
- **One a day.** A client nudge that would reach a contact on a day (in the
  client's zone) when one already went waits for the next opening of the
  send window: an invoice recorded late in the day goes with the next day's.
  A claim takes up to 200 rows by due time: should a batch end among one
  contact's nudges of a morning, the rest wait for the next day's email
  the same way. The other client emails (greetings, deposit) share that
  day too (followupd.delivery.client_day).
- **One thread per contact.** All the invoice emails to a contact (nudges
  and thank-yous) reply to the ones sent before, whatever the invoice; with
  a single invoice that is the thread of its nudges, as without grouping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol, cast

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from followupd.channels.email.message import message_id
from followupd.config.rule_options import InvoiceDueOptions
from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.owner_scope import scope_of
from followupd.domain.payments import Payment, unpaid_on
from followupd.domain.states import Audience, Channel, MissionStatus
from followupd.rules.book import RuleBook
from followupd.rules.client_nudges import RULE, NudgeLine, grouped_message, grouped_values
from followupd.rules.invoice_due import (
    THANK_YOU,
    client_level,
    late_payment_for,
    penalties_owed,
)
from followupd.rules.promises import PromisePause, promise_pauses
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Invoice, Mission
from followupd.store.outbox.client_nudges import SentEmail, sent_to_contacts
from followupd.store.outbox.rows import FollowUpRow
from followupd.templates.loader import Templates, templates_of

# an invoice with its mission, client and the mission's contact
Parties = tuple[Invoice, Mission, Client, Contact | None]


@dataclass(frozen=True)
class Batch:
    """The follow-ups one email delivers: `lead` carries it, `carried` go with it."""

    lead: FollowUpRow
    carried: tuple[FollowUpRow, ...] = ()

    @property
    def rows(self) -> tuple[FollowUpRow, ...]:
        return (self.lead, *self.carried)

    @property
    def key(self) -> str:
        """What its Message-ID is made from: the keys of the steps it carries."""
        return "+".join(sorted(row.key for row in self.rows))


@dataclass(frozen=True)
class Grouped:
    """A grouped nudge as made when it leaves."""

    subject: str
    body: str
    listed: tuple[str, ...] = ()  # the other late invoices it lists, with no step today

    def reason(self, batch: Batch) -> str:
        """What its lead's row says of it (`outbox show`)."""
        why = f"one email for {len(batch.rows) + len(self.listed)} invoices"
        if batch.carried:
            why += f", with {', '.join(each.key for each in batch.carried)}"
        if self.listed:
            why += f"; also late, no step today: {', '.join(self.listed)}"
        return why


class ClientNudges:
    """Which client emails are grouped (per owner's options), and how."""

    def __init__(self, settings: Settings, book: RuleBook) -> None:
        self.settings = settings
        self.options: dict[str, InvoiceDueOptions] = {}
        self.of_owner: dict[str | None, InvoiceDueOptions | None] = {}  # by a row's owner
        # by owner key: one sandbox for the pass, its templates looked up and compiled once (a
        # Templates made for each grouped nudge cost 0.7 ms with the compiled cache, 8 without)
        self.templates: dict[str, Templates] = {}
        for owner, rules in book.by_owner.items():
            rule = rules.get(RULE)
            if rule is not None:
                self.options[owner] = cast(InvoiceDueOptions, rule.options)

    def _options(self, row: FollowUpRow) -> InvoiceDueOptions | None:
        try:  # asked several times an email: the owner found once per owner key
            return self.of_owner[row.owner]
        except KeyError:
            found = self.options.get(self.settings.owner_for(row.owner).key)
            self.of_owner[row.owner] = found
            return found

    def grouped(self, row: FollowUpRow) -> bool:
        """Whether `row` is a client nudge its owner wants grouped by contact."""
        options = self._options(row)
        return (
            row.rule == RULE
            and row.audience == Audience.CLIENT
            and row.channel == Channel.EMAIL
            and row.step != THANK_YOU
            and row.contact_id is not None
            and options is not None
            and options.group_by_client
        )

    def in_thread(self, row: FollowUpRow) -> bool:
        """Whether `row` is in its contact's thread: any client email of the rule, grouped."""
        options = self._options(row)
        return (
            row.rule == RULE
            and row.audience == Audience.CLIENT
            and row.channel == Channel.EMAIL
            and row.contact_id is not None
            and options is not None
            and options.group_by_client
        )

    def batches(self, emails: Sequence[FollowUpRow]) -> list[Batch]:
        """`emails` as they go: one batch per contact's grouped nudges, one per other email."""
        batches: list[Batch] = []
        by_contact: dict[tuple[str, int, str, str], list[FollowUpRow]] = {}
        for row in emails:
            if self.grouped(row):
                owner = self.settings.owner_for(row.owner).key
                group = (owner, row.contact_id or 0, row.recipient or "", row.language)
                by_contact.setdefault(group, []).append(row)
            else:
                batches.append(Batch(row))
        for rows in by_contact.values():
            ordered = sorted(rows, key=lambda row: (row.due_at, row.key))
            batches.append(Batch(ordered[0], tuple(ordered[1:])))
        return sorted(batches, key=lambda batch: (batch.lead.due_at, batch.lead.key))

    @staticmethod
    def sent(session: Session, rows: Iterable[FollowUpRow]) -> dict[int, list[SentEmail]]:
        """The client emails already sent to the contacts of `rows`, oldest first, any rule
        (`thread` and `message` take the invoice emails among them)."""
        ids = {row.contact_id for row in rows if row.contact_id is not None}
        return sent_to_contacts(session, sorted(ids)) if ids else {}

    @staticmethod
    def thread(sent: Sequence[SentEmail], domain: str, but: Iterable[str] = ()) -> list[str]:
        """The Message-IDs of `sent`, oldest first, each once (steps sent together share one)."""
        skip = set(but)
        ids: dict[str, None] = {}
        for email in sent:
            if email.rule == RULE and email.key not in skip:
                ids.setdefault(email.message_id or message_id(email.key, domain), None)
        return list(ids)

    def message(
        self,
        session: Session,
        batch: Batch,
        sent: Sequence[SentEmail],
        day: date,
        calendar: BusinessCalendar,
        unpaid: Unpaid | None = None,
    ) -> Grouped | None:
        """The email of a batch of grouped nudges, from the store as it is now; None when it
        is one step's own email (one step, nothing else late to list, or not grouped).

        `day` is the client's day it leaves on (days late count to it); `unpaid`, the
        unpaid invoices of its contact (`unpaid_of`, read once for many batches), else
        read here. TemplateProblem if the grouped template fails.
        """
        lead = batch.lead
        if not self.grouped(lead):
            return None
        options = self._options(lead) or InvoiceDueOptions()
        numbers = sorted({row.subject_key for row in batch.rows})
        if unpaid is None:
            unpaid = self.unpaid_of(session, [lead], calendar)
        owner = self.settings.owner_for(lead.owner).key
        listed = unpaid.late(owner, lead.contact_id or 0, day, set(numbers),
                             max(options.min_client_amount, Decimal("0.01")))  # fmt: skip
        if not batch.carried and not listed:
            return None
        found: dict[str, Parties] = {}
        for chunk in chunked(numbers):
            for invoice, mission, client, contact in session.execute(
                _with_parties().where(Invoice.number.in_(chunk))
            ).all():
                found[invoice.number] = (invoice, mission, client, contact)
        late = late_payment_for(self.settings, self.settings.owner_for(lead.owner).country)
        lines: list[NudgeLine] = []
        for row in batch.rows:
            if row.subject_key not in found:
                continue
            invoice, mission, client, _ = found[row.subject_key]
            level = client_level(options.ladder(client.profile), row.step)
            lines.append(NudgeLine(
                key=row.key, number=invoice.number, issued=invoice.issued, due=invoice.due,
                amount=invoice.amount, unpaid=unpaid_on(invoice.amount, invoice.payments, day),
                currency=mission.currency, days_late=max((day - invoice.due).days, 0),
                step=row.step, level=level, mission_title=mission.title,
                penalties=penalties_owed(late, invoice, mission, client, day, level),
            ))  # fmt: skip
        for number, other in sorted(listed.items()):
            lines.append(NudgeLine(
                key="", number=number, issued=other.issued, due=other.due,
                amount=other.amount, unpaid=unpaid_on(other.amount, other.payments, day),
                currency=other.currency, days_late=(day - other.due).days, step="", level=0,
                mission_title=other.title,
            ))  # fmt: skip
        entry = self.settings.owner_for(lead.owner)
        first = found[lines[0].number] if lines else None
        nudges = {
            email.message_id or email.key
            for email in sent
            if email.rule == RULE and email.step != THANK_YOU
        }
        values = grouped_values(
            lines,
            contact=first[3] if first else None,
            client=first[2] if first else None,
            owner=entry,
            earlier_emails=len(nudges),
        )
        templates = self.templates.get(entry.key)
        if templates is None:
            templates = self.templates[entry.key] = templates_of(self.settings, entry)
        subject, body = grouped_message(templates, lead.language, values)
        return Grouped(subject, body, tuple(sorted(listed)))

    def unpaid_of(
        self, session: Session, leads: Iterable[FollowUpRow], calendar: BusinessCalendar
    ) -> Unpaid:
        """The unpaid invoices, on missions not disputed, of the contacts of the grouped
        nudges among `leads`, on their owners' missions; and the pauses of their promises."""
        contacts: dict[str, set[int]] = {}
        for lead in leads:
            if self.grouped(lead) and lead.contact_id is not None:
                owner = self.settings.owner_for(lead.owner).key
                contacts.setdefault(owner, set()).add(lead.contact_id)
        found: dict[tuple[str, int], list[UnpaidInvoice]] = {}
        for owner, ids in contacts.items():
            for chunk in chunked(sorted(ids)):
                query = _UNPAID.where(
                    scope_of(self.settings, owner).holds(Mission.owner),
                    Mission.contact_id.in_(chunk),
                )
                for invoice in session.execute(query):
                    found.setdefault((owner, invoice.contact_id or 0), []).append(invoice)
        numbers = [invoice.number for each in found.values() for invoice in each]
        pauses = promise_pauses(session, self.settings, calendar, numbers=numbers)
        return Unpaid(found, pauses)


class UnpaidInvoice(Protocol):
    """What a grouped nudge reads of an unpaid invoice it may list (a row of `_UNPAID`)."""

    @property
    def number(self) -> str: ...
    @property
    def issued(self) -> date: ...
    @property
    def due(self) -> date: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def payments(self) -> tuple[Payment, ...]: ...
    @property
    def contact_id(self) -> int | None: ...
    @property
    def paused_until(self) -> date | None: ...
    @property
    def currency(self) -> str: ...
    @property
    def title(self) -> str: ...


# the unpaid invoices of missions not disputed, as rows: a batch reads one per invoice
# of its contacts, most of them to list none
_UNPAID = (
    select(Invoice.number, Invoice.issued, Invoice.due, Invoice.amount, Invoice.payments,
           Mission.contact_id, Mission.paused_until, Mission.currency, Mission.title)
    .join(Mission, Invoice.mission_id == Mission.id)
    .where(Mission.status != MissionStatus.DISPUTED, Invoice.paid.is_(None))
)  # fmt: skip


@dataclass(frozen=True)
class Unpaid:
    """The unpaid invoices of some contacts, by (owner, contact), and their promises."""

    by_contact: Mapping[tuple[str, int], list[UnpaidInvoice]]
    pauses: Mapping[str, PromisePause]

    def late(
        self, owner: str, contact: int, day: date, carried: set[str], minimum: Decimal
    ) -> dict[str, UnpaidInvoice]:
        """The contact's invoices, besides `carried`, the client may be nudged about on
        `day`: late, not paused, not waiting for a promise, at least `minimum` unpaid."""
        late: dict[str, UnpaidInvoice] = {}
        for invoice in self.by_contact.get((owner, contact), []):
            pause = self.pauses.get(invoice.number)
            if (
                invoice.number not in carried
                and invoice.due < day
                and (invoice.paused_until is None or invoice.paused_until <= day)
                and (pause is None or pause.until <= day)
                and unpaid_on(invoice.amount, invoice.payments, day) >= minimum
            ):
                late[invoice.number] = invoice
        return late


def _with_parties() -> Select[Invoice, Mission, Client, Contact]:
    """Invoices with their mission, client and the mission's contact (None when it has none)."""
    return (
        select(Invoice, Mission, Client, Contact)
        .join(Mission, Invoice.mission_id == Mission.id)
        .join(Client, Mission.client_id == Client.id)
        .outerjoin(Contact, Mission.contact_id == Contact.id)
    )
