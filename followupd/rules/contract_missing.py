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
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased

from followupd.config.owners import Owner
from followupd.config.rule_options import ContractMissingOptions
from followupd.domain.states import MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.news import with_news
from followupd.rules.parties import Party, to_owner, to_owner_by_email
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
        latest = evaluation.end.date() + timedelta(days=1)
        candidates = (
            evaluation.owns(Mission.owner),
            Mission.contract_signed.is_(None),
            Mission.status.in_(EXPECTING),
            Mission.start <= latest + before,
        )
        # what tells a mission's keys; only the missions with a new one are read whole
        narrow = (
            select(Mission.id, Mission.key, Mission.start, Mission.owner, Client.country)
            .join(Client, Mission.client_id == Client.id)
            .where(*candidates)
        )

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, key, start, owner, country = row
            parties = self._parties(evaluation.whose(owner).person, country)
            for nominal, _ in self._periods(evaluation, parties, start):
                for party in parties:
                    yield self._key(key, nominal, party)

        for only in with_news(evaluation, narrow, keys, Mission.id, kept=True):
            yield from self._intents(evaluation, *candidates, *only)

    def _key(self, mission: str, nominal: date, party: Party) -> str:
        return f"{self.name}:{mission}:{nominal.isoformat()}:{party.channel}"

    @staticmethod
    def _parties(owner: Owner, country: str | None) -> tuple[Party, Party]:
        """The email and the task to the owner: they share their zone, holidays and language."""
        return to_owner_by_email(owner, country), to_owner(owner, country)

    def _periods(
        self, evaluation: Evaluation, parties: tuple[Party, Party], start: date
    ) -> Iterator[tuple[date, datetime]]:
        """The periods of a mission starting on `start` due in the evaluation's window:
        (nominal date, due time)."""
        earliest = evaluation.start.date() - SHIFT_MARGIN
        latest = evaluation.end.date() + timedelta(days=1)
        tz, countries = parties[0].tz, parties[0].countries
        first = start - timedelta(days=self.options.days_before_start)
        for nominal in cadence_dates(first, self.options.every_days, earliest, latest):
            due_at = evaluation.calendar.due_at(nominal, 0, tz, countries)
            if evaluation.start <= due_at <= evaluation.end:
                yield nominal, due_at

    def _intents(self, evaluation: Evaluation, *which: ColumnElement[bool]) -> Iterator[Intent]:
        """The intents of the missions `which` keeps."""
        contact = aliased(Contact)
        query = (
            select(record(Mission), record(Client), record(contact, "contact"))
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(*which)
        )
        templates = evaluation.templates
        for mission, client, who in streamed(evaluation.session, query):
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            parties = self._parties(owner, client.country)
            language = parties[0].language
            subject = None
            for nominal, due_at in self._periods(evaluation, parties, mission.start):
                if subject is None:
                    values = {"mission": mission, "client": client, "contact": who}
                    subject = templates.subject(
                        language, self.name, STEP, {**values, "owner": owner, "step": STEP}
                    )
                for party in parties:
                    yield self.intent(
                        party,
                        due_at,
                        key=self._key(mission.key, nominal, party),
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
