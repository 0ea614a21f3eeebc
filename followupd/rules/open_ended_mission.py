"""``open_ended_mission``: an accompaniment mission must be framed in time, or it never ends.

A mission is *open-ended* when it is active, has ``deliverables = false``, and
either has no end date or ends more than ``max_months`` (6) calendar months
after its start (``end > start + max_months months``; ending exactly then is
not over). Such a mission gets an email to the owner (a calendar item for an owner
who wants no reminder by email, `reminders_by_email = "off"`):

- first on its *limit date*, ``start + max_months months`` (the day of the
  month kept, or the month's last day when it has none: 31 August + 6 months
  is 28 February). Before that an accompaniment mission is normally still
  finding its shape; by then it should have an end date or deliverables;
- then every ``every_days`` (90) days after the limit date, while it stays so;
- never after its end date, when it has one: past it, ``mission_closeout``
  takes over.
- ``paused_until`` does not hold it back: it is addressed to the owner, and
  the contract pauses client emails only.

The nominal date is the period and goes into the key:
``open_ended_mission:<mission>:<nominal ISO date>``. A pending reminder is
cancelled when deliverables are set, when an end date within ``max_months`` is
set, when the mission ends before the reminder, when the mission stops being
active, or when a new start date moves the schedule.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.owners import Owner
from followupd.config.rule_options import OpenEndedMissionOptions
from followupd.domain.business_calendar import zone
from followupd.domain.months import add_months
from followupd.domain.states import MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.news import with_news
from followupd.rules.parties import Party, to_owner, to_owner_by_email
from followupd.rules.periods import cadence_dates, period_key
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Mission
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

# A nominal date moves forward to the next working day: rarely more than a week,
# this bounds the periods a window must consider.
SHIFT_MARGIN = timedelta(days=21)
STEP = "reminder"


def _party(owner: Owner, client_country: str | None) -> Party:
    """Who gets the reminder, and how: an email (alone, or in the digest); a calendar item
    for an owner who wants no reminder by email (`reminders_by_email = "off"`), whom it
    would otherwise never reach. Its key is the same either way: switching does not
    repeat a period."""
    if owner.reminders_by_email == "off":
        return to_owner(owner, client_country)
    return to_owner_by_email(owner, client_country)


class OpenEndedMission(Rule[OpenEndedMissionOptions]):
    name = "open_ended_mission"
    repeats = True

    def limit(self, start: date) -> date:
        """The day a mission started on `start` should be framed by."""
        return add_months(start, self.options.max_months)

    def schedule(self, start: date, end: date | None, earliest: date, latest: date) -> list[date]:
        """The nominal dates in ``[earliest, latest]``; none if the mission is framed."""
        limit = self.limit(start)
        if end is not None and end <= limit:
            return []
        until = latest if end is None else min(latest, end)
        return cadence_dates(limit, self.options.every_days, earliest, until)

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        tz = zone(evaluation.owner.timezone)
        earliest = evaluation.start.astimezone(tz).date() - SHIFT_MARGIN
        latest = evaluation.end.astimezone(tz).date()
        # limit(start) <= latest needs start <= latest - max_months months, give
        # or take the few days a month's end clamps; the exact test is in Python.
        started_by = add_months(latest, -self.options.max_months) + timedelta(days=3)
        candidates = (
            evaluation.owns(Mission.owner),
            Mission.status == MissionStatus.ACTIVE,
            Mission.deliverables.is_(False),
            Mission.start <= started_by,
            or_(Mission.end.is_(None), Mission.end >= earliest),
        )
        # what tells a mission's keys; only the missions with a new one are read whole
        narrow = (
            select(
                Mission.id, Mission.key, Mission.start, Mission.end, Mission.owner, Client.country
            )
            .join(Client, Mission.client_id == Client.id)
            .where(*candidates)
        )

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, key, start, end, owner, country = row
            party = _party(evaluation.whose(owner).person, country)
            for nominal, _ in self._periods(evaluation, party, start, end, earliest, latest):
                yield period_key(self.name, key, nominal)

        for only in with_news(evaluation, narrow, keys, Mission.id, kept=True):
            yield from self._intents(evaluation, earliest, latest, *candidates, *only)

    def _periods(
        self,
        evaluation: Evaluation,
        party: Party,
        start: date,
        end: date | None,
        earliest: date,
        latest: date,
    ) -> Iterator[tuple[date, datetime]]:
        """The periods of a mission due in the evaluation's window: (nominal date, due time)."""
        for nominal in self.schedule(start, end, earliest, latest):
            due_at = evaluation.calendar.due_at(nominal, 0, party.tz, party.countries)
            if evaluation.start <= due_at <= evaluation.end:
                yield nominal, due_at

    def _intents(
        self, evaluation: Evaluation, earliest: date, latest: date, *which: ColumnElement[bool]
    ) -> Iterator[Intent]:
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
            nominals = self.schedule(mission.start, mission.end, earliest, latest)
            if not nominals:
                continue
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            party = _party(owner, client.country)
            values = {
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "limit": self.limit(mission.start),
                "max_months": self.options.max_months,
                "every_days": self.options.every_days,
            }
            # one subject for every period of a mission: it names the mission, not the period
            subject = templates.subject(party.language, self.name, STEP, values)
            periods = self._periods(evaluation, party, mission.start, mission.end, earliest, latest)
            for nominal, due_at in periods:
                yield self.intent(
                    party,
                    due_at,
                    key=period_key(self.name, mission.key, nominal),
                    step=STEP,
                    subject_key=mission.key,
                    subject=subject,
                    mission_id=mission.id,
                    contact_id=who.id if who else None,
                    owner=entry.key,
                )

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        keys = sorted({row.subject_key for row in pending})
        state: dict[str, tuple[MissionStatus, bool, date, date | None]] = {}
        for chunk in chunked(keys):
            for key, status, deliverables, start, end in session.execute(
                select(
                    Mission.key, Mission.status, Mission.deliverables, Mission.start, Mission.end
                ).where(Mission.key.in_(chunk))
            ):
                state[key] = (status, deliverables, start, end)
        reasons: dict[str, str] = {}
        for row in pending:
            mission = row.subject_key
            found = state.get(mission)
            if found is None:
                reasons[row.key] = f"mission {mission} no longer exists"
                continue
            status, deliverables, start, end = found
            nominal = date.fromisoformat(row.key.rsplit(":", 1)[1])
            if status != MissionStatus.ACTIVE:
                reasons[row.key] = f"mission {mission} is {status.replace('_', ' ')}"
            elif deliverables:
                reasons[row.key] = f"mission {mission} now has deliverables"
            elif end is not None and end <= self.limit(start):
                reasons[row.key] = (
                    f"mission {mission} now ends on {end.isoformat()}, "
                    f"within {self.options.max_months} months"
                )
            elif end is not None and nominal > end:
                reasons[row.key] = f"mission {mission} ends on {end.isoformat()}"
            elif nominal not in self.schedule(start, end, nominal, nominal):
                reasons[row.key] = f"mission {mission} now starts on {start.isoformat()}"
        return reasons
