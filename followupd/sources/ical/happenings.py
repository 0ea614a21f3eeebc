"""What a calendar object is read into: events, their occurrences, task states.

Apart from the reader (read.py), so that those who only handle what was
read (the meetings counted by each evaluation pass, say) import no
iCalendar library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

ONE_DAY = timedelta(days=1)


class UnreadableObject(Exception):
    """A calendar object that is not iCalendar followupd can read; the reason says why."""


@dataclass(frozen=True)
class Happening:
    """One event, or one occurrence of a recurring event, in aware times."""

    uid: str
    summary: str
    description: str
    categories: frozenset[str]  # lower case
    attendees: frozenset[str]  # email addresses, lower case; the organizer too
    start: datetime
    end: datetime
    all_day: bool
    recurring: bool = False
    open_end: bool = False  # neither DTEND nor DURATION
    backwards: bool = False  # written to end before it starts: read as an instant
    cancelled: bool = False  # STATUS:CANCELLED (the event, or this occurrence)

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last day it covers: an all-day event's DTEND is the day after."""
        if self.all_day:  # (the day before date.min does not exist: no end - ONE_DAY)
            end_day = self.end.date()
            return end_day - ONE_DAY if end_day > self.start.date() else self.start.date()
        return max(self.start.date(), self.end.date())


@dataclass(frozen=True)
class TaskState:
    uid: str
    status: str  # upper case, as in the object: NEEDS-ACTION, COMPLETED…
    completed_at: datetime | None


@dataclass
class ReadObject:
    """What one object holds: its events as written, their occurrences, its tasks."""

    events: list[Happening] = field(default_factory=list)  # masters: first occurrence
    occurrences: list[Happening] = field(default_factory=list)  # within the window
    tasks: list[TaskState] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # what the document holds instead of events and tasks (a VJOURNAL, a VFREEBUSY…): a
    # calendar may hold such objects, and followupd ignores them rather than skip them
    unused: str | None = None
    # every occurrence starting before this is in `occurrences`: the window's end, or
    # less when there were more than MAX_OCCURRENCES
    complete_until: datetime | None = None
