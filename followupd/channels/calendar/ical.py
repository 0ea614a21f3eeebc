"""Follow-ups as iCalendar objects: a VTODO for a task, a VEVENT for a meeting to place.

Built with the icalendar package, never by hand. The same builder serves
the CalDAV channel and the feed, so an object reads the same wherever the
user sees it. Everything in an object comes from stored state (DTSTAMP
included), so an unchanged follow-up gives the same bytes every time.
DTSTAMP and COMPLETED are in UTC, as RFC 5545 (3.8.7.2, 3.8.2.1) requires.

An item is a concern's (followupd.store.live_items): its UID names the concern,
so a new period of a repeating reminder updates the same object, never adds
one. A meeting to place whose event the user invited people to is theirs
from then on (`invited`): followupd never writes to it again.

Items are written in the form the widest set of apps fire: a VTODO has a
DTSTART beside its DUE (Cyrus fires no alarm of a task without one), the
alarm's trigger is absolute (Synology refuses relative ones), and no item
repeats (a repeating reminder is one item updated in place, see `updated`).

A file the owner needs for the task (the formal notice to pay, a PDF) is
inline in an object written to a CalDAV calendar:
``ATTACH;FMTTYPE=…;ENCODING=BASE64;VALUE=BINARY`` (RFC 5545 3.8.1.1), with
its name in ``FILENAME`` (the parameter of RFC 8607's managed attachments,
which apps show as the file's name). The feed links it by URL instead
(``ATTACH;FILENAME=…;FMTTYPE=…:URL``, a `FileLink`): a PDF is tens of
kilobytes of base64, thousands of them made the feed megabytes long.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from icalendar import Alarm, Calendar, Component, Event, Todo, vBinary, vDatetime, vUri
from icalendar.enums import STATUS, TRANSP

from followupd.domain.items import is_call, is_meeting
from followupd.domain.meeting_place import MEETING_LENGTH
from followupd.domain.states import CalendarState
from followupd.store.models import LiveItem

PRODID = "-//followupd//followupd//EN"
ZONE_SPAN = timedelta(days=400)  # transitions listed around an object's time
PDF = "application/pdf"
OCTETS = "application/octet-stream"

TASK_STATUS = {
    CalendarState.OPEN: STATUS.NEEDS_ACTION,
    CalendarState.COMPLETED: STATUS.COMPLETED,
    CalendarState.CANCELLED: STATUS.CANCELLED,
}


@dataclass(frozen=True)
class FileLink:
    """A file the owner fetches by URL (the feed's), not carried in the object."""

    name: str
    url: str


File = tuple[str, bytes] | FileLink  # inline: its name and bytes; or where to fetch it


@dataclass(frozen=True)
class CalendarItem:
    """What the owner sees of one concern in a calendar."""

    key: str  # the follow-up it shows
    uid: str
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
    attachment: File | None = None  # a file for the owner: inline, or linked (the feed)
    rings_at: datetime | None = None  # followupd's alarm, when later than the due (raised late)

    def alarm_at(self, due: datetime) -> datetime:
        """When followupd's alarm rings for the item due at `due`: then, or later if raised
        late (followupd.domain.meeting_place)."""
        return max(due, self.rings_at or due)

    @property
    def meeting(self) -> bool:
        return is_meeting(self.rule, self.step)

    @property
    def phone_uri(self) -> str | None:
        if not self.contact_phone or not is_call(self.rule, self.step, self.key):
            return None
        return "tel:" + re.sub(r"[^0-9+]", "", self.contact_phone)


# the line a repeating reminder's description ends with, in the owner's language
RAISED = {
    "fr": "Rappel n° {times}, depuis le {since}.",
    "en": "Reminder no. {times}, since {since}.",
}
LOCALES = {"fr": "fr_FR", "en": "en_US"}


def item_of(
    item: LiveItem,
    zone: ZoneInfo,
    contact_name: str | None,
    contact_phone: str | None,
    attachment: File | None = None,
) -> CalendarItem:
    """What the owner's calendar shows of a live item: due at the user's date if they snoozed it.

    A reminder raised more than once says since when and how often.
    `attachment` is the file of the follow-up it shows (followupd.store.attachments),
    or, in the feed, a link to it.
    """
    description = item.description
    if item.times_raised > 1:
        language = item.language if item.language in RAISED else "en"
        since = format_date(item.first_raised_at.astimezone(zone).date(), "long",
                            locale=LOCALES[language])  # fmt: skip
        raised = RAISED[language].format(times=item.times_raised, since=since)
        description = f"{description}\n\n{raised}".strip()
    due = item.due_at
    if item.snoozed_until is not None and item.snoozed_until > due:
        due = item.snoozed_until
    # a task raised late rings at the owner's next working time (live_items._raise); once
    # the user puts it off, at their date
    late = item.snoozed_until is None and item.alarm_at is not None and item.alarm_at > due
    return CalendarItem(
        key=item.followup_key,
        uid=item.uid,
        rule=item.rule,
        step=item.step,
        summary=item.summary,
        description=description,
        due_at=due,
        stamp=item.updated_at,
        sequence=max(item.sequence, 0),
        status=item.state,
        completed_at=item.completed_at,
        contact_name=contact_name,
        contact_phone=contact_phone,
        attachment=attachment,
        rings_at=item.alarm_at if late else None,
    )


def component(item: CalendarItem, zone: ZoneInfo) -> Component:
    """The VTODO or VEVENT of `item`, its times in `zone`, with a display alarm at the due time
    (later for an item raised late: `CalendarItem.alarm_at`)."""
    due = item.due_at.astimezone(zone)
    part: Component
    if item.meeting:
        status = STATUS.TENTATIVE if item.status == CalendarState.OPEN else STATUS.CANCELLED
        part = Event.new(start=due, end=due + MEETING_LENGTH, status=status,
                         transparency=TRANSP.TRANSPARENT, uid=item.uid)  # fmt: skip
    else:
        part = Todo.new(status=TASK_STATUS[item.status], uid=item.uid)
        part.DUE = due
        part.DTSTART = due
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
    if item.attachment is not None:
        part.add("attach", attach_value(item.attachment))
    if item.status == CalendarState.OPEN:
        part.add_component(own_alarm(item, item.alarm_at(item.due_at)))
    return part


def attach_value(file: File) -> vBinary | vUri:
    """The ATTACH value of a file, inline or linked."""
    if isinstance(file, FileLink):
        return linked(file.name, file.url)
    return attached(*file)


def attached(name: str, data: bytes) -> vBinary:
    """The ATTACH value of a file: inline, base64, with its type and name."""
    return vBinary(data, params={"FMTTYPE": file_type(name), "FILENAME": name})


def linked(name: str, url: str) -> vUri:
    """The ATTACH value of a file fetched at `url` (RFC 5545 3.8.1.1, by URI): its type and name."""
    return vUri(url, params={"FMTTYPE": file_type(name), "FILENAME": name})


def file_type(name: str) -> str:
    return PDF if name.endswith(".pdf") else OCTETS


def attachment_of(part: Component) -> tuple[str, bytes] | None:
    """The first inline file of a VTODO or VEVENT with a FILENAME: its name and bytes."""
    found: Any = part.get("ATTACH")
    for value in found if isinstance(found, list) else [] if found is None else [found]:
        name = getattr(value, "params", {}).get("FILENAME")
        if isinstance(value, vBinary) and name:
            return str(name), value.bytes
    return None


def alarm_uid(item_uid: str) -> str:
    """The UID of followupd's own alarm in the item whose UID is `item_uid`.

    RFC 9074 gives a VALARM a UID so that an alarm stays the same one across
    updates: an app that snoozes it relates its snooze alarm to that UID
    (``RELATED-TO;RELTYPE=SNOOZE``), and followupd, updating the item, finds
    its own alarm by it and replaces that one only, whatever alarms the user
    added beside it.
    """
    return item_uid + "-alarm"


def own_alarm(item: CalendarItem, at: datetime) -> Alarm:
    """followupd's display alarm, at `at` in UTC: absolute, as every app takes it."""
    alarm = Alarm.new(description=item.summary)
    alarm.add("uid", alarm_uid(item.uid))
    alarm.add("action", "DISPLAY")
    alarm.add("trigger", at.astimezone(UTC), parameters={"VALUE": "DATE-TIME"})
    return alarm


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


def invited(part: Component) -> bool:
    """Whether `part` is an event the user invited someone to: their meeting now.

    Its first ATTENDEE made it a scheduling object: a server that schedules
    (RFC 6638: Nextcloud, iCloud, Fastmail) sends every change the
    organizer's account makes to it to the invitees, a cancellation as a
    cancellation. So followupd neither updates nor closes it; and once the
    meeting in it has ended with a contact there, it is a meeting held
    (followupd.sources.caldav.meetings), which a cancelled event is not.
    """
    return part.name == "VEVENT" and "ATTENDEE" in part


def close(
    text: bytes | str, status: CalendarState, stamp: datetime, note: str
) -> tuple[bytes, bool]:
    """The object `text` closed (completed or cancelled) with `note`, keeping the user's edits.

    Returns the new document and whether anything changed: an object the
    user already completed or cancelled is left as it is, and so is the
    user's meeting (`invited`).
    """
    calendar = Calendar.from_ical(text)
    changed = False
    for part in calendar.walk():
        if part.name not in ("VTODO", "VEVENT") or invited(part):
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


def updated(
    text: bytes | str,
    item: CalendarItem,
    zone: ZoneInfo,
    keep_due: datetime | None,
    written: Iterable[datetime] = (),
) -> bytes | None:
    """The stored object `text` rewritten in place for `item`, keeping all that apps added;
    None when it is the user's meeting now (`invited`), left as it is.

    followupd's part is rewritten: SUMMARY, DESCRIPTION, the due (a task's DUE
    and DTSTART, an event's DTSTART, its DTEND moved along), STATUS (with
    COMPLETED and PERCENT-COMPLETE for a task), SEQUENCE (one above the
    stored one, or the item's if higher), DTSTAMP, and followupd's own alarm
    (see `alarm_uid`), at the due in force (later for an item raised late:
    `CalendarItem.alarm_at`). `keep_due`, when given, is the date the user put
    the item off to: it stays the due, in the form the app wrote it if it is there.
    Everything else stays: the properties apps add (X-APPLE-*, X-MOZ-*,
    categories, attachments, relations…) and the user's
    alarms, as icalendar writes them back (it sorts properties and their
    parameters, values are kept as written). `written` are the times
    followupd wrote its alarm at before (the item's previous due and
    snooze): a copy of that alarm an app made without its UID is found by
    them once the due has moved (see `_replace_alarm`).

    Snoozes of followupd's alarm are dropped once they are spent: an RFC
    9074 snooze alarm related to it that is ACKNOWLEDGED (RFC 9074 lets the
    app remove it then), and, when its alarm moves, the snooze alarms and
    Thunderbird's X-MOZ-SNOOZE-TIME that fire no later than the new alarm
    (it reminds the user then anyway, and Thunderbird itself clears its
    snooze times when an item's alarms change: kept, they would remind the
    user twice, or before the date they chose).

    Raises ValueError when `text` is no iCalendar icalendar can rewrite (the
    caller may write the item afresh), or holds no component of the item's UID.
    """
    try:
        calendar = Calendar.from_ical(text)
    except Exception as error:  # icalendar raises ValueError and others on broken text
        raise ValueError(f"not iCalendar that can be rewritten: {error}") from error
    if not isinstance(calendar, Calendar):
        raise ValueError("not an iCalendar document (no VCALENDAR)")
    target = item.uid
    parts = [
        part
        for part in calendar.walk()
        if part.name in ("VTODO", "VEVENT") and str(part.get("UID", "")).strip() == target
    ]
    if not parts:
        raise ValueError(f"no VTODO or VEVENT of UID {target!r} in the object")
    part = next((part for part in parts if "RECURRENCE-ID" not in part), parts[0])
    if invited(part):
        return None
    stored_due = _stored_due(part, zone)
    due = _move(part, item, zone, keep_due, stored_due)
    _set(part, "summary", item.summary)
    _set(part, "description", item.description)
    _set_attachment(part, item)
    _set_status(part, item)
    _set(part, "sequence", max(_stored_sequence(part) + 1, item.sequence))
    part.DTSTAMP = item.stamp
    ours_at = {item.due_at, *written} | (set() if stored_due is None else {stored_due})
    _replace_alarm(part, item, item.alarm_at(due), ours_at)
    day = due.date()
    try:
        calendar.add_missing_timezones(day - ZONE_SPAN, day + ZONE_SPAN)
    except (KeyError, AttributeError) as error:  # a VTIMEZONE of the object's is broken
        raise ValueError(f"a time zone of the object cannot be read: {error!r}") from error
    return bytes(calendar.to_ical())


def _set(part: Component, name: str, value: object) -> None:
    part.pop(name, None)
    part.add(name, value)


def _aware(prop: Any, zone: ZoneInfo) -> datetime | None:
    """A date or time property as an aware time (floating ones and dates in `zone`), or None."""
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=zone)
    return None


