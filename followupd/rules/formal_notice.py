"""``formal_notice``: after the nudges and the call, the owner sends a formal notice to pay.

`after_days` (45) days past its due date, past ``escalate_by_phone``'s call
(30), an unpaid invoice gives the owner one calendar task,
``formal_notice:<number>``, with the letter attached as a PDF: the "mise en
demeure de payer" (in English, a formal final demand) to print, sign and
send by registered mail with acknowledgement of receipt. followupd never
sends it to the client: a formal notice binds its sender, and the proof the
law asks for is the registered letter, not an email.

The letter is dated the task's day (in the owner's zone) and gives the
client `deadline_days` (8 to 15) from its receipt to pay. It lists every
unpaid invoice of the client (the owner's missions, the triggering invoice's
currency) that is at least `cite_after_days` (30: past the call) overdue on
that day, with what is left to pay, the
days late and, for a business client where ``[late_payment]`` applies, the
penalties to date (L441-10 C. com., at the mission's contract rate if it has
one) and the 40 € indemnity (D441-5); a consumer's letter has neither. It is
in the contact's language (the client's, the owner's), as client emails are.

A disputed mission gets no formal notice (a dispute is for talking: the
call tasks go on), and a pending one is cancelled when the mission becomes
disputed; a paused mission gets it when the pause ends, if still unpaid. A
client's promise to pay moves it as it moves the overdue call
(`followupd.rules.promises`): never before the promise's pause ends, so the
owner is not told to send a formal notice to a client who promised to pay.
One letter, not one per invoice: an invoice that a notice recorded for its
client (and not called off), due no later than its own task, could cite, being
`cite_after_days` late on its date, gets no task of its own; an invoice that
falls due later gets its own letter at its own `after_days`. Paid, the invoice's task is cancelled.
`letter_for` builds the same letter for ``followupd invoice letter`` when
no task recorded one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from followupd.config.owners import Owner
from followupd.config.rule_options import FormalNoticeOptions
from followupd.config.settings import Settings
from followupd.domain.formal_notice import Creditor, Debtor, FormalNotice, NoticeInvoice, file_name
from followupd.domain.late_payment import MissingRate, penalties_under
from followupd.domain.payments import unpaid_on
from followupd.domain.states import STANDING_STATES, ClientKind, MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.news import with_news
from followupd.rules.parties import to_client, to_owner
from followupd.rules.promises import PromisePause, promise_pauses
from followupd.rules.threads import emails_sent, invoice_thread
from followupd.rules.unpaid import invoices_now, settled, unpaid_invoices, unpaid_of
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, FollowUp, Invoice, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

# A day moves forward to the next working day: rarely more than a week, this
# bounds the candidates a query must consider.
SHIFT_MARGIN = timedelta(days=21)
STEP = "send"
# what gets the PDF again, in the task's description
LETTER_COMMAND = "followupd invoice letter {number}"


@dataclass(frozen=True)
class Parties:
    """The invoice a letter is about, and who it is from and to."""

    invoice: Invoice
    mission: Mission
    client: Client
    contact: Contact | None


class FormalNoticeRule(Rule[FormalNoticeOptions]):
    name = "formal_notice"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        after = timedelta(days=self.options.after_days)
        end = evaluation.end.date() + timedelta(days=1)
        earliest = evaluation.start.date() - SHIFT_MARGIN
        promises = promise_pauses(
            evaluation.session,
            evaluation.settings,
            evaluation.calendar,
            owns=evaluation.owns(Mission.owner),
        )
        window = (
            Mission.status != MissionStatus.DISPUTED,
            or_(
                Invoice.due.between(earliest - after, end - after),
                and_(
                    Mission.paused_until.is_not(None), Mission.paused_until.between(earliest, end)
                ),
                Invoice.number.in_(sorted(promises)),
            ),
        )
        query = unpaid_invoices(evaluation, *window)
        # what tells an invoice's key; only the clients with a new one are read whole (a
        # letter cites the client's other invoices, and one letter may stand for several)
        narrow: Select[*tuple[Any, ...]] = (
            select(
                Invoice.id,
                Invoice.number,
                Invoice.due,
                Mission.paused_until,
                Client.country,
                Mission.client_id,
            )
            .join(Mission, Invoice.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .where(*unpaid_of(evaluation), *window)
        )

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, number, due_on, paused_until, country, _ = row
            due_at = self._due_at(evaluation, promises, number, due_on, paused_until, country)
            if evaluation.start <= due_at <= evaluation.end:
                yield self._key(number)

        due: list[tuple[datetime, Parties]] = []
        # kept: `vanished` cancels only for an invoice paid, gone or disputed, none of which
        # the narrow read keeps
        for only in with_news(
            evaluation, narrow, keys, Invoice.id, kept=True, group=lambda row: row[-1]
        ):
            for invoice, mission, client, contact in streamed(
                evaluation.session, query.where(*only)
            ):
                due_at = self._due_at(evaluation, promises, invoice.number, invoice.due,
                                      mission.paused_until, client.country)  # fmt: skip
                if evaluation.start <= due_at <= evaluation.end:
                    due.append((due_at, Parties(invoice, mission, client, contact)))
        due.sort(key=lambda found: (found[0], found[1].invoice.number))
        clients = {found.client.id for _, found in due}
        letters = recorded_letters(evaluation, clients)
        unpaid = clients_unpaid(evaluation.session, evaluation.owns(Mission.owner), clients)
        threads = (
            invoice_thread(found.invoice.number) for each in unpaid.values() for found in each
        )
        sent = emails_sent(evaluation.session, threads)
        for due_at, parties in due:
            invoice, mission, client = parties.invoice, parties.mission, parties.client
            who = parties.contact
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            party = to_owner(owner, client.country)
            dated = due_at.astimezone(party.tz).date()
            cited = invoice.due + timedelta(days=self.options.cite_after_days)
            earlier = letters.setdefault((client.id, mission.currency, entry.key), [])
            # a notice due after this one (recorded, when this one was missed or its
            # invoice came later) did not cite it when this one fell due
            if any(number != invoice.number and on <= due_at
                   and on.astimezone(party.tz).date() >= cited
                   for number, on in earlier):  # fmt: skip
                continue  # late enough when the client was sent a notice: that one cites it
            candidates = [found for found in unpaid.get((client.id, mission.currency), [])
                          if evaluation.whose(found.owner).key == entry.key]  # fmt: skip
            letter = notice(evaluation.settings, owner, self.options, parties, dated, candidates,
                            sent)  # fmt: skip
            if letter is None:  # paid in parts to the last cent, not marked paid yet
                continue
            values = {
                "invoice": invoice,
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "letter": letter,
                "total": letter.demanded,  # the indemnity apart when not in euros
                "file_name": file_name(letter.language, invoice.number),
                "command": LETTER_COMMAND.format(number=invoice.number),
                "after_days": self.options.after_days,
                "cite_after_days": self.options.cite_after_days,
            }
            intent = self.intent(
                party,
                due_at,
                key=self._key(invoice.number),
                step=STEP,
                subject_key=invoice.number,
                subject=evaluation.templates.subject(party.language, self.name, STEP, values),
                mission_id=mission.id,
                contact_id=who.id if who else None,
                owner=entry.key,
            )
            earlier.append((invoice.number, due_at))
            yield replace(intent, letter=letter)

    def _key(self, number: str) -> str:
        return f"{self.name}:{number}"

    def _due_at(
        self, evaluation: Evaluation, promises: Mapping[str, PromisePause], number: str,
        due: date, paused_until: date | None, country: str | None,
    ) -> datetime:  # fmt: skip
        """When the formal notice of an invoice due on `due` is due: `after_days` later, past
        a promise's pause and the mission's pause."""
        party = to_owner(evaluation.owner, country)  # the group's zone and country
        nominal = due + timedelta(days=self.options.after_days)
        if (promised := promises.get(number)) is not None:
            nominal = promised.call_moved(nominal)
        if paused_until is not None:
            nominal = max(nominal, paused_until)
        return evaluation.calendar.due_at(nominal, 0, party.tz, party.countries)

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        now = invoices_now(session, (row.subject_key for row in pending), Mission.status,
                           Mission.key.label("mission"))  # fmt: skip
        reasons: dict[str, str] = {}
        for row in pending:
            found = now.get(row.subject_key)
            if (gone := settled(row.subject_key, found)) is not None:
                reasons[row.key] = gone
            elif found is not None and found.status == MissionStatus.DISPUTED:
                reasons[row.key] = (
                    f"mission {found.mission} disputed: a dispute is for talking, "
                    "not a formal notice"
                )
        return reasons


def recorded_letters(
    evaluation: Evaluation, clients: Iterable[int]
) -> dict[tuple[int, str, str], list[tuple[str, datetime]]]:
    """The formal notices recorded for `clients` and not called off, about the evaluation's
    missions (the ones they cite), by (client, currency, owner key): (its invoice, when due)."""
    found: dict[tuple[int, str, str], list[tuple[str, datetime]]] = {}
    for chunk in chunked(sorted(set(clients))):
        query = (
            select(
                Mission.client_id,
                Mission.currency,
                Mission.owner,
                FollowUp.subject_key,
                FollowUp.due_at,
            )
            .join(Invoice, Invoice.number == FollowUp.subject_key)
            .join(Mission, Invoice.mission_id == Mission.id)
            .where(
                FollowUp.rule == FormalNoticeRule.name,
                FollowUp.state.in_(STANDING_STATES),
                evaluation.owns(Mission.owner),
                Mission.client_id.in_(chunk),
            )
        )
        for client, currency, owner, number, due_at in evaluation.session.execute(query):
            key = (client, currency, evaluation.whose(owner).key)
            found.setdefault(key, []).append((number, due_at))
    return found


def letter_for(
    session: Session,
    settings: Settings,
    owner: Owner,
    owns: ColumnElement[bool],
    options: FormalNoticeOptions,
    about: Parties,
    dated: date,
) -> FormalNotice | None:
    """The formal notice about `about.invoice`, dated `dated`; None when nothing is left to pay.

    It cites that invoice and every other unpaid invoice of the client, in
    the same currency, on missions `owns` lets through, at least
    `options.cite_after_days` overdue on `dated`.
    """
    unpaid = clients_unpaid(session, owns, [about.client.id])
    candidates = unpaid.get((about.client.id, about.mission.currency), [])
    sent = emails_sent(session, (invoice_thread(found.invoice.number) for found in candidates))
    return notice(settings, owner, options, about, dated, candidates, sent)


class ClientInvoice(NamedTuple):
    """An unpaid invoice of a client, as a formal notice may cite it."""

    invoice: Invoice  # a light row (`record`)
    rate: Decimal | None  # its mission's late-payment rate
    title: str  # its mission's title
    owner: str | None  # its mission's owner


def clients_unpaid(
    session: Session, owns: ColumnElement[bool], clients: Iterable[int]
) -> dict[tuple[int, str], list[ClientInvoice]]:
    """The unpaid invoices of `clients` on missions `owns` lets through, by (client, currency),
    oldest first: what their formal notices may cite, read in one query per chunk."""
    found: dict[tuple[int, str], list[ClientInvoice]] = {}
    for chunk in chunked(sorted(set(clients))):
        query = (
            select(
                record(Invoice),
                Mission.late_payment_rate,
                Mission.title,
                Mission.owner,
                Mission.client_id,
                Mission.currency,
            )
            .join(Mission, Invoice.mission_id == Mission.id)
            .where(owns, Mission.client_id.in_(chunk), Invoice.paid.is_(None))
            .order_by(Invoice.due, Invoice.number)
        )
        for invoice, rate, title, owner, client, currency in session.execute(query):
            found.setdefault((client, currency), []).append(
                ClientInvoice(invoice, rate, title, owner)
            )
    return found


def notice(
    settings: Settings,
    owner: Owner,
    options: FormalNoticeOptions,
    about: Parties,
    dated: date,
    candidates: Sequence[ClientInvoice],
    sent: Mapping[str, int],
) -> FormalNotice | None:
    """The formal notice of `letter_for`, from the client's unpaid invoices in the currency
    (`candidates`, oldest first) and the emails sent of each invoice thread (`sent`)."""
    invoice, mission, client, contact = about.invoice, about.mission, about.client, about.contact
    consumer = client.kind == ClientKind.CONSUMER
    section = settings.late_payment
    with_penalties = not consumer and section.enabled_for(owner.country)
    cutoff = dated - timedelta(days=options.cite_after_days)
    cited: list[NoticeInvoice] = []
    for found, rate, title, _ in candidates:
        if found.id != invoice.id and found.due > cutoff:
            continue
        unpaid = unpaid_on(found.amount, found.payments, dated)
        if unpaid <= 0:
            continue
        contract = rate if rate is not None else section.contract_rate
        late = NoticeInvoice(found.number, found.issued, found.due, found.amount, unpaid,
                             days_late=max((dated - found.due).days, 0), mission=title,
                             contract_rate=contract)  # fmt: skip
        if with_penalties:
            try:
                owed = penalties_under(section, found.amount, found.due, found.payments, dated,
                                       contract_rate=rate)  # fmt: skip
            except MissingRate:  # before every rate known: the unpaid amount, no more
                owed = None
            if owed is not None:
                late = replace(late, penalties=owed.interest, indemnity=owed.indemnity)
        cited.append(late)
    if not cited:
        return None
    language = to_client(owner, None, contact.language if contact else None, client.language,
                         client.timezone, client.country).language  # fmt: skip
    return FormalNotice(
        language=language,
        creditor=Creditor(owner.name, owner.email, owner.phone, owner.address),
        debtor=Debtor(client.name, client.address, contact.name if contact else None),
        dated=dated,
        deadline=dated + timedelta(days=options.deadline_days),
        invoices=tuple(cited),
        consumer=consumer,
        currency=mission.currency,
        reminded=any(sent.get(invoice_thread(late.number)) for late in cited),
        margin_points=section.margin_points,
    )
