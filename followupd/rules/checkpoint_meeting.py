"""``checkpoint_meeting``: when a mission drifts, call a réunion de mise au point.

DOMAIN.md, source 001, answers what calls for one: problems piling up, or no
meeting for too long. An active mission gets a reminder to the owner
(calendar) to schedule the meeting, one per `every_days` period, keyed
``checkpoint_meeting:<mission>:<period day>``, when

- it has had no ``meeting`` or ``visit`` touchpoint for `every_days` days:
  the periods are the day of the last meeting or visit (in the owner's zone;
  the mission's start when there was none) plus k × `every_days`, k ≥ 1
  (step ``no-meeting``);
- `open_issues` or more of its issues are open: the periods are the day the
  `open_issues`-th of the currently open issues was opened, then every
  `every_days` days (step ``open-issues``).

One reminder per `every_days`, whatever calls for it (SPEC): the periods are
those of the trigger that started first; the other trigger's reason joins
them from its own start (step ``open-issues`` when issues pile up, its text
giving both reasons), instead of a reminder of its own between them. A
period is done, and its reminder skipped or cancelled, once a meeting or
visit took place at or after the period's start, taken as midnight UTC of
its day: that comparison must give the same answer at evaluation and in
`vanished`, which has no zone. No period falls after the mission's end
date (from then on its close-out asks for the bilan: ``mission_closeout``);
a pending one is cancelled when the end moves before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.rule_options import CheckpointMeetingOptions
from followupd.domain.states import MissionStatus, TouchpointKind
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.news import with_news
from followupd.rules.parties import Party, to_owner
from followupd.rules.periods import cadence_dates, period_key
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Issue, Mission, Touchpoint
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

MEETING_KINDS = (TouchpointKind.MEETING, TouchpointKind.VISIT)
PILING, QUIET = "open-issues", "no-meeting"
# A period day moves forward to the next working day: rarely more than a week,
# this bounds the periods worth computing.
SHIFT_MARGIN = timedelta(days=21)
# Slack between an instant and its day in any zone, for bounds computed in SQL.
ZONE_SLACK = timedelta(days=2)


def period_start(day: date) -> datetime:
    """From when a meeting or visit answers the reminder of the period named `day`."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def _open_issue() -> ColumnElement[bool]:
    """An issue of the mission (correlated to `Mission`) still open."""
    return and_(Issue.mission_id == Mission.id, Issue.resolved.is_(None))


def period_of(key: str) -> date | None:
    """The period day at the end of a follow-up key, if it has one."""
    try:
        return date.fromisoformat(key.rsplit(":", 1)[-1])
    except ValueError:
        return None


