"""Follow-ups as iCalendar objects: a VTODO for a task, a VEVENT for a meeting to place.

Built with the icalendar package, never by hand. The same builder serves
the CalDAV channel and the feed, so an object reads the same wherever the
user sees it. Everything in an object comes from stored state (DTSTAMP
included), so an unchanged follow-up gives the same bytes every time.
DTSTAMP and COMPLETED are in UTC, as RFC 5545 (3.8.7.2, 3.8.2.1) requires.

The UID is the follow-up key plus ``@followupd`` (followupd.domain.identity): a
rewrite is an update of the same object, never a duplicate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Component, Event, Todo, vDatetime
from icalendar.enums import STATUS, TRANSP

from followupd.domain.identity import uid
from followupd.domain.items import is_call, is_meeting
from followupd.domain.states import CalendarState
from followupd.store.outbox.rows import CalendarRow

PRODID = "-//followupd//followupd//EN"
MEETING_LENGTH = timedelta(minutes=30)
ZONE_SPAN = timedelta(days=400)  # transitions listed around an object's time

TASK_STATUS = {
    CalendarState.OPEN: STATUS.NEEDS_ACTION,
    CalendarState.COMPLETED: STATUS.COMPLETED,
    CalendarState.CANCELLED: STATUS.CANCELLED,
}


@dataclass(frozen=True)
class CalendarItem:
    """What the owner sees of one follow-up in a calendar."""

    key: str
    rule: str
    step: str
    summary: str
    description: str
    due_at: datetime
    stamp: datetime  # when its content last changed, from the store
    sequence: int = 0
    status: CalendarState = CalendarState.OPEN
    completed_at: datetime | None = None  # when the user did it; None: at `stamp`
    contact_name: str | None = None
    contact_phone: str | None = None

    @property
    def meeting(self) -> bool:
        return is_meeting(self.rule, self.step)

    @property
    def phone_uri(self) -> str | None:
        if not self.contact_phone or not is_call(self.rule, self.step, self.key):
            return None
        return "tel:" + re.sub(r"[^0-9+]", "", self.contact_phone)


def item_of(row: CalendarRow, contact_name: str | None, contact_phone: str | None) -> CalendarItem:
    """What the owner's calendar shows of an outbox row; a closed one with its new SEQUENCE."""
    closed = row.calendar_state in (CalendarState.COMPLETED, CalendarState.CANCELLED)
    return CalendarItem(
        key=row.key,
        rule=row.rule,
        step=row.step,
        summary=row.subject,
        description=row.body,
        due_at=row.due_at,
        stamp=row.updated_at if closed else row.created_at,
        sequence=1 if closed else 0,
        status=(row.calendar_state or CalendarState.OPEN) if closed else CalendarState.OPEN,
        completed_at=row.completed_at,
        contact_name=contact_name,
        contact_phone=contact_phone,
    )


def component(item: CalendarItem, zone: ZoneInfo) -> Component:
    """The VTODO or VEVENT of `item`, its times in `zone`, with a display alarm at the due time."""
    due = item.due_at.astimezone(zone)
    part: Component
    if item.meeting:
        status = STATUS.TENTATIVE if item.status == CalendarState.OPEN else STATUS.CANCELLED
        part = Event.new(start=due, end=due + MEETING_LENGTH, status=status,
                         transparency=TRANSP.TRANSPARENT, uid=uid(item.key))  # fmt: skip
    else:
        part = Todo.new(status=TASK_STATUS[item.status], uid=uid(item.key))
        part.DUE = due
        if item.status == CalendarState.COMPLETED:
            part.add("completed", (item.completed_at or item.stamp).astimezone(UTC))
            part.add("percent-complete", 100)
    part.summary = item.summary
    part.description = item.description
    part.DTSTAMP = item.stamp
    part.sequence = item.sequence
    part.categories = ["followupd", item.rule]
    if item.contact_name:
        part.contacts = [item.contact_name]
    if item.phone_uri:
        part.add("url", item.phone_uri)
    if item.status == CalendarState.OPEN:
        alarm = Alarm.new(description=item.summary)
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", item.due_at, parameters={"VALUE": "DATE-TIME"})
        part.add_component(alarm)
    return part


def calendar_of(
    components: list[Component],
    span: tuple[date, date],
    uid_text: str | None = None,
    name: str | None = None,
) -> Calendar:
    """One iCalendar document holding `components`, with a VTIMEZONE for every TZID.

    Each VTIMEZONE lists the zone's transitions over `span` only, which keeps
    it short. icalendar gives a new calendar a random UID: it is replaced by
    `uid_text`, or dropped, so the bytes stay the same when nothing changed.
    """
    calendar = Calendar.new(prodid=PRODID, name=name, subcomponents=list(components))
    calendar.pop("UID", None)
    if uid_text is not None:
        calendar.add("uid", uid_text)
    calendar.add_missing_timezones(*span)
    return calendar


def document(item: CalendarItem, zone: ZoneInfo) -> bytes:
    """The single-object document stored over CalDAV for `item`."""
    day = item.due_at.date()
    span = (day - ZONE_SPAN, day + ZONE_SPAN)
    return bytes(calendar_of([component(item, zone)], span).to_ical())


def close(
    text: bytes | str, status: CalendarState, stamp: datetime, note: str
) -> tuple[bytes, bool]:
    """The object `text` closed (completed or cancelled) with `note`, keeping the user's edits.

    Returns the new document and whether anything changed: an object the
    user already completed or cancelled is left as it is.
    """
    calendar = Calendar.from_ical(text)
    changed = False
    for part in calendar.walk():
        if part.name not in ("VTODO", "VEVENT"):
            continue
        if str(part.get("status", "")).upper() in ("COMPLETED", "CANCELLED"):
            continue
        is_task = part.name == "VTODO"
        part.pop("status", None)
        part.add(
            "status", "COMPLETED" if is_task and status == CalendarState.COMPLETED else "CANCELLED"
        )
        if is_task and status == CalendarState.COMPLETED:
            part.pop("completed", None)
            part.add("completed", stamp.astimezone(UTC))
            part.pop("percent-complete", None)
            part.add("percent-complete", 100)
        description = str(part.get("description", ""))
        part.pop("description", None)
        part.add("description", f"{description}\n\n{note}".strip())
        sequence = int(part.get("sequence", 0)) + 1
        part.pop("sequence", None)
        part.add("sequence", sequence)
        part.pop("dtstamp", None)
        part.add("dtstamp", vDatetime(stamp).dt)
        part.subcomponents = [sub for sub in part.subcomponents if sub.name != "VALARM"]
        changed = True
    return bytes(calendar.to_ical()), changed