def _stored_due(part: Component, zone: ZoneInfo) -> datetime | None:
    """The due the object holds: a task's DUE (else DTSTART), an event's DTSTART."""
    for name in ("DUE", "DTSTART") if part.name == "VTODO" else ("DTSTART",):
        if name in part:
            return _aware(part.get(name), zone)
    return None


def _stored_sequence(part: Component) -> int:
    try:
        return int(str(part.get("SEQUENCE", 0)))
    except ValueError:
        return 0


def _move(
    part: Component,
    item: CalendarItem,
    zone: ZoneInfo,
    keep_due: datetime | None,
    stored_due: datetime | None,
) -> datetime:
    """Sets the item's times to the due in force, which it returns; an event keeps its length."""
    due = item.due_at if keep_due is None else keep_due
    task = part.name == "VTODO"
    if keep_due is not None and stored_due == keep_due:  # as the app wrote it (a date maybe)
        if task and "DUE" in part:
            _copy(part, "DUE", "DTSTART")  # RFC 5545: of the same type as DUE
        return due
    local = due.astimezone(zone)
    if task:
        _set(part, "due", local)
        _set(part, "dtstart", local)
        return due
    start, end = _aware(part.get("DTSTART"), zone), _aware(part.get("DTEND"), zone)
    length = end - start if start and end and end >= start else MEETING_LENGTH
    _set(part, "dtstart", local)
    if "DTEND" in part:
        _set(part, "dtend", local + length)
    return due


