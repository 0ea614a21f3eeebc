"""``deposit_due``: a mission's deposit (acompte) is asked for, nudged, then called about.

The rule fires while a mission that is not closed has a `deposit_amount`
(above zero) and no `deposit_paid`. Steps are offsets from the anchor: the
mission's start, or the contract's signature when it came after the start.
Client steps are emails to the mission's contact, in its language, in one
thread (its templates are told how many of its emails were already sent,
`earlier_emails`); the owner's step is a call task carrying the contact's phone number.

A client step becomes a call task for the owner (same key plus ``:call``)
while the mission is disputed, and when the mission has no contact with an
email address: talking money in writing during a dispute hardens positions,
and an email nobody can receive helps no one. While the mission is paused,
client emails wait for the pause to end; call tasks do not wait.

A pending client email is cancelled when a dispute starts (the call task
replaces it) or when the contact loses its address. A pause never cancels: it
delays, and an email already recorded waits for the end of the pause at
delivery, so nothing is lost. Every pending step is cancelled once the deposit
is paid or no longer asked for, or the mission is closed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import and_, case, or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.rule_options import DepositDueOptions, Step
from followupd.domain.states import Audience, MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.parties import route_money_step
from followupd.rules.replies import ReplyPause, reply_pauses
from followupd.rules.threads import deposit_thread, emails_sent
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

# A due date moves forward to the next working day: rarely more than a week,
# this bounds the candidates a query must consider.
SHIFT_MARGIN = timedelta(days=21)
# Statuses under which a deposit is still expected (everything but closed).
OPEN_STATUSES = (
    MissionStatus.PROPOSED,
    MissionStatus.ACTIVE,
    MissionStatus.ON_HOLD,
    MissionStatus.DISPUTED,
)

# The anchor of every step: the start, or the contract's signature if later.
ANCHOR = case(
    (Mission.contract_signed > Mission.start, Mission.contract_signed),
    else_=Mission.start,
)


def anchor_of(mission: Mission) -> date:
    signed = mission.contract_signed
    return signed if signed is not None and signed > mission.start else mission.start


class DepositDue(Rule[DepositDueOptions]):
    name = "deposit_due"

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
        query = (
            select(record(Mission), record(Client), record(contact, "contact"))
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(
                evaluation.owns(Mission.owner),
                Mission.deposit_amount > 0,
                Mission.deposit_paid.is_(None),
                Mission.status.in_(OPEN_STATUSES),
                or_(
                    Mission.key.in_(sorted(subject for _, subject in replied)),
                    ANCHOR.between(earliest, latest),
                    and_(
                        Mission.paused_until.is_not(None),
                        Mission.paused_until.between(earliest, evaluation.end.date()),
                    ),
                ),
            )
        )
        for batch in streamed(evaluation.session, query).partitions():
            yield from self._steps(evaluation, steps, replied, batch)

    def _steps(
        self,
        evaluation: Evaluation,
        steps: Sequence[Step],
        replied: Mapping[tuple[str, str], ReplyPause],
        candidates: Sequence[tuple[Mission, Client, Contact]],
    ) -> Iterator[Intent]:
        """The intents of `steps` for some of the candidate missions, with their contact."""
        templates = evaluation.templates
        threads = [deposit_thread(mission.key) for mission, *_ in candidates]
        sent = emails_sent(evaluation.session, threads)
        for mission, client, who in candidates:
            anchor = anchor_of(mission)
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            thread = deposit_thread(mission.key)
            values = {
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "earlier_emails": sent.get(thread, 0),
            }
            for step in steps:
                party, key, template_step, nominal = route_money_step(
                    owner,
                    Audience(step.audience),
                    f"{self.name}:{mission.key}:{step.name}",
                    step.name,
                    anchor + timedelta(days=step.offset_days),
                    mission,
                    client,
                    who,
                    replied.get((self.name, mission.key)),
                )
                due_at = evaluation.calendar.due_at(nominal, 0, party.tz, party.countries)
                if not evaluation.start <= due_at <= evaluation.end:
                    continue
                yield self.intent(
                    party,
                    due_at,
                    key=key,
                    step=step.name,
                    subject_key=mission.key,
                    subject=templates.subject(
                        party.language, self.name, template_step, {**values, "step": step.name}
                    ),
                    mission_id=mission.id,
                    contact_id=who.id if who else None,
                    thread_key=thread if party.audience == Audience.CLIENT else None,
                    owner=entry.key,
                )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        state: dict[str, _State] = {}
        for chunk in chunked(sorted({row.subject_key for row in pending})):
            query = (
                select(
                    Mission.key,
                    Mission.status,
                    Mission.deposit_amount,
                    Mission.deposit_paid,
                    Contact.email,
                )
                .outerjoin(Contact, Mission.contact_id == Contact.id)
                .where(Mission.key.in_(chunk))
            )
            for key, status, amount, paid, email in session.execute(query):
                state[key] = _State(status, amount, paid, email)
        reasons: dict[str, str] = {}
        for row in pending:
            reason = _why_gone(row, state.get(row.subject_key))
            if reason is not None:
                reasons[row.key] = reason
        return reasons


class _State(NamedTuple):
    status: MissionStatus
    amount: Decimal | None
    paid: date | None
    email: str | None


def _why_gone(row: PendingRow, found: _State | None) -> str | None:
    mission = row.subject_key
    if found is None:
        return f"mission {mission} no longer exists"
    if found.paid is not None:
        return f"deposit of {mission} paid on {found.paid.isoformat()}"
    if found.status == MissionStatus.CLOSED:
        return f"mission {mission} closed"
    if not found.amount:
        return f"no deposit is asked for {mission} any more"
    if row.audience != Audience.CLIENT:
        return None
    if found.status == MissionStatus.DISPUTED:
        return f"mission {mission} disputed: a call task replaces the email"
    if not found.email:
        return f"the contact of {mission} has no email address: a call task replaces the email"
    return None
