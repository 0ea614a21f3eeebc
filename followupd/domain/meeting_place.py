"""Where a meeting to place is offered, and when a task's alarm rings, when raised late.

A meeting to place (followupd.domain.items.MEETINGS) is a tentative event the
owner moves where it fits. Raised late (a first pass catching up a period
still within its grace, the daemon down for a while), an event at its due
time would sit in the past, where no one looks. It is offered instead at
the next working time of the owner: the first slot of MEETING_LENGTH, on
the half-hour grid from the opening of the send window, that starts at or
after the raise and ends by the window's close, on a working day, in the
owner's zone. A raise within SLACK of the due (a pass a few minutes after
it) keeps the due.

A task (VTODO) raised late stays due when it was (overdue is what it is), but
its alarm, at the due, would be in the past, where phone apps never ring it:
it rings at the owner's next working time instead, the raise itself when
that falls inside the send window of a working day (`ring_at`).

Nothing here reads the clock: the caller gives the instant of the raise.
The time is fixed when the item is raised (followupd.store.live_items), so
it does not move at every build of the feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from followupd.domain.business_calendar import BusinessCalendar, local_instant
from followupd.domain.items import is_meeting

MEETING_LENGTH = timedelta(minutes=30)  # the tentative event's length
SLACK = timedelta(minutes=5)  # a raise this close after the due keeps it


def placed_at(
    calendar: BusinessCalendar,
    due: datetime,
    at: datetime,
    tz: ZoneInfo,
    countries: tuple[str, ...],
) -> datetime:
    """When a meeting due at `due` and raised at `at` is offered (in UTC): `due` unless late."""
    if at <= due + SLACK:
        return due
    day = at.astimezone(tz).date()
    for _ in range(2):  # today's slots, else the next working day's opening
        day = calendar.next_working_day(day, countries)
        opening = local_instant(day, calendar.opens, tz)
        closing = local_instant(day, calendar.closes, tz)
        start = opening
        if at > opening:  # the next slot of the grid
            start = opening + -((opening - at) // MEETING_LENGTH) * MEETING_LENGTH
        if start + MEETING_LENGTH <= closing:
            return start
        day += timedelta(days=1)
    return calendar.due_at(day, 0, tz, countries)  # a window shorter than a meeting


def ring_at(
    calendar: BusinessCalendar,
    due: datetime,
    at: datetime,
    tz: ZoneInfo,
    countries: tuple[str, ...],
) -> datetime:
    """When the alarm of a task due at `due` and raised at `at` rings: at `due` unless late."""
    if at <= due + SLACK:
        return due
    return calendar.next_window_opening(at, tz, countries)


@dataclass(frozen=True)
class OwnersTime:
    """An owner's working time: their zone and countries on the business calendar."""

    calendar: BusinessCalendar
    tz: ZoneInfo
    countries: tuple[str, ...]

    def late_time(self, rule: str, step: str, due: datetime, at: datetime) -> datetime | None:
        """For a calendar item of `rule` and `step` due at `due`, raised at `at` after it:
        when a meeting to place is offered, or when a task's alarm rings. None: on time."""
        place = placed_at if is_meeting(rule, step) else ring_at
        late = place(self.calendar, due, at, self.tz, self.countries)
        return late if late > due else None
