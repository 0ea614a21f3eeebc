"""``invoice_due``: an unpaid invoice gets a heads-up to the owner, then nudges to the client.

Steps are offsets from the due date (the README, "What it does"). A client
whose ``profile`` names one of ``[rules.invoice_due.profiles.NAME]`` climbs
that ladder instead of ``steps``; a profile the config does not have is
reported (a warning each pass, and by ``followupd check``) and the client
climbs the rule's own steps: a pass never fails for it.

Client nudges of one invoice share an email thread; its templates are told how many emails of that
thread the client was already sent (`earlier_emails`). While the mission is disputed a client nudge
becomes a call task for the owner instead (its own key, so that the email,
if already recorded, is cancelled and the call recorded); while the mission is
paused, client nudges wait for the pause to end. An invoice whose unpaid
amount is below ``min_client_amount`` gets no client nudge: one owner task
instead (key ``invoice_due:<number>:small-amount``, once per invoice, at its
first client step), to decide by hand (a call, a write-off…).

Each step of each invoice stays a follow-up of its own (key
``invoice_due:<number>:<step>``), rendered as today's single-invoice email
when recorded. With ``group_by_client`` (the default) the client nudges of
one contact are not sent one by one: delivery takes those due together and
sends them as one email (followupd.delivery.client_nudges tells how).

With ``thank_you``, an invoice paid after a client nudge of it was actually
sent gets one thank-you email (key ``invoice_due:<number>:thank-you``), due
on the day it was paid, in the thread of its nudges.

A client's promise to pay makes the client nudges wait past the promised
date, then resume where they were, and a promise not kept gives the owner
a call task (`followupd.rules.promises`, `followupd.rules.broken_promises`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.late_payment import LatePaymentSection
from followupd.config.rule_options import InvoiceDueOptions, Step
from followupd.config.settings import Settings
from followupd.domain.late_payment import MissingRate, penalties_under
from followupd.domain.payments import unpaid_on
from followupd.domain.states import Audience, Channel, ClientKind, FollowUpState, MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.broken_promises import broken_promises, promise_changed
from followupd.rules.news import with_news
from followupd.rules.parties import Party, route_money_step, to_client, to_owner
from followupd.rules.promises import PromisePause, promise_pauses
from followupd.rules.replies import ReplyPause, reply_pauses
from followupd.rules.threads import emails_sent, invoice_thread
from followupd.rules.unpaid import invoices_now, settled, unpaid_invoices, unpaid_of
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, FollowUp, Invoice, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import columns, record, streamed

log = logging.getLogger("followupd.rules")

# A due date moves forward to the next working day: rarely more than a week,
# this bounds the candidates a query must consider.
SHIFT_MARGIN = timedelta(days=21)
SMALL_AMOUNT = "small-amount"  # the owner task that stands for the client nudges of a small sum
THANK_YOU = "thank-you"  # the client email after an invoice nudged by email is paid


class StepDue(NamedTuple):
    """A step of an invoice due in a window: where and when it goes, under which key."""

    step: str
    party: Party
    key: str
    template: str
    nominal: date
    due_at: datetime


@dataclass(frozen=True)
class OwedToDate:
    """The late-payment penalties a nudge states: interest to date and the fixed indemnity."""

    interest: Decimal
    indemnity: Decimal
    days_late: int

    @property
    def total(self) -> Decimal:
        return self.interest + self.indemnity


def penalties_owed(
    section: LatePaymentSection | None, invoice: Any, mission: Any, client: Any, day: date,
    level: int,
) -> OwedToDate | None:  # fmt: skip
    """What a nudge states of the late-payment penalties owed on `day`; None: nothing.

    French law (L441-10, D441-5, followupd.domain.late_payment): from the second
    client step of a ladder (`level` 2 and up) on, to a business client only,
    where ``[late_payment]`` applies (`section`, None where it does not).
    """
    if section is None or level < 2 or client.kind == ClientKind.CONSUMER:
        return None
    try:
        owed = penalties_under(section, invoice.amount, invoice.due, invoice.payments, day,
                               contract_rate=mission.late_payment_rate)  # fmt: skip
    except MissingRate:  # a day before every rate known: say nothing rather than guess
        return None
    if owed.days_late <= 0 or not owed.total_owed:
        return None
    return OwedToDate(owed.interest, owed.indemnity, owed.days_late)


def late_payment_for(settings: Settings, country: str) -> LatePaymentSection | None:
    """``[late_payment]`` where it applies to an owner of `country`, else None."""
    section = settings.late_payment
    return section if section.enabled_for(country) else None


def client_level(ladder: Sequence[Step], step: str) -> int:
    """Where `step` stands among the client steps of `ladder`: 1 for the first; 0 if not one."""
    names = [found.name for found in ladder if found.audience == "client"]
    return names.index(step) + 1 if step in names else 0


def unknown_profiles(session: Session, known: set[str]) -> list[str]:
    """The clients whose ``profile`` is none of `known`, as ``client KEY: profile 'NAME'``."""
    query = (
        select(Client.key, Client.profile)
        .where(Client.profile.is_not(None), Client.profile.not_in(sorted(known)))
        .order_by(Client.key)
    )
    return [f"client {key}: profile {profile!r}" for key, profile in session.execute(query)]


def _with_emails_sent(
    session: Session, query: Select[Invoice, Mission, Client, Contact]
) -> Iterator[tuple[Invoice, Mission, Client, Contact, int]]:
    """The rows of `query`, streamed, each with the client emails sent so far about its invoice."""
    for batch in streamed(session, query).partitions():
        sent = emails_sent(session, [invoice_thread(invoice.number) for invoice, *_ in batch])
        for invoice, mission, client, who in batch:
            yield invoice, mission, client, who, sent.get(invoice_thread(invoice.number), 0)


def _kept(route: StepDue, mission: Any, heads_ups: AbstractSet[str]) -> bool:
    """Whether `vanished` would keep a pending follow-up keyed as `route`, its invoice being
    unpaid (as the narrow read has it): not a heads-up a client nudge sent may call off
    (`_nudged`, which goes by step), and not while the mission is disputed, which calls
    off a client email of that key (the step's audience may have changed since it was
    recorded). A broken promise's reminder and a thank-you are never routes."""
    return route.step not in heads_ups and mission.status != MissionStatus.DISPUTED


