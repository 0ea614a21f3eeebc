"""Reading calendar objects as they come from real calendar apps, odd ones included.

One CalDAV object (one iCalendar document) becomes the events and task states
followupd looks at. What apps produce varies: all-day events (DTSTART a date,
DTEND the day after), floating times (no zone: read in the owner's zone),
zones by Windows names (their VTIMEZONE is used), zones nobody knows (read in
the owner's zone, with a note), DURATION instead of DTEND, neither (an instant,
or one day), recurrences with exceptions (expanded over a bounded window). A
component that cannot be read is left out with a note; a document that cannot
be parsed at all raises UnreadableObject with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar, Component

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
    attendees: frozenset[str]  # email addresses, lower case
    start: datetime
    end: datetime
    all_day: bool
    recurring: bool = False
    open_end: bool = False  # neither DTEND nor DURATION

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last day it covers: an all-day event's DTEND is the day after."""
        if self.all_day:
            return max(self.start.date(), (self.end - ONE_DAY).date())
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


def read_object(data: str | bytes, zone: ZoneInfo, window: tuple[datetime, datetime]) -> ReadObject:
    """The events and tasks of one iCalendar document; `zone` reads floating times."""
    try:
        calendar = Calendar.from_ical(data)
    except Exception as error:  # icalendar raises ValueError and others on broken text
        raise UnreadableObject(f"not valid iCalendar: {error}") from error
    if not isinstance(calendar, Calendar):
        raise UnreadableObject("not an iCalendar document (no VCALENDAR)")
    found = ReadObject()
    for part in calendar.walk("VEVENT"):
        if "RECURRENCE-ID" in part:
            continue  # an exception to a recurrence: seen through the expansion
        try:
            found.events.append(_happening(part, zone, found.notes))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            found.notes.append(f"event {_uid(part)!r} skipped: {error}")
    if any("RRULE" in part or "RDATE" in part for part in calendar.walk("VEVENT")):
        found.occurrences = _expand(calendar, zone, window, found.notes)
    else:
        found.occurrences = [h for h in found.events if h.end >= window[0] and h.start <= window[1]]
    for part in calendar.walk("VTODO"):
        try:
            found.tasks.append(_task(part, zone))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            found.notes.append(f"task {_uid(part)!r} skipped: {error}")
    if not found.events and not found.tasks and found.notes:
        raise UnreadableObject("; ".join(found.notes))
    return found


def _uid(part: Component) -> str:
    return str(part.get("UID", "")) or "(no UID)"


def _text(part: Component, name: str) -> str:
    value = part.get(name)
    return str(value) if value is not None else ""


def _categories(part: Component) -> frozenset[str]:
    values: Any = part.get("CATEGORIES")
    if values is None:
        return frozenset()
    groups = values if isinstance(values, list) else [values]
    return frozenset(str(c).strip().lower() for group in groups for c in group.cats)


def _attendees(part: Component) -> frozenset[str]:
    values: Any = part.get("ATTENDEE")
    if values is None:
        return frozenset()
    items = values if isinstance(values, list) else [values]
    found = set()
    for item in items:
        address = str(item).strip()
        if address.lower().startswith("mailto:"):
            address = address[7:]
        if "@" in address:
            found.add(address.lower())
    return frozenset(found)


def _aware(value: Any, zone: ZoneInfo) -> tuple[datetime, bool]:
    """A DTSTART/DTEND value as an aware datetime, and whether it was a date."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone), False
        return value, False
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=zone), True
    raise ValueError(f"not a date or time: {value!r}")


def _unknown_zone(part: Component, name: str) -> str | None:
    """The TZID of `name` when icalendar could not resolve it (it then gives a naive time)."""
    prop: Any = part.get(name)
    tzid = prop.params.get("TZID") if prop is not None and hasattr(prop, "params") else None
    if tzid and isinstance(prop.dt, datetime) and prop.dt.tzinfo is None:
        return str(tzid)
    return None


def _happening(part: Component, zone: ZoneInfo, notes: list[str]) -> Happening:
    uid = _uid(part)
    if "DTSTART" not in part:
        raise ValueError("no DTSTART")
    for name in ("DTSTART", "DTEND"):
        unknown = _unknown_zone(part, name)
        if unknown:
            notes.append(f"event {uid!r}: unknown time zone {unknown!r}, read in {zone.key}")
    start, all_day = _aware(part.decoded("DTSTART"), zone)
    if "DTEND" in part:
        end, _ = _aware(part.decoded("DTEND"), zone)
    elif "DURATION" in part:
        end = start + part.decoded("DURATION")
    else:  # RFC 5545: a date lasts the day, a time is an instant
        end = start + ONE_DAY if all_day else start
    if end < start:
        notes.append(f"event {uid!r}: ends before it starts; read as an instant")
        end = start
    return Happening(
        uid=uid,
        summary=_text(part, "SUMMARY"),
        description=_text(part, "DESCRIPTION"),
        categories=_categories(part),
        attendees=_attendees(part),
        start=start,
        end=end,
        all_day=all_day,
        recurring="RRULE" in part or "RDATE" in part,
        open_end="DTEND" not in part and "DURATION" not in part,
    )


def _expand(
    calendar: Calendar, zone: ZoneInfo, window: tuple[datetime, datetime], notes: list[str]
) -> list[Happening]:
    try:
        parts = recurring_ical_events.of(calendar).between(*window)
    except Exception as error:  # the library raises its own kinds on odd rules
        notes.append(f"recurrence not expanded: {error}")
        return []
    found = []
    for part in parts:
        try:  # every occurrence of a recurring event says so, exceptions included
            found.append(replace(_happening(part, zone, []), recurring=True))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            notes.append(f"occurrence of {_uid(part)!r} skipped: {error}")
    return found


def _task(part: Component, zone: tzinfo) -> TaskState:
    when = part.decoded("COMPLETED") if "COMPLETED" in part else None
    if isinstance(when, datetime) and when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    status = _text(part, "STATUS").upper()
    if when is not None and not status:
        status = "COMPLETED"
    return TaskState(uid=_uid(part), status=status or "NEEDS-ACTION", completed_at=when)
