"""``mission_closeout``: once a mission has ended, the bilan, the bon à payer, the last invoice.

`after_working_days` working days after a mission's end date, the owner is
reminded, by email and in the calendar, to schedule the bilan de mission with
the contact and to ask for the bon à payer (step ``bilan``) and, when no
invoice of the mission was issued on or after its end date, to send the final
invoice (step ``final-invoice``).

Choices the documented contract leaves open:

- The anchor is always the end date, whether the date has passed or the
  mission was closed. A closed mission without an end date gets no close-out:
  the store does not record when a status changed, and anchoring on the
  instant of evaluation would make the due time depend on when the rule
  looks. Set the end date to get the close-out. A mission closed before its
  end date has its close-out after that date.
- Every status but ``proposed`` closes out: a mission on hold or in dispute
  that reached its end still needs its bilan and its last invoice.
- Working days are counted strictly after the end, on the calendars of the
  owner and the client: a mission ending on a Friday or a Saturday closes out
  on the Monday (with the default of one working day).
- The final invoice reminder is cancelled once an invoice issued on or after
  the end exists; the bilan reminder only if the mission disappears.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Exists, and_, exists, select
from sqlalchemy.orm import Session, aliased

from followupd.config.owners import Owner
from followupd.config.rule_options import MissionCloseoutOptions
from followupd.domain.states import MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.news import with_news
from followupd.rules.parties import Party, to_owner, to_owner_by_email
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Invoice, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

# A day moves forward to the next working day: rarely more than a week,
# this bounds the candidates a query must consider.
SHIFT_MARGIN = timedelta(days=21)
# Statuses of a mission that closes out when its end has passed.
CLOSING = (
    MissionStatus.ACTIVE,
    MissionStatus.ON_HOLD,
    MissionStatus.DISPUTED,
    MissionStatus.CLOSED,
)
BILAN, FINAL_INVOICE = "bilan", "final-invoice"


class MissionCloseout(Rule[MissionCloseoutOptions]):
    name = "mission_closeout"

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        count = self.options.after_working_days
        # the close-out day is at least `count` days after the end, and at most
        # a week per working day (a one-day working week) plus holidays
        reach = timedelta(days=7 * (count + 1)) + SHIFT_MARGIN
        earliest = evaluation.start.date() - reach
        latest = evaluation.end.date() + timedelta(days=1 - count)
        invoiced = exists().where(Invoice.mission_id == Mission.id, Invoice.issued >= Mission.end)
        candidates = (
            evaluation.owns(Mission.owner),
            Mission.end.is_not(None),
            Mission.status.in_(CLOSING),
            Mission.end.between(earliest, latest),
        )
        # what tells a mission's keys; only the missions with a new one are read whole
        narrow = (
            select(Mission.id, Mission.key, Mission.end, Mission.owner, Client.country, invoiced)
            .join(Client, Mission.client_id == Client.id)
            .where(*candidates)
        )

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, key, end, owner, country, has_final_invoice = row
            parties = self._parties(evaluation.whose(owner).person, country)
            if self._due_at(evaluation, parties, end) is not None:
                for step in self._steps(has_final_invoice):
                    for party in parties:
                        yield self._key(key, step, party)

        for only in with_news(evaluation, narrow, keys, Mission.id, kept=True):
            yield from self._intents(evaluation, invoiced, *candidates, *only)

    def _key(self, mission: str, step: str, party: Party) -> str:
        return f"{self.name}:{mission}:{step}:{party.channel}"

    @staticmethod
    def _parties(owner: Owner, country: str | None) -> tuple[Party, Party]:
        """The email and the task to the owner: they share their zone, holidays and language."""
        return to_owner_by_email(owner, country), to_owner(owner, country)

    @staticmethod
    def _steps(has_final_invoice: bool) -> tuple[str, ...]:
        return (BILAN,) if has_final_invoice else (BILAN, FINAL_INVOICE)

    def _due_at(
        self, evaluation: Evaluation, parties: tuple[Party, Party], end: date
    ) -> datetime | None:
        """When the close-out of a mission that ended on `end` is due, if in the window."""
        tz, countries = parties[0].tz, parties[0].countries
        day = evaluation.calendar.add_working_days(end, self.options.after_working_days, countries)
        due_at = evaluation.calendar.due_at(day, 0, tz, countries)
        return due_at if evaluation.start <= due_at <= evaluation.end else None

    def _intents(
        self, evaluation: Evaluation, invoiced: Exists, *which: ColumnElement[bool]
    ) -> Iterator[Intent]:
        """The intents of the missions `which` keeps (`invoiced`: it has its final invoice)."""
        contact = aliased(Contact)
        query = (
            select(
                record(Mission),
                record(Client),
                record(contact, "contact"),
                invoiced.label("invoiced"),
            )
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(*which)
        )
        templates = evaluation.templates
        for mission, client, who, has_final_invoice in streamed(evaluation.session, query):
            assert mission.end is not None
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            parties = self._parties(owner, client.country)
            due_at = self._due_at(evaluation, parties, mission.end)
            if due_at is None:
                continue
            language = parties[0].language
            values = {"mission": mission, "client": client, "contact": who, "owner": owner}
            for step in self._steps(has_final_invoice):
                subject = templates.subject(language, self.name, step, {**values, "step": step})
                for party in parties:
                    yield self.intent(
                        party,
                        due_at,
                        key=self._key(mission.key, step, party),
                        step=step,
                        subject_key=mission.key,
                        subject=subject,
                        mission_id=mission.id,
                        contact_id=who.id if who else None,
                        owner=entry.key,
                    )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        missions: set[str] = set()
        invoiced: dict[str, tuple[date, str]] = {}  # mission -> first invoice on or after the end
        for chunk in chunked(sorted({row.subject_key for row in pending})):
            query = (
                select(Mission.key, Invoice.issued, Invoice.number)
                .outerjoin(
                    Invoice,
                    and_(Invoice.mission_id == Mission.id, Invoice.issued >= Mission.end),
                )
                .where(Mission.key.in_(chunk))
            )
            for key, issued, number in session.execute(query):
                missions.add(key)
                if issued is not None and number is not None:
                    invoiced[key] = min(invoiced.get(key, (issued, number)), (issued, number))
        reasons: dict[str, str] = {}
        for row in pending:
            mission = row.subject_key
            if mission not in missions:
                reasons[row.key] = f"mission {mission} no longer exists"
            elif row.step == FINAL_INVOICE and mission in invoiced:
                issued, number = invoiced[mission]
                reasons[row.key] = f"invoice {number} of {mission} issued on {issued.isoformat()}"
        return reasons