class InvoiceDue(Rule[InvoiceDueOptions]):
    name = "invoice_due"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        if self.options.thank_you:
            yield from self._thanks(evaluation)
        offsets = [step.offset_days for steps in self.options.ladders() for step in steps]
        if not offsets:
            return
        earliest = evaluation.start.date() - SHIFT_MARGIN - timedelta(days=max(offsets))
        latest = evaluation.end.date() + timedelta(days=1 - min(offsets))
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
        due_soon = or_(
            Invoice.number.in_(sorted(subject for _, subject in replied)),
            Invoice.number.in_(sorted(promises)),
            Invoice.due.between(earliest, latest),
            and_(
                Mission.paused_until.is_not(None),
                Mission.paused_until.between(earliest, evaluation.end.date()),
            ),
        )
        query = unpaid_invoices(evaluation, due_soon)
        templates = evaluation.templates
        minimum = self.options.min_client_amount
        late = late_payment_for(evaluation.settings, evaluation.owner.country)
        unknown: set[str] = set()
        # what tells an invoice's keys; only the invoices with a new one are read whole
        contact = aliased(Contact)
        narrow: Select[*tuple[Any, ...]] = (
            select(
                Invoice.id,
                # light rows, read without the ORM (`streamed`)
                columns("invoice", Invoice.number, Invoice.due, Invoice.amount, Invoice.payments),
                columns("mission", Mission.status, Mission.paused_until, Mission.owner),
                columns(
                    "client",
                    Client.key,
                    Client.profile,
                    Client.language,
                    Client.timezone,
                    Client.country,
                ),
                # None without a contact or without its email: `route_money_step` reads both
                # as no address to write to
                columns("contact", contact.email, contact.language),
            )
            .join(Mission, Invoice.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(*unpaid_of(evaluation), due_soon)
        )

        heads_ups = self._heads_up_steps()

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, invoice, mission, client, who = row
            for route in self._routes(
                evaluation, invoice, mission, client, who, replied, promises, unknown
            ):
                if evaluation.due is not None and _kept(route, mission, heads_ups):
                    evaluation.due.add(route.key)
                yield route.key

        # not kept as a whole (`_kept` tells which keys are)
        for only in with_news(evaluation, narrow, keys, Invoice.id, kept=False):
            found = _with_emails_sent(evaluation.session, query.where(*only))
            for invoice, mission, client, who, sent in found:
                thread = invoice_thread(invoice.number)
                entry = evaluation.whose(mission.owner)
                owner = entry.person
                ladder = self.options.ladder(client.profile)
                values = {
                    "invoice": invoice,
                    "mission": mission,
                    "client": client,
                    "contact": who,
                    "owner": owner,
                    "earlier_emails": sent,
                    "promised": invoice.promised if invoice.number in promises else None,
                }
                for route in self._routes(
                    evaluation, invoice, mission, client, who, replied, promises, unknown
                ):
                    level = client_level(ladder, route.step)
                    nominal = route.nominal
                    step_values = {
                        **values,
                        "step": route.step,
                        "level": level,
                        # on the day it goes: a promise or a reply may have moved it past a
                        # payment
                        "unpaid": unpaid_on(invoice.amount, invoice.payments, nominal),
                        "minimum": minimum,
                        "penalties": penalties_owed(late, invoice, mission, client, nominal, level),
                    }
                    party = route.party
                    yield self.intent(
                        party,
                        route.due_at,
                        key=route.key,
                        step=SMALL_AMOUNT if route.template == SMALL_AMOUNT else route.step,
                        subject_key=invoice.number,
                        subject=templates.subject(
                            party.language, self.name, route.template, step_values
                        ),
                        mission_id=mission.id,
                        contact_id=who.id if who else None,
                        thread_key=thread if party.audience == Audience.CLIENT else None,
                        owner=entry.key,
                    )
        yield from broken_promises(self, evaluation, promises)
        for problem in sorted(unknown):
            log.warning(
                "invoice_due: %s is not in [rules.invoice_due.profiles]: the rule's own "
                "steps are used",
                problem,
            )

    def _routes(
        self,
        evaluation: Evaluation,
        invoice: Any,
        mission: Any,
        client: Any,
        who: Any,
        replied: Mapping[tuple[str, str], ReplyPause],
        promises: Mapping[str, PromisePause],
        unknown: set[str],
    ) -> Iterator[StepDue]:
        """The steps of an invoice due in the evaluation's window, where and when each goes.

        Reads of the rows only what a narrow read gives (`evaluate`); a client whose
        profile the rule does not have goes into `unknown`.
        """
        owner = evaluation.whose(mission.owner).person
        ladder = self.options.ladder(client.profile)
        if client.profile and client.profile not in self.options.profiles:
            unknown.add(f"client {client.key}: profile {client.profile!r}")
        minimum = self.options.min_client_amount
        small = False  # its small-amount task yielded already
        # a step is due on its nominal day or after (the next working day, moved by a pause,
        # a promise or a reply): one whose day is past the window's end, in any zone, is not
        # due in the window
        last = evaluation.end.date() + timedelta(days=1)
        for step in ladder:
            nominal = invoice.due + timedelta(days=step.offset_days)
            if nominal > last:
                continue
            audience = Audience(step.audience)
            if (
                audience == Audience.CLIENT
                and unpaid_on(invoice.amount, invoice.payments, nominal) < minimum
            ):
                if small:
                    continue
                party, key, template_step = (
                    to_owner(owner, client.country),
                    f"{self.name}:{invoice.number}:{SMALL_AMOUNT}",
                    SMALL_AMOUNT,
                )
            else:
                party, key, template_step, nominal = route_money_step(
                    owner,
                    audience,
                    f"{self.name}:{invoice.number}:{step.name}",
                    step.name,
                    nominal,
                    mission,
                    client,
                    who,
                    replied.get((self.name, invoice.number)),
                    promises.get(invoice.number),
                )
            due_at = evaluation.calendar.due_at(nominal, 0, party.tz, party.countries)
            if not evaluation.start <= due_at <= evaluation.end:
                continue
            small = small or template_step == SMALL_AMOUNT
            yield StepDue(step.name, party, key, template_step, nominal, due_at)

    def _thanks(self, evaluation: Evaluation) -> Iterator[Intent]:
        """A thank-you to the contact of each invoice paid after a client nudge of it went."""
        contact = aliased(Contact)
        nudged = exists().where(
            FollowUp.rule == self.name,
            FollowUp.subject_key == Invoice.number,
            FollowUp.audience == Audience.CLIENT,
            FollowUp.channel == Channel.EMAIL,
            FollowUp.state == FollowUpState.SENT,
            FollowUp.step != THANK_YOU,
        )
        query = (
            select(record(Invoice), record(Mission), record(Client), record(contact, "contact"))
            .join(Mission, Invoice.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .join(contact, Mission.contact_id == contact.id)
            .where(
                evaluation.owns(Mission.owner),
                Invoice.paid.between(
                    evaluation.start.date() - timedelta(days=1), evaluation.end.date()
                ),
                Mission.status != MissionStatus.DISPUTED,
                contact.email.is_not(None),
                nudged,
            )
        )
        for invoice, mission, client, who in streamed(evaluation.session, query):
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            party = to_client(owner, who.email, who.language, client.language,
                              client.timezone, client.country)  # fmt: skip
            paid = invoice.paid or evaluation.end.date()  # not None: the query says so
            due_at = evaluation.calendar.due_at(paid, 0, party.tz, party.countries)
            if not evaluation.start <= due_at <= evaluation.end:
                continue
            values = {"invoice": invoice, "mission": mission, "client": client,
                      "contact": who, "owner": owner}  # fmt: skip
            yield self.intent(
                party,
                due_at,
                key=f"{self.name}:{invoice.number}:{THANK_YOU}",
                step=THANK_YOU,
                subject_key=invoice.number,
                subject=evaluation.templates.subject(party.language, self.name, THANK_YOU, values),
                mission_id=mission.id,
                contact_id=who.id,
                thread_key=invoice_thread(invoice.number),
                owner=entry.key,
            )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        now = invoices_now(session, (row.subject_key for row in pending), Mission.status)
        reasons: dict[str, str] = {}
        for row in pending:
            found = now.get(row.subject_key)
            if row.step == THANK_YOU:
                if found is None:
                    reasons[row.key] = f"invoice {row.subject_key} no longer exists"
                elif found.paid is None:
                    reasons[row.key] = f"invoice {row.subject_key} no longer marked paid"
            elif (gone := settled(row.subject_key, found)) is not None:
                reasons[row.key] = gone
            elif (
                found is not None
                and row.audience == Audience.CLIENT
                and (found.status == MissionStatus.DISPUTED)
            ):
                reasons[row.key] = "mission disputed: a call task replaces the email"
        reasons.update(self._nudged(session, [row for row in pending if row.key not in reasons]))
        reasons.update(promise_changed(session, [row for row in pending if row.key not in reasons]))
        return reasons

    def _heads_up_steps(self) -> set[str]:
        """The names of the owner steps on or before the due date, in any ladder."""
        return {step.name for ladder in self.options.ladders() for step in ladder
                if step.audience == "owner" and step.offset_days <= 0}  # fmt: skip

    def _nudged(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        """The owner's heads-ups (an owner step before or on the due date) of invoices the
        client has since been sent a nudge about: their moment passed."""
        before = self._heads_up_steps()
        heads_up = [row for row in pending if row.audience == Audience.OWNER and row.step in before]
        nudged: dict[str, datetime] = {}
        for chunk in chunked(sorted({row.subject_key for row in heads_up})):
            query = select(FollowUp.subject_key, FollowUp.sent_at).where(
                FollowUp.rule == self.name,
                FollowUp.subject_key.in_(chunk),
                FollowUp.audience == Audience.CLIENT,
                FollowUp.state == FollowUpState.SENT,
                FollowUp.step != THANK_YOU,
            )
            for number, sent_at in session.execute(query):
                if sent_at is not None:
                    nudged[number] = min(sent_at, nudged.get(number, sent_at))
        return {
            row.key: f"invoice {row.subject_key}: the client was sent a nudge on "
            f"{nudged[row.subject_key].date()}, the heads-up's moment has passed"
            for row in heads_up
            if row.subject_key in nudged
        }
