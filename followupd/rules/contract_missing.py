"""``contract_missing``: a proposed or active mission without a signed contract.

Work should not start without a contract (DOMAIN.md, sources 003 and 004),
so the owner is reminded from `days_before_start` days before the start,
then every `every_days` days while the contract stays unsigned, by email and
in the calendar: two follow-ups per reminder, keyed by the reminder's nominal
date and the channel (``contract_missing:acme-audit:2026-08-25:email``).

Reminders keep coming after the start, and after the end, as long as the
mission is proposed or active: a mission run without a contract stays a risk
until it is signed. Putting the mission on hold, disputing or closing it
stops them, like signing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from followupd.config.rule_options import ContractMissingOptions
from followupd.domain.states import MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.parties import to_owner, to_owner_by_email
from followupd.rules.periods import cadence_dates
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

# A nominal date moves forward to the next working day: rarely more than a
# week, this bounds the dates a window must consider.
SHIFT_MARGIN = timedelta(days=21)
# Statuses under which a contract is expected.
EXPECTING = (MissionStatus.PROPOSED, MissionStatus.ACTIVE)
STEP = "reminder"
STATUS_WORDS = {
    MissionStatus.ON_HOLD: "put on hold",
    MissionStatus.DISPUTED: "disputed",
    MissionStatus.CLOSED: "closed",
}


class ContractMissing(Rule[ContractMissingOptions]):
    name = "contract_missing"
    repeats = True

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        before = timedelta(days=self.options.days_before_start)
        earliest = evaluation.start.date() - SHIFT_MARGIN
        latest = evaluation.end.date() + timedelta(days=1)
        contact = aliased(Contact)
        query = (
            select(record(Mission), record(Client), record(contact, "contact"))
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(
                evaluation.owns(Mission.owner),
                Mission.contract_signed.is_(None),
                Mission.status.in_(EXPECTING),
                Mission.start <= latest + before,
            )
        )
        templates = evaluation.templates
        for mission, client, who in streamed(evaluation.session, query):
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            # the email and the task share their zone, holidays and language
            parties = (to_owner_by_email(owner, client.country), to_owner(owner, client.country))
            tz, countries, language = parties[0].tz, parties[0].countries, parties[0].language
            first = mission.start - before
            subject = None
            for nominal in cadence_dates(first, self.options.every_days, earliest, latest):
                due_at = evaluation.calendar.due_at(nominal, 0, tz, countries)
                if not evaluation.start <= due_at <= evaluation.end:
                    continue
                if subject is None:
                    values = {"mission": mission, "client": client, "contact": who}
                    subject = templates.subject(
                        language, self.name, STEP, {**values, "owner": owner, "step": STEP}
                    )
                for party in parties:
                    yield self.intent(
                        party,
                        due_at,
                        key=f"{self.name}:{mission.key}:{nominal.isoformat()}:{party.channel}",
                        step=STEP,
                        subject_key=mission.key,
                        subject=subject,
                        mission_id=mission.id,
                        contact_id=who.id if who else None,
                        owner=entry.key,
                    )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        state: dict[str, _State] = {}
        for chunk in chunked(sorted({row.subject_key for row in pending})):
            query = select(Mission.key, Mission.status, Mission.contract_signed).where(
                Mission.key.in_(chunk)
            )
            for key, status, signed in session.execute(query):
                state[key] = _State(status, signed)
        reasons: dict[str, str] = {}
        for row in pending:
            mission, found = row.subject_key, state.get(row.subject_key)
            if found is None:
                reasons[row.key] = f"mission {mission} no longer exists"
            elif found.signed is not None:
                reasons[row.key] = f"contract of {mission} signed on {found.signed.isoformat()}"
            elif found.status not in EXPECTING:
                reasons[row.key] = (
                    f"mission {mission} {STATUS_WORDS.get(found.status, found.status)}"
                )
        return reasons


class _State(NamedTuple):
    status: MissionStatus
    signed: date | None