class CheckpointMeeting(Rule[CheckpointMeetingOptions]):
    name = "checkpoint_meeting"
    repeats = True

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        facts = self._facts(evaluation)
        due_by = self._due_by(evaluation, facts)
        # what tells a mission's keys; only the missions with a new one are read whole
        narrow = (
            select(
                Mission.id,
                Mission.key,
                Mission.start,
                Mission.end,
                Mission.owner,
                Client.country,
                facts.c.met_at,
                facts.c.piled_at,
            )
            .join(facts, facts.c.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .where(due_by)
        )

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, key, start, end, owner, country, met_at, piled_at = row
            party = to_owner(evaluation.whose(owner).person, country)
            for day, _, _ in self._periods(evaluation, party, start, end, met_at, piled_at):
                yield period_key(self.name, key, day)

        for only in with_news(evaluation, narrow, keys, Mission.id, kept=True):
            # the facts of these missions only: computed once, they are not narrowed after
            some = self._facts(evaluation, *only)
            yield from self._intents(evaluation, some, self._due_by(evaluation, some))

    def _due_by(self, evaluation: Evaluation, facts: Subquery) -> ColumnElement[bool]:
        """Whether a mission of `facts` may have a reminder due by the evaluation's end."""
        return or_(
            facts.c.piled_at <= evaluation.end + ZONE_SLACK,
            facts.c.met_at <= evaluation.end - self.every + ZONE_SLACK,
            and_(
                facts.c.met_at.is_(None),
                Mission.start <= evaluation.end.date() - self.every + ZONE_SLACK,
            ),
        )

    @property
    def every(self) -> timedelta:
        return timedelta(days=self.options.every_days)

    def _facts(self, evaluation: Evaluation, *which: ColumnElement[bool]) -> Subquery:
        """Each active mission of the evaluation's that `which` keeps: its last meeting or
        visit, and when its open issues piled up (the `open_issues`-th of them was opened)."""
        # Correlated subqueries, looked up per active mission through the indexes
        # on mission_id: much cheaper than aggregating every touchpoint and issue (joined
        # and grouped, with the open issues numbered by a window, it was no cheaper at
        # 1,000,000 missions but with parallel workers).
        last_meeting = (
            select(func.max(Touchpoint.at))
            .where(Touchpoint.mission_id == Mission.id, Touchpoint.kind.in_(MEETING_KINDS))
            .correlate(Mission)
            .scalar_subquery()
        )
        piled_up = (  # when the open_issues-th of the open issues was opened
            select(Issue.opened)
            .where(_open_issue())
            .order_by(Issue.opened, Issue.id)
            .offset(self.options.open_issues - 1)
            .limit(1)
            .correlate(Mission)
            .scalar_subquery()
        )
        return (
            select(
                Mission.id.label("mission_id"),
                last_meeting.label("met_at"),
                piled_up.label("piled_at"),
            )
            .where(Mission.status == MissionStatus.ACTIVE, evaluation.owns(Mission.owner), *which)
            .offset(0)  # computed once: merged into the query, each was looked up again
            .subquery("facts")
        )

    def _periods(
        self,
        evaluation: Evaluation,
        party: Party,
        start: date,
        end: date | None,
        met_at: datetime | None,
        piled_at: datetime | None,
    ) -> Iterator[tuple[date, set[str], datetime]]:
        """The periods of a mission due in the evaluation's window and not met:
        (period day, its reasons, due time). None after the mission's end date: from
        then on its close-out asks for the bilan (followupd.rules.mission_closeout)."""
        every = self.every
        earliest = evaluation.start.astimezone(party.tz).date() - SHIFT_MARGIN
        latest = evaluation.end.astimezone(party.tz).date()
        if end is not None:
            latest = min(latest, end)
        last_met = met_at.astimezone(party.tz).date() if met_at is not None else None
        quiet_from = (last_met or start) + every
        piled_on = piled_at.astimezone(party.tz).date() if piled_at is not None else None
        # one cadence, that of the trigger that started first: the other's periods would
        # fall between its own, two reminders in `every` days; its reason joins them instead
        first = quiet_from if piled_on is None else min(quiet_from, piled_on)
        for day in cadence_dates(first, every.days, earliest, latest):
            why = {QUIET} if day >= quiet_from else set()
            if piled_on is not None and day >= piled_on:
                why.add(PILING)
            if met_at is not None and met_at >= period_start(day):
                continue  # the meeting took place
            due_at = evaluation.calendar.due_at(day, 0, party.tz, party.countries)
            if evaluation.start <= due_at <= evaluation.end:
                yield day, why, due_at

    def _intents(
        self, evaluation: Evaluation, facts: Subquery, which: ColumnElement[bool]
    ) -> Iterator[Intent]:
        """The intents of the missions of `facts` that `which` keeps."""
        open_count = (
            select(func.count()).select_from(Issue).where(_open_issue()).correlate(Mission)
        ).scalar_subquery()
        contact = aliased(Contact)
        query = (
            select(
                record(Mission),
                record(Client),
                record(contact, "contact"),
                facts.c.met_at,
                facts.c.piled_at,
                open_count,
            )
            .join(facts, facts.c.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(which)
        )
        for mission, client, who, met_at, piled_at, count in streamed(evaluation.session, query):
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            party = to_owner(owner, client.country)
            last_met = met_at.astimezone(party.tz).date() if met_at is not None else None
            periods = self._periods(evaluation, party, mission.start, mission.end, met_at, piled_at)
            for day, why, due_at in periods:
                step = PILING if PILING in why else QUIET
                values = {
                    "mission": mission,
                    "client": client,
                    "contact": who,
                    "owner": owner,
                    "period": day,
                    "piling": PILING in why,
                    "quiet": QUIET in why,
                    "open_issues": count,
                    "last_meeting": last_met,
                }
                intent = self.intent(
                    party,
                    due_at,
                    key=period_key(self.name, mission.key, day),
                    step=step,
                    subject_key=mission.key,
                    subject=evaluation.templates.subject(party.language, self.name, step, values),
                    mission_id=mission.id,
                    contact_id=who.id if who else None,
                    owner=entry.key,
                )
                yield intent

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        periods: dict[str, list[date]] = {}
        for row in pending:
            day = period_of(row.key)
            if day is not None:
                periods.setdefault(row.subject_key, []).append(day)
        statuses: dict[str, tuple[MissionStatus, date | None]] = {}
        meetings: dict[str, list[tuple[datetime, TouchpointKind]]] = {}
        for chunk in chunked(sorted(periods)):
            since = period_start(min(min(periods[key]) for key in chunk))
            met = and_(
                Touchpoint.mission_id == Mission.id,
                Touchpoint.kind.in_(MEETING_KINDS),
                Touchpoint.at >= since,
            )
            for key, status, end, at, kind in session.execute(
                select(Mission.key, Mission.status, Mission.end, Touchpoint.at, Touchpoint.kind)
                .outerjoin(Touchpoint, met)
                .where(Mission.key.in_(chunk))
                .order_by(Touchpoint.at)
            ):
                statuses[key] = (status, end)
                if at is not None:
                    meetings.setdefault(key, []).append((at, kind))
        reasons: dict[str, str] = {}
        for row in pending:
            day = period_of(row.key)
            if day is None:
                continue
            found = statuses.get(row.subject_key)
            if found is None:
                reasons[row.key] = f"mission {row.subject_key} no longer exists"
                continue
            status, end = found
            if status != MissionStatus.ACTIVE:
                reasons[row.key] = f"mission {row.subject_key} no longer active ({status})"
            elif end is not None and day > end:
                reasons[row.key] = f"mission {row.subject_key} ends on {end.isoformat()}"
            else:
                start = period_start(day)
                held = next((m for m in meetings.get(row.subject_key, []) if m[0] >= start), None)
                if held is not None:
                    at, kind = held
                    reasons[row.key] = f"{kind} held on {at.date()}"
        return reasons
