"""``status_update_due``: an active mission owes its client a point d'avancement on a cadence.

The cadence is the mission's ``status_update_every_days``, else the rule's
``every_days`` (14). Its anchor is the local date, in the owner's zone, of the
mission's last ``status_update`` touchpoint, or the mission start when there
is none (or when the last one predates the start). While no new status update
is recorded, the owner gets one calendar reminder per period, nominally on
anchor + k × cadence (k ≥ 1); the nominal date is the period, and goes into the
key: ``status_update_due:<mission>:<nominal ISO date>``.

Choices the documented contract leaves open:

- No reminder falls after the mission's end date: past it, ``mission_closeout``
  takes over.
- ``paused_until`` does not pause these reminders: the contract pauses client
  emails, and this is a task for the owner (a mission that should not be
  followed up is put ``on_hold``, which stops them).
- A pending reminder is cancelled as soon as it is no longer on the mission's
  current schedule: a status update recorded since (even back-dated), a new
  cadence, a new start; or when the mission stops being active or ends before it.
  `Rule.vanished` is not given the owner's zone: a status update recorded
  within hours of midnight may leave a reminder pending that the owner's
  wall clock would have cancelled, never the other way round.

The templates get the mission, client and contact as rows of their tables'
columns (the same names as the ORM attributes; a pass may load many thousand),
plus ``owner``, ``last_update`` (a date or None) and ``every_days``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Subquery, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from followupd.config.rule_options import StatusUpdateDueOptions
from followupd.domain.business_calendar import zone
from followupd.domain.states import MissionStatus, TouchpointKind
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.news import with_news
from followupd.rules.parties import Party, to_owner
from followupd.rules.periods import cadence_dates, period_key
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Mission, Touchpoint
from followupd.store.outbox.rows import PendingRow
from followupd.store.rows import record, streamed

# A nominal date moves forward to the next working day: rarely more than a week,
# this bounds the periods a window must consider.
SHIFT_MARGIN = timedelta(days=21)
STEP = "reminder"


def anchor_of(start: date, last_update: date | None) -> date:
    """Where the cadence counts from: the last status update, or the mission start."""
    return start if last_update is None else max(start, last_update)


def local_day(instant: datetime | None, tz: ZoneInfo) -> date | None:
    return None if instant is None else instant.astimezone(tz).date()


def possible_local_days(instant: datetime | None) -> list[date]:
    """The dates `instant` may have had on the owner's wall clock, whatever the zone.

    `Rule.vanished` is not told the owner's zone, so it keeps a reminder that is
    on the schedule for any of them (UTC-12 to UTC+14): near midnight, a
    reminder is kept rather than wrongly cancelled, and never made again.
    """
    if instant is None:
        return []
    first = (instant.astimezone(UTC) - timedelta(hours=12)).date()
    last = (instant.astimezone(UTC) + timedelta(hours=14)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def on_schedule(nominal: date, anchor: date, every_days: int, end: date | None) -> bool:
    """Whether `nominal` is one of anchor + k × every_days (k ≥ 1), no later than `end`."""
    elapsed = (nominal - anchor).days
    return elapsed > 0 and elapsed % every_days == 0 and (end is None or nominal <= end)


def _last_update() -> ColumnElement[datetime]:
    """The instant of the mission's last status update (correlated to `Mission`)."""
    return (
        select(func.max(Touchpoint.at))
        .where(Touchpoint.mission_id == Mission.id, Touchpoint.kind == TouchpointKind.STATUS_UPDATE)
        .correlate(Mission)
        .scalar_subquery()
    )