def _copy(part: Component, source: str, name: str) -> None:
    part.pop(name, None)
    part.add(name, deepcopy(part[source]))


def _set_attachment(part: Component, item: CalendarItem) -> None:
    """followupd's file, by its name, written anew; the files the user attached kept."""
    if item.attachment is None:
        return
    name = item.attachment.name if isinstance(item.attachment, FileLink) else item.attachment[0]
    found: Any = part.get("ATTACH")
    values = found if isinstance(found, list) else [] if found is None else [found]
    part.pop("ATTACH", None)
    for value in values:
        if str(getattr(value, "params", {}).get("FILENAME", "")) != name:
            part.add("attach", value)
    part.add("attach", attach_value(item.attachment))


def _set_status(part: Component, item: CalendarItem) -> None:
    if part.name == "VEVENT":
        open_ = item.status == CalendarState.OPEN
        _set(part, "status", STATUS.TENTATIVE if open_ else STATUS.CANCELLED)
        return
    _set(part, "status", TASK_STATUS[item.status])
    if item.status == CalendarState.COMPLETED:
        _set(part, "completed", (item.completed_at or item.stamp).astimezone(UTC))
        _set(part, "percent-complete", 100)
        return
    part.pop("completed", None)
    try:
        done = int(str(part.get("PERCENT-COMPLETE", 0))) >= 100
    except ValueError:
        done = True
    if done:  # a lower percentage is the user's progress, kept
        part.pop("percent-complete", None)


