"""Reading calendar objects as they come from real calendar apps, odd ones included.

One CalDAV object (one iCalendar document) becomes the events and task states
followupd looks at. What apps produce varies: all-day events (DTSTART a date,
DTEND the day after), floating times (no zone: read in the owner's zone),
zones by Windows names (their VTIMEZONE is used), zones nobody knows (read in
the owner's zone, with a note), zones an object defines (for that object
only, if like a real zone: see vtimezone.py), DURATION instead of DTEND,
neither (an instant, or one day), recurrences with exceptions (expanded over
a bounded window: see recurrence.py), an invitation to one occurrence only (a
RECURRENCE-ID with no rule beside it), text in Windows-1252 rather than
UTF-8, lines that are no property at all. A component that cannot be read is
left out with a note; a document that cannot be parsed at all, or whose
events and tasks all fail, raises UnreadableObject with the reason; one
holding no event nor task (a journal, free/busy time) is read as empty, its
`unused` saying what it holds. What it reads into is in happenings.py,
which imports no iCalendar library.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component
from icalendar.timezone import tzp

from followupd.sources.ical.happenings import (
    ONE_DAY,
    Happening,
    ReadObject,
    TaskState,
    UnreadableObject,
)
from followupd.sources.ical.recurrence import occurrences_between, why_not_expanded
from followupd.sources.ical.vtimezone import ObjectParser, without_iana_definitions

# occurrences read per object within the window: enough for a daily meeting over
# years, and a rule that repeats every hour cannot stall a sync
MAX_OCCURRENCES = 1000
# control characters are no text (RFC 5545 forbids them but tabs): a NUL, which
# some sync tools leave in, cannot even be stored in PostgreSQL, and C1 ones come
# from Windows-1252 read as Latin-1 (a server's fallback: "–" becomes U+0096)
CONTROLS = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])
# what can go wrong reading one component of a parsed document (icalendar's
# own errors are ValueErrors; a year 9999 overflows when a day is added)
COMPONENT_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
# properties nothing here reads (recurring_ical_events reads SEQUENCE: kept); their lines,
# folded ones included, are left out before parsing (a third of an event's parsing), and
# so are alarms (which recurring_ical_events would copy into each occurrence)
UNREAD = ("DTSTAMP", "CREATED", "LAST-MODIFIED", "PRODID", "VERSION", "CALSCALE", "TRANSP",
          "CLASS")  # fmt: skip
_UNREAD_LINE = re.compile(
    rf"^(?:{'|'.join(UNREAD)})[;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*(?:\r?\n|$)", re.M
)
_ALARM = re.compile(r"^BEGIN:VALARM\r?\n.*?^END:VALARM(?:\r?\n|$)", re.M | re.S)


def read_object(data: str | bytes, zone: ZoneInfo, window: tuple[datetime, datetime]) -> ReadObject:
    """The events and tasks of one iCalendar document; `zone` reads floating times."""
    found = ReadObject(complete_until=window[1])
    text = without_iana_definitions(_decoded(data, found.notes))
    parser = ObjectParser(_ALARM.sub("", _UNREAD_LINE.sub("", text)))
    try:
        calendar = parser.calendar()
    except Exception as error:  # icalendar raises ValueError and others on broken text
        raise UnreadableObject(f"not valid iCalendar: {error}") from error
    if not isinstance(calendar, Calendar):
        raise UnreadableObject("not an iCalendar document (no VCALENDAR)")
    for tzid, reason in parser.unusable.items():
        named = tzp.timezone(tzid)  # an IANA or Windows name, read as if it had no VTIMEZONE
        if named is None:
            raise UnreadableObject(f"time zone {tzid!r}: {reason}")
        found.notes.append(f"time zone {tzid!r}: {reason}; read as {named}")
    found.notes += _broken_lines(calendar)
    parts = calendar.walk("VEVENT")
    masters = {_uid(part) for part in parts if "RECURRENCE-ID" not in part}
    for part in parts:
        if "RECURRENCE-ID" in part and _uid(part) in masters:
            continue  # an exception to a recurrence: seen through the expansion
        try:
            found.events.append(_happening(part, zone, found.notes))
        except COMPONENT_ERRORS as error:
            found.notes.append(f"event {_uid(part)!r} skipped: {error}")
    within = [h for h in found.events if h.end >= window[0] and h.start <= window[1]]
    if any("RRULE" in part or "RDATE" in part for part in parts):
        expanded = _expand(calendar, parts, zone, window, found.notes)
        found.occurrences = within if expanded is None else expanded
        if expanded is not None and len(expanded) >= MAX_OCCURRENCES:  # in order, maybe cut
            found.complete_until = min(window[1], expanded[-1].start)
    else:
        found.occurrences = within
    for part in calendar.walk("VTODO"):
        try:
            found.tasks.append(_task(part, zone, found.notes))
        except COMPONENT_ERRORS as error:
            found.notes.append(f"task {_uid(part)!r} skipped: {error}")
    if not found.events and not found.tasks:
        if parts or calendar.walk("VTODO"):  # events or tasks, none of them readable
            raise UnreadableObject("; ".join(found.notes))
        found.unused = _nothing_in(calendar)
    return found


def _decoded(data: str | bytes, notes: list[str]) -> str:
    """The document as text: UTF-8 as RFC 5545 says, else Windows-1252, what old apps write.

    A byte order mark (Outlook's exports start with one) is dropped: icalendar
    takes it for the start of a broken first line.
    """
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        notes.append("not UTF-8: read as Windows-1252")
        return data.decode("cp1252", errors="replace")


def _broken_lines(calendar: Calendar) -> list[str]:
    """Lines icalendar left out because they are no property at all: worth a note, not fatal."""
    return [
        f"{_where(part)}: a broken line was left out ({message})"
        for part in calendar.walk()
        for name, message in part.errors
        if name is None
    ]


def _where(part: Component) -> str:
    name = str(part.name)
    return "VCALENDAR" if name == "VCALENDAR" else f"{name} {_uid(part)!r}"


def _nothing_in(calendar: Calendar) -> str:
    """Why a document with no event nor task is of no use: what it holds instead, if anything."""
    kinds = sorted({str(part.name) for part in calendar.subcomponents} - {"VTIMEZONE"})
    if kinds:
        return f"no event or task in it, only {', '.join(kinds)}"
    return "no event or task in it (an empty VCALENDAR)"


def _uid(part: Component) -> str:
    return _text(part, "UID") or "(no UID)"


def _text(part: Component, name: str) -> str:
    """A text property, control characters left out; the first one when an app wrote it twice."""
    value = part.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return _clean(str(value)) if value is not None else ""


def _html_description(part: Component) -> str:
    """Outlook's HTML copy of an empty DESCRIPTION (``X-ALT-DESC;FMTTYPE=text/html``)."""
    value = part.get("X-ALT-DESC")
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or str(getattr(value, "params", {}).get("FMTTYPE", "")).lower() != "text/html":
        return ""
    return _clean(str(value))


def _clean(text: str) -> str:
    return text.translate(CONTROLS)


def _categories(part: Component) -> frozenset[str]:
    values: Any = part.get("CATEGORIES")
    if values is None:
        return frozenset()
    groups = values if isinstance(values, list) else [values]
    found = {_clean(str(c)).strip().lower() for group in groups for c in getattr(group, "cats", [])}
    return frozenset(found - {""})


def _attendees(part: Component) -> frozenset[str]:
    """Who takes part: the attendees, and the organizer (Outlook does not list them twice)."""
    found = set()
    for name in ("ATTENDEE", "ORGANIZER"):
        values: Any = part.get(name)
        if values is None:
            continue
        for item in values if isinstance(values, list) else [values]:
            address = _clean(str(item)).strip()
            if address.lower().startswith("mailto:"):
                address = address[7:]
            if "@" in address:
                found.add(address.lower())
    return frozenset(found)


def _single(part: Component, name: str) -> Any:
    """A property that must appear once: written twice, which one to trust is unknown."""
    prop = part.get(name)
    if isinstance(prop, list):
        raise ValueError(f"{name} appears {len(prop)} times")
    return prop


def _when(part: Component, name: str, zone: ZoneInfo) -> tuple[datetime, bool]:
    """DTSTART or DTEND as an aware datetime, and whether it was a date."""
    prop = _single(part, name)
    found = _aware(_value(prop), zone)
    if found is None:
        raise ValueError(f"{name} is not a date or time: {_written(prop)!r}")
    return found


def _aware(value: Any, zone: ZoneInfo) -> tuple[datetime, bool] | None:
    """A date or time as an aware datetime (floating: in `zone`) and whether it was a date."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone), False
        return value, False
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=zone), True
    return None


def _duration(part: Component) -> timedelta:
    prop = _single(part, "DURATION")
    value = _value(prop)
    if not isinstance(value, timedelta):
        raise ValueError(f"DURATION is not a duration: {_written(prop)!r}")
    return value


def _value(prop: Any) -> Any:
    """A date, time or duration property's value; None when icalendar could not parse it.

    A value icalendar could not parse is kept as text (a vBroken, a str), and
    reading its ``dt`` raises: the caller says what is wrong instead.
    """
    return None if prop is None or isinstance(prop, str) else getattr(prop, "dt", None)


def _written(prop: Any) -> str:
    """A property's value as written, for a reason (icalendar keeps it in a broken value)."""
    if prop is None:
        return ""
    return str(prop) if isinstance(prop, str) else prop.to_ical().decode(errors="replace")


def _unknown_zone(part: Component, name: str) -> str | None:
    """The TZID of `name` when icalendar could not resolve it (it then gives a naive time)."""
    prop: Any = part.get(name)
    tzid = prop.params.get("TZID") if prop is not None and hasattr(prop, "params") else None
    if tzid and isinstance(_value(prop), datetime) and prop.dt.tzinfo is None:
        return str(tzid)
    return None


def _happening(part: Component, zone: ZoneInfo, notes: list[str]) -> Happening:
    uid = _uid(part)
    if "DTSTART" not in part:
        raise ValueError("no DTSTART")
    unknown = {_unknown_zone(part, name) for name in ("DTSTART", "DTEND")} - {None}
    notes += [f"event {uid!r}: unknown time zone {tzid!r}, read in {zone.key}" for tzid in unknown]
    start, all_day = _when(part, "DTSTART", zone)
    try:
        if "DTEND" in part:
            end, _ = _when(part, "DTEND", zone)
        elif "DURATION" in part:
            end = start + _duration(part)
        else:  # RFC 5545: a date lasts the day, a time is an instant
            end = start + ONE_DAY if all_day else start
    except OverflowError as error:
        raise ValueError(f"a time out of range, on {start.date()}") from error
    end, backwards = _span(start, end)
    if backwards:
        notes.append(f"event {uid!r}: ends before it starts; read as an instant")
    return Happening(
        **_described(part),
        start=start,
        end=end,
        all_day=all_day,
        recurring="RRULE" in part or "RDATE" in part or "RECURRENCE-ID" in part,
        open_end="DTEND" not in part and "DURATION" not in part,
        backwards=backwards,
    )


def _described(part: Component) -> dict[str, Any]:
    """What an event says apart from its times, the same for each of its occurrences."""
    return {
        "uid": _uid(part),
        "summary": _text(part, "SUMMARY"),
        "description": _text(part, "DESCRIPTION") or _html_description(part),
        "categories": _categories(part),
        "attendees": _attendees(part),
        "cancelled": _text(part, "STATUS").upper() == "CANCELLED",
    }


def _span(start: datetime, end: datetime) -> tuple[datetime, bool]:
    """The end of an event that can be compared with a window, and whether it was before
    the start (then read as the start: an instant)."""
    try:
        start.astimezone(UTC), end.astimezone(UTC)
    except OverflowError as error:
        raise ValueError(f"a time out of range, on {start.date()}") from error
    return (start, True) if end < start else (end, False)


def _occurrence(described: dict[str, Any], start: Any, end: Any, zone: ZoneInfo) -> Happening:
    """One occurrence of a recurring event, from its start and end and what the event says.

    What `_happening` reads from a copy of the event with this DTSTART and
    DTEND (no DURATION), as recurring_ical_events writes an occurrence.
    """
    begins = _aware(start, zone)
    if begins is None:
        raise ValueError(f"DTSTART is not a date or time: {start!r}")
    ends = _aware(end, zone)
    if ends is None:
        raise ValueError(f"DTEND is not a date or time: {end!r}")
    until, backwards = _span(begins[0], ends[0])
    return Happening(
        **described,
        start=begins[0],
        end=until,
        all_day=begins[1],
        recurring=True,
        open_end=False,
        backwards=backwards,
    )


def _expand(
    calendar: Calendar,
    parts: list[Component],
    zone: ZoneInfo,
    window: tuple[datetime, datetime],
    notes: list[str],
) -> list[Happening] | None:
    """The occurrences within the window, or None when the rules cannot be expanded.

    Occurrences come in order of start, so reading stops at the end of the
    window, or after MAX_OCCURRENCES, whichever comes first.
    """
    unexpanded = why_not_expanded(parts, window)
    if unexpanded:
        part, why = unexpanded
        notes.append(f"recurrence of {_uid(part)!r} not expanded: {why}")
        return None
    found: list[Happening] = []
    try:
        spans = occurrences_between(calendar, window)
    except Exception as error:  # the library raises its own kinds on odd rules
        notes.append(f"recurrence not expanded ({error}); its first occurrence is read")
        return None
    described: dict[int, dict[str, Any]] = {}  # by the id of the VEVENT an occurrence repeats
    for part, start, end in spans:
        try:  # every occurrence of a recurring event says so, exceptions included
            said = described.get(id(part))
            if said is None:
                said = described[id(part)] = _described(part)
            occurrence = _occurrence(said, start, end, zone)
        except COMPONENT_ERRORS as error:
            notes.append(f"occurrence of {_uid(part)!r} skipped: {error}")
            continue
        if occurrence.start <= window[1]:
            found.append(occurrence)
    found.sort(key=lambda happening: happening.start)
    if len(found) > MAX_OCCURRENCES:
        notes.append(f"more than {MAX_OCCURRENCES} occurrences; the first ones are read")
        del found[MAX_OCCURRENCES:]
    return found


def _task(part: Component, zone: tzinfo, notes: list[str]) -> TaskState:
    """A task's state; COMPLETED without a STATUS (Apple Reminders) means completed."""
    uid = _uid(part)
    when = None
    if "COMPLETED" in part:
        prop = _single(part, "COMPLETED")
        value = _value(prop)
        if isinstance(value, datetime):
            when = value if value.tzinfo else value.replace(tzinfo=zone)
        elif isinstance(value, date):
            when = datetime.combine(value, time.min, tzinfo=zone)
        else:
            notes.append(f"task {uid!r}: COMPLETED is not a time: {_written(prop)!r}")
    status = _text(part, "STATUS").upper()
    if "COMPLETED" in part and not status:
        status = "COMPLETED"
    return TaskState(uid=uid, status=status or "NEEDS-ACTION", completed_at=when)
