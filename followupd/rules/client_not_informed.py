"""``client_not_informed``: a problem the client has not been told about is itself a reminder.

DOMAIN.md, source 002: never hide a delay, never announce it on delivery day.
An open issue (any severity) with no `client_informed`, on a mission that is
not closed, reminds the owner `after_working_days` working days after the day
it was opened, then every `every_working_days` working days until the client
is informed or the issue resolved. Each reminder goes to the owner by email
and in the calendar: ``client_not_informed:<issue>:<day>:email|calendar``,
where the day, a working day, names the period.

Working days are counted in the owner's zone, on days that are working days
for both the owner and the client, from the day the issue was opened. The
days of an old issue are not walked one by one: the working days from the
oldest candidate issue to the end of the window are listed once per set of
countries, and the reminders falling in the window are found by index.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.config.rule_options import ClientNotInformedOptions
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.states import MissionStatus
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.rules.escalate_by_phone import local_day, utc_day, with_parties
from followupd.rules.parties import to_owner, to_owner_by_email
from followupd.store.chunks import chunked
from followupd.store.models import Issue, Mission
from followupd.store.outbox.rows import PendingRow

STEP = "reminder"


class WorkingDays:
    """The working days of ``[first, last]`` for some countries, in order.

    ``days[index(day) + n]`` is ``calendar.add_working_days(day, n, countries)``
    for any day of the span, found in logarithmic time.
    """

    def __init__(
        self, calendar: BusinessCalendar, countries: tuple[str, ...], first: date, last: date
    ) -> None:
        span = (last - first).days + 1
        self.days = [
            day
            for day in (first + timedelta(days=offset) for offset in range(max(span, 0)))
            if calendar.is_working_day(day, countries)
        ]

    def index(self, day: date) -> int:
        """The index of `day`, or of the first working day after it."""
        return bisect_left(self.days, day)


class ClientNotInformed(Rule[ClientNotInformedOptions]):
    name = "client_not_informed"
    repeats = True

    def evaluate(self, evaluation: Evaluation) -> Iterator[Intent]:
        query = with_parties(Issue, Issue.mission_id).where(
            evaluation.owns(Mission.owner),
            Issue.resolved.is_(None),
            Issue.client_informed.is_(None),
            Mission.status != MissionStatus.CLOSED,
            # the local day an issue was opened is within a day of its UTC instant
            Issue.opened <= evaluation.end + timedelta(days=1),
        )
        candidates = evaluation.session.execute(query).all()
        if not candidates:
            return
        tz = to_owner(evaluation.owner, None).tz
        first_day = min(issue.opened for issue, *_ in candidates).astimezone(tz).date()
        start_day = evaluation.start.astimezone(tz).date()
        end_day = evaluation.end.astimezone(tz).date()
        indexes: dict[tuple[str, ...], WorkingDays] = {}
        after, every = self.options.after_working_days, self.options.every_working_days
        for issue, mission, client, who, touchpoint in candidates:
            entry = evaluation.whose(mission.owner)
            owner = entry.person
            task = to_owner(owner, client.country)
            email = to_owner_by_email(owner, client.country)
            working = indexes.get(task.countries)
            if working is None:
                working = WorkingDays(evaluation.calendar, task.countries, first_day, end_day)
                indexes[task.countries] = working
            opened_on = issue.opened.astimezone(tz).date()
            first = working.index(opened_on) + after
            # only the reminders whose day can fall in the window: from its first day on
            skip = max(0, -(-(working.index(start_day) - first) // every))
            for position in range(first + skip * every, len(working.days), every):
                day = working.days[position]
                due_at = evaluation.calendar.window_opening(day, tz)
                if not evaluation.start <= due_at <= evaluation.end:
                    continue
                values = {
                    "issue": issue,
                    "opened_on": opened_on,
                    "reminder": (position - first) // every + 1,
                    "mission": mission,
                    "client": client,
                    "contact": who,
                    "last": touchpoint,
                    "last_on": local_day(touchpoint, task),
                    "owner": owner,
                }
                subject = evaluation.templates.subject(task.language, self.name, STEP, values)
                for party in (email, task):
                    intent = self.intent(
                        party,
                        due_at,
                        key=f"{self.name}:{issue.key}:{day.isoformat()}:{party.channel}",
                        step=STEP,
                        subject_key=issue.key,
                        subject=subject,
                        mission_id=mission.id,
                        contact_id=who.id if who else None,
                        owner=entry.key,
                    )
                    yield intent

    def vanished(self, session: Session, pending: Sequence[PendingRow]) -> dict[str, str]:
        state: dict[str, tuple[datetime | None, datetime | None, str, MissionStatus]] = {}
        for chunk in chunked(sorted({row.subject_key for row in pending})):
            for key, informed, resolved, mission_key, status in session.execute(
                select(
                    Issue.key, Issue.client_informed, Issue.resolved, Mission.key, Mission.status
                )
                .join(Mission, Issue.mission_id == Mission.id)
                .where(Issue.key.in_(chunk))
            ):
                state[key] = (informed, resolved, mission_key, status)
        reasons: dict[str, str] = {}
        for row in pending:
            found = state.get(row.subject_key)
            if found is None:
                reasons[row.key] = f"issue {row.subject_key} no longer exists"
                continue
            informed, resolved, mission_key, status = found
            if informed is not None:
                reasons[row.key] = f"client informed of {row.subject_key} on {utc_day(informed)}"
            elif resolved is not None:
                reasons[row.key] = f"issue {row.subject_key} resolved on {utc_day(resolved)}"
            elif status == MissionStatus.CLOSED:
                reasons[row.key] = f"mission {mission_key} closed"
        return reasons