def _replace_alarm(
    part: Component, item: CalendarItem, due: datetime, written: set[datetime]
) -> None:
    """followupd's alarm replaced by one at `due` (none for a closed item), the others kept.

    followupd's alarm is the one of its UID; if none has it (an app that
    rewrites alarms, tasks.org, drops their UID), an alarm with no UID at the
    due the object held or followupd wrote is taken as followupd's, copied
    by that app: kept, it would remind the user twice.
    """
    alarms = [sub for sub in part.subcomponents if sub.name == "VALARM"]
    ours_uid = alarm_uid(item.uid)
    ours = [alarm for alarm in alarms if _alarm_uid(alarm) == ours_uid]
    if not ours:
        ours = [a for a in alarms if not _alarm_uid(a) and _trigger(a) in written][:1]
    old = _trigger(ours[0]) if ours else None
    new = due.astimezone(UTC) if item.status == CalendarState.OPEN else None
    moved = new != old
    related = {ours_uid, *(_alarm_uid(alarm) for alarm in ours)} - {""}

    def spent(alarm: Component) -> bool:
        if not _snoozes(alarm) & related:
            return False
        if new is None or "ACKNOWLEDGED" in alarm:
            return True
        when = _trigger(alarm)
        return moved and (when is None or when <= new)

    part.subcomponents = [
        sub for sub in part.subcomponents if not any(sub is a for a in ours) and not spent(sub)
    ]
    if moved:
        _drop_moz_snoozes(part, new)
    if new is not None:
        alarm = own_alarm(item, new)
        if ours and not moved and "ACKNOWLEDGED" in ours[0]:  # the user has seen this one
            alarm.add("acknowledged", deepcopy(ours[0]["ACKNOWLEDGED"]))
        part.add_component(alarm)