class StatusUpdateDue(Rule[StatusUpdateDueOptions]):
    name = "status_update_due"
    repeats = True

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        session = evaluation.session
        tz = zone(evaluation.owner.timezone)
        earliest = evaluation.start.astimezone(tz).date() - SHIFT_MARGIN
        latest = evaluation.end.astimezone(tz).date()
        every = func.coalesce(Mission.status_update_every_days, self.options.every_days)
        cadences = set(
            session.scalars(
                select(every)
                .distinct()
                .where(
                    Mission.status == MissionStatus.ACTIVE,
                    Mission.start < latest,
                    evaluation.owns(Mission.owner),
                )
            )
        )
        if not cadences:
            return

        # Each candidate's last status update, looked up once through the index on
        # mission_id: cheaper than aggregating every status update of the store. OFFSET 0
        # keeps the planners from merging it into the query, which looked each one up
        # again wherever the query names it. Joined and grouped instead (PostgreSQL hashes
        # every status update), it was shorter at 1,000,000 missions only with parallel
        # workers, and no cheaper serially (about 2.5 s of the server either way).
        def last_of(*which: ColumnElement[bool]) -> Subquery:
            return (
                select(Mission.id.label("mission_id"), _last_update().label("at"))
                .where(
                    evaluation.owns(Mission.owner),
                    Mission.status == MissionStatus.ACTIVE,
                    Mission.start <= latest - timedelta(days=min(cadences)),
                    or_(Mission.end.is_(None), Mission.end >= earliest),
                    *which,
                )
                .offset(0)
                .subquery("last")
            )

        # A first reminder on or before `latest` needs anchor <= latest - cadence,
        # that is a start and a last update (in the owner's zone) no later than that.
        def overdue(last: Subquery) -> ColumnElement[bool]:
            found = []
            for cadence in sorted(cadences):
                bound = latest - timedelta(days=cadence)
                since = datetime.combine(bound + timedelta(days=1), time(), tzinfo=tz)
                found.append(
                    and_(
                        every == cadence,
                        Mission.start <= bound,
                        or_(last.c.at.is_(None), last.c.at < since),
                    )
                )
            return or_(*found)

        last = last_of()
        # what tells a mission's keys; only the missions with a new one are read whole
        narrow = (
            select(
                Mission.id,
                Mission.key,
                Mission.start,
                Mission.end,
                Mission.status_update_every_days,
                Mission.owner,
                Client.country,
                last.c.at,
            )
            .join(last, last.c.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .where(overdue(last))
        )

        def keys(row: Sequence[Any]) -> Iterator[str]:
            _, key, start, end, every_days, owner, country, last_at = row
            party = to_owner(evaluation.whose(owner).person, country)
            cadence = every_days or self.options.every_days
            for nominal, _ in self._periods(evaluation, party, cadence, start, end, last_at):
                yield period_key(self.name, key, nominal)

        for only in with_news(evaluation, narrow, keys, Mission.id, kept=True):
            some = last_of(*only)  # these missions only: computed once, not narrowed after
            yield from self._intents(evaluation, some, overdue(some))

    def _periods(
        self,
        evaluation: Evaluation,
        party: Party,
        cadence: int,
        start: date,
        end: date | None,
        last_at: datetime | None,
    ) -> Iterator[tuple[date, datetime]]:
        """The periods of a mission due in the evaluation's window: (nominal date, due time)."""
        tz = zone(evaluation.owner.timezone)
        earliest = evaluation.start.astimezone(tz).date() - SHIFT_MARGIN
        latest = evaluation.end.astimezone(tz).date()
        anchor = anchor_of(start, local_day(last_at, tz))
        until = latest if end is None else min(latest, end)
        for nominal in cadence_dates(anchor + timedelta(days=cadence), cadence, earliest, until):
            due_at = evaluation.calendar.due_at(nominal, 0, party.tz, party.countries)
            if evaluation.start <= due_at <= evaluation.end:
                yield nominal, due_at

    def _intents(
        self, evaluation: Evaluation, last: Subquery, *which: ColumnElement[bool]
    ) -> Iterator[Intent]:
        """The intents of the candidates of `last` that `which` keeps (`last`: each one's last
        status update)."""
        tz = zone(evaluation.owner.timezone)
        contact = aliased(Contact)
        missions = streamed(
            evaluation.session,
            select(record(Mission), record(Client), record(contact, "contact"), last.c.at)
            .join(last, last.c.mission_id == Mission.id)
            .join(Client, Mission.client_id == Client.id)
            .outerjoin(contact, Mission.contact_id == contact.id)
            .where(*which),
        )
        templates = evaluation.templates
        for mission, client, who, last_at in missions:
            cadence = mission.status_update_every_days or self.options.every_days
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            party = to_owner(owner, client.country)
            periods = list(
                self._periods(evaluation, party, cadence, mission.start, mission.end, last_at)
            )
            if not periods:
                continue
            values = {
                "mission": mission,
                "client": client,
                "contact": who,
                "owner": owner,
                "last_update": local_day(last_at, tz),
                "every_days": cadence,
            }
            # one subject for every period of a mission: it names the mission, not the period
            subject = templates.subject(party.language, self.name, STEP, values)
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
        state: dict[str, tuple[str, date, date | None, int | None, datetime | None]] = {}
        last_update = _last_update()
        for chunk in chunked(keys):
            for key, status, start, end, every, last_at in session.execute(
                select(
                    Mission.key,
                    Mission.status,
                    Mission.start,
                    Mission.end,
                    Mission.status_update_every_days,
                    last_update,
                ).where(Mission.key.in_(chunk))
            ):
                state[key] = (status, start, end, every, last_at)
        reasons: dict[str, str] = {}
        for row in pending:
            found = state.get(row.subject_key)
            if found is None:
                reasons[row.key] = f"mission {row.subject_key} no longer exists"
                continue
            nominal = date.fromisoformat(row.key.rsplit(":", 1)[1])
            reason = self._gone(row.subject_key, nominal, *found)
            if reason is not None:
                reasons[row.key] = reason
        return reasons

    def _gone(
        self,
        mission: str,
        nominal: date,
        status: str,
        start: date,
        end: date | None,
        every: int | None,
        last_at: datetime | None,
    ) -> str | None:
        """Why the reminder of `nominal` is no longer due, or None if it still is."""
        cadence = every or self.options.every_days
        last_days = possible_local_days(last_at)
        anchors = {anchor_of(start, day) for day in last_days} or {start}
        if status != MissionStatus.ACTIVE:
            return f"mission {mission} is {status.replace('_', ' ')}"
        if end is not None and nominal > end:
            return f"mission {mission} ends on {end.isoformat()}"
        if any(on_schedule(nominal, anchor, cadence, end) for anchor in anchors):
            return None
        if last_at is not None and min(last_days) > nominal - timedelta(days=cadence):
            return f"status update sent on {last_at.astimezone(UTC).date().isoformat()}"
        return f"schedule changed: every {cadence} days from {max(anchors).isoformat()}"