def _alarm_uid(alarm: Component) -> str:
    value = alarm.get("UID")
    return str(value).strip() if isinstance(value, str) else ""


def _trigger(alarm: Component) -> datetime | None:
    """An absolute trigger in UTC; None for a relative one, or one that cannot be read."""
    value = getattr(alarm.get("TRIGGER"), "dt", None)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return None


def _snoozes(alarm: Component) -> set[str]:
    """The UIDs of the alarms an RFC 9074 snooze alarm snoozes (``RELATED-TO;RELTYPE=SNOOZE``)."""
    related: Any = alarm.get("RELATED-TO")
    values = related if isinstance(related, list) else [] if related is None else [related]
    return {
        str(value).strip()
        for value in values
        if str(getattr(value, "params", {}).get("RELTYPE", "")).upper() == "SNOOZE"
    }


def _drop_moz_snoozes(part: Component, new: datetime | None) -> None:
    """Thunderbird's snooze times no later than followupd's new alarm (all, with no alarm)."""
    for name in [name for name in part if name.upper().startswith("X-MOZ-SNOOZE-TIME")]:
        found: Any = part[name]
        values = found if isinstance(found, list) else [found]
        kept = [value for value in values if not _moz_spent(value, new)]
        part.pop(name)
        for value in kept:
            part.add(name, value)


def _moz_spent(value: Any, new: datetime | None) -> bool:
    if new is None:
        return True
    text = value.to_ical().decode() if hasattr(value, "to_ical") else str(value)
    try:  # Thunderbird writes it in UTC
        when = datetime.strptime(text.strip(), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return False  # not a time: not ours to judge
    return when <= new
