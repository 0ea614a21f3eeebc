"""Reading calendar objects as they come from real calendar apps, odd ones included.

One CalDAV object (one iCalendar document) becomes the events and task states
followupd looks at. What apps produce varies: all-day events (DTSTART a date,
DTEND the day after), floating times (no zone: read in the owner's zone),
zones by Windows names (their VTIMEZONE is used), zones nobody knows (read in
the owner's zone, with a note), zones an object defines (for that object
only, if like a real zone: see _ObjectParser), DURATION instead of DTEND,
neither (an instant, or one day), recurrences with exceptions (expanded over a bounded window), an
invitation to one occurrence only (a RECURRENCE-ID with no rule beside it),
text in Windows-1252 rather than UTF-8, lines that are no property at all. A
component that cannot be read is left out with a note; a document that cannot
be parsed at all, or whose events and tasks all fail, raises UnreadableObject
with the reason; one holding no event nor task (a journal, free/busy time) is
read as empty, its `unused` saying what it holds.
"""

from __future__ import annotations

import datetime as datetime_module
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from itertools import islice
from types import FunctionType, SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import recurring_ical_events
from dateutil.rrule import rrule
from dateutil.tz.tz import _tzicalvtz
from icalendar import Calendar, Component, Timezone
from icalendar.parser.ical import CalendarIcalParser
from icalendar.timezone import tzp

ONE_DAY = timedelta(days=1)
# occurrences read per object within the window: enough for a daily meeting over
# years, and a rule that repeats every hour cannot stall a sync
MAX_OCCURRENCES = 1000
# a rule repeating more often than this a day is no meeting, and expanding one
# that repeats every second takes minutes: such rules are not expanded
MAX_PER_DAY = 24
PER_DAY = {"SECONDLY": 86_400, "MINUTELY": 1_440, "HOURLY": 24}
# control characters are no text (RFC 5545 forbids them but tabs): a NUL, which
# some sync tools leave in, cannot even be stored in PostgreSQL, and C1 ones come
# from Windows-1252 read as Latin-1 (a server's fallback: "–" becomes U+0096)
CONTROLS = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])
# what can go wrong reading one component of a parsed document (icalendar's
# own errors are ValueErrors; a year 9999 overflows when a day is added)
COMPONENT_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


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


def read_object(data: str | bytes, zone: ZoneInfo, window: tuple[datetime, datetime]) -> ReadObject:
    """The events and tasks of one iCalendar document; `zone` reads floating times."""
    found = ReadObject(complete_until=window[1])
    parser = _ObjectParser(_decoded(data, found.notes))
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
    value = _value(prop)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone), False
        return value, False
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=zone), True
    raise ValueError(f"{name} is not a date or time: {_written(prop)!r}")


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
        start.astimezone(UTC), end.astimezone(UTC)  # so it can be compared with the window
    except OverflowError as error:
        raise ValueError(f"a time out of range, on {start.date()}") from error
    backwards = end < start
    if backwards:
        notes.append(f"event {uid!r}: ends before it starts; read as an instant")
        end = start
    return Happening(
        uid=uid,
        summary=_text(part, "SUMMARY"),
        description=_text(part, "DESCRIPTION") or _html_description(part),
        categories=_categories(part),
        attendees=_attendees(part),
        start=start,
        end=end,
        all_day=all_day,
        recurring="RRULE" in part or "RDATE" in part or "RECURRENCE-ID" in part,
        open_end="DTEND" not in part and "DURATION" not in part,
        backwards=backwards,
        cancelled=_text(part, "STATUS").upper() == "CANCELLED",
    )


def _per_day(part: Component) -> int:
    """At most how many times a day the rules of an event repeat (times within a day multiply)."""
    rules: Any = part.get("RRULE")
    most = 1
    for rule in rules if isinstance(rules, list) else [rules]:
        if not isinstance(rule, dict):
            continue  # none, or broken: the expansion says what is wrong with it
        frequency = str((rule.get("FREQ") or [""])[0]).upper()
        times = PER_DAY.get(frequency) or max(1, len(rule.get("BYHOUR", [])))
        for within_an_hour in ("BYMINUTE", "BYSECOND"):
            times *= max(1, len(rule.get(within_an_hour, [])))
        most = max(most, times)
    return most


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
    frequent = [_uid(part) for part in parts if _per_day(part) > MAX_PER_DAY]
    if frequent:
        notes.append(
            f"recurrence of {frequent[0]!r} not expanded: more than {MAX_PER_DAY} times a day"
            "; its first occurrence is read"
        )
        return None
    stuck = [_uid(part) for part in parts if not _advances(part)]
    if stuck:
        notes.append(f"recurrence of {stuck[0]!r} not expanded: its INTERVAL is not positive")
        return None
    costly = [_uid(part) for part in parts if _steps(part, window) > MAX_STEPS]
    if costly:
        notes.append(f"recurrence of {costly[0]!r} not expanded: it starts too long before")
        return None
    found: list[Happening] = []
    try:
        query = recurring_ical_events.of(calendar, components=[_EVENT_SERIES])
        parts_found = query.between(window[0], window[1])
    except Exception as error:  # the library raises its own kinds on odd rules
        notes.append(f"recurrence not expanded ({error}); its first occurrence is read")
        return None
    for part in parts_found:
        try:  # every occurrence of a recurring event says so, exceptions included
            occurrence = replace(_happening(part, zone, []), recurring=True)
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


MAX_STEPS = 200_000


def _rules(part: Component) -> list[dict[str, Any]]:
    rules: Any = part.get("RRULE")
    listed = rules if isinstance(rules, list) else [rules]
    return [rule for rule in listed if isinstance(rule, dict)]


def _advances(part: Component) -> bool:
    return all(
        isinstance(step, int) and step >= 1
        for rule in _rules(part)
        for step in rule.get("INTERVAL", [1])
    )


def _steps(part: Component, window: tuple[datetime, datetime]) -> int:
    start = _value(part.get("DTSTART")) if not isinstance(part.get("DTSTART"), list) else None
    if not isinstance(start, date) or not _rules(part):
        return 0
    first = start.date() if isinstance(start, datetime) else start
    return max(0, (window[1].date() - first).days) * _per_day(part)


class _RuleSearchedUpToTheQuery:
    """One RRULE of an event, whose instances are looked for up to the end of the query only.

    dateutil looks for the instances of a rule period after period (year,
    month, week, day or hour, by FREQ), and stops at an instance after the end
    of the query, at COUNT or UNTIL (both are checked on an instance), or once
    past the year 9999. So for a rule no day can match (BYMONTH=2 with
    BYMONTHDAY=30, BYMONTHDAY=31 in April, BYSETPOS=2 of a set of one day...)
    it went through every period up to 9999, whatever the window: up to ten
    seconds to read one object. And for a rule matched rarely (29 February on
    a Monday) it looked decades ahead, for the ten instances its cache reads
    at once. Here dateutil's own search (the code of rrule._iter, so the
    instances are exactly dateutil's) runs with datetime.MAXYEAR set to the
    year after the query ends, and without a cache.

    A rule no day matches thus gives no instance, and its event, as RFC 5545
    has it, only the instance of its DTSTART, read if it falls in the window;
    without a note, since a rule can as well have no instance in the window.
    """

    def __init__(self, rule: rrule) -> None:
        self.rule = rule
        self.until = rule.until  # recurring_ical_events keeps UNTIL there, and reads it

    def between(self, after: datetime, before: datetime, inc: bool = False) -> list[datetime]:
        # time zones apart, an instance before the end of the query can be in the next year
        search = _search_up_to(min(before.year + 1, datetime_module.MAXYEAR))
        found = []
        for instant in search(self.rule):
            if instant > before or (instant == before and not inc):
                break
            if instant > after or (instant == after and inc):
                found.append(instant)
        return found


@cache
def _search_up_to(last_year: int) -> Callable[[rrule], Iterator[datetime]]:
    """dateutil's rrule._iter, giving up after `last_year` rather than after the year 9999.

    The same code, with the names of its module but `datetime`, whose MAXYEAR
    (where dateutil gives up) is `last_year`. Should a dateutil no longer read
    it, the timed tests of such rules in tests/test_calendar_corpus.py fail.
    """
    calendar_to = SimpleNamespace(**{**vars(datetime_module), "MAXYEAR": last_year})
    search = rrule._iter
    return FunctionType(search.__code__, {**search.__globals__, "datetime": calendar_to})


class _SeriesSearchedUpToTheQuery(recurring_ical_events.Series):  # type: ignore[misc]
    """recurring_ical_events' series of an event, its rules searched up to the query's end."""

    class RecurrenceRules(recurring_ical_events.Series.RecurrenceRules):  # type: ignore[misc]
        def rrulestr(self, rule_string: str) -> Any:
            rule = super().rrulestr(rule_string)
            return _RuleSearchedUpToTheQuery(rule) if isinstance(rule, rrule) else rule


_EVENT_SERIES = recurring_ical_events.ComponentsWithName(
    "VEVENT", series=_SeriesSearchedUpToTheQuery
)


# -- the time zones an object defines -----------------------------------------------------

# the Gregorian calendar repeats every 400 years (146,097 days, whole weeks): so do the
# days a yearly rule picks
CYCLE = 400
# onsets a zone may list, or its rules give up to CYCLE years past its last date: a zone
# of Outlook's, from 1601, has 800; 5,000 RDATEs are no zone
MAX_ONSETS = 2_000
# observances (STANDARD, DAYLIGHT) of a zone: dateutil looks at each for every time it
# reads, 1 to 2 µs each; a real zone has 2, or some tens with its whole history
MAX_OBSERVANCES = 100
# years dateutil goes through for the rules of a zone, 30 to 60 µs each: 800 for two rules,
# about 1,000 for a zone with its whole history (vzic's)
MAX_RULE_YEARS = 1_600
# what a zone's rule may say: an RRULE of RFC 5545 but COUNT (they end by UNTIL)
ZONE_RULE_PARTS = {
    *("FREQ", "INTERVAL", "UNTIL", "WKST", "BYSETPOS", "BYMONTH", "BYWEEKNO", "BYYEARDAY"),
    *("BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE", "BYSECOND"),
}
MAX_DEFINITIONS = 256  # zones kept by their definition, for the objects that repeat it
OBSERVANCES = ("STANDARD", "DAYLIGHT")


class _ObjectParser(CalendarIcalParser):
    """icalendar's parser, but the VTIMEZONEs of an object serve that object only, if sound.

    icalendar builds a zone from a VTIMEZONE whose TZID is no IANA name, and
    keeps it for the whole process under that TZID, the first one met
    winning. So an object that defined a zone under a name used before was
    read in the first definition ("Customized Time Zone" is what Outlook
    calls any zone a user made up: New York's, then Paris'), and so was one
    with no definition at all (rather than in the owner's zone, with a
    note). Here each object reads its TZIDs by its own VTIMEZONEs, nothing
    being kept by name (a zone is only shared by objects with the very same
    definition); a TZID it does not define is read by its name, by
    icalendar, as before: IANA and Windows names are known, others are not.
    A VTIMEZONE of an IANA name is not used, as in icalendar: tzdata is exact.

    dateutil, which reads a VTIMEZONE, looks for the onsets of its
    observances (STANDARD, DAYLIGHT) from their DTSTART up to the time
    asked, or up to the year 9999 for a rule no day matches: seconds, or
    minutes for a rule repeating every minute, for one object. So a
    definition is used only if it is like a real zone's (see _zone_of).
    When it is not, its TZID is read by its name if it has one icalendar
    knows (a Windows name: "Romance Standard Time" is Europe/Paris), with a
    note; else the object is refused with the reason, as what the zone means
    would be a guess. A definition no property uses refuses nothing.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text, Calendar._get_component_factory(), Calendar.types_factory)
        self.text = text
        self.zones: dict[str, tzinfo | str] = {}  # TZID: its zone, or why it cannot be used
        self.unusable: dict[str, str] = {}  # the TZIDs used whose definition cannot be, why

    def calendar(self) -> Component:
        """The one component of the document, as Calendar.from_ical gives it."""
        found = self.parse()
        if len(found) != 1:
            what = "multiple components where only one is allowed"
            if not found:
                what = "no components where exactly one is required"
            raise ValueError(Calendar._format_error(f"Found {what}", self.text))  # type: ignore[no-untyped-call]
        return found[0]

    def handle_end_component(self, vals: str) -> None:
        if vals.upper() != "VTIMEZONE" or not self._stack:
            super().handle_end_component(vals)
            return
        definition = self._stack.pop()  # as icalendar does, but for keeping its zone
        if self._stack:
            self._stack[-1].add_component(definition)
        else:
            self._components.append(definition)
        tzid = definition.get("TZID")
        if isinstance(tzid, str) and tzid.strip("/") not in _iana_names():
            self.zones.setdefault(str(tzid), _zone_defined(definition))

    def parse_and_add_property(
        self, name: str, params: Any, val: str, tzid: str | None, line: Any
    ) -> None:
        zone = self.zones.get(tzid) if tzid else None
        if isinstance(zone, str) and tzid:
            self.unusable[tzid] = zone  # then read by its name, if it is one
        elif zone is not None:
            # icalendar's from_ical takes a zone as well as a name, but for a date (20261203):
            # that is read without, a date having no zone (RFC 5545, 3.2.19)
            dated = any(len(value) == 8 for value in val.split(","))
            tzid = None if dated else zone  # type: ignore[assignment]
        super().parse_and_add_property(name, params, val, tzid, line)


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


_DEFINED: dict[bytes, tzinfo | str] = {}  # the zones of the definitions met, by their text


def _zone_defined(definition: Component) -> tzinfo | str:
    """The zone a VTIMEZONE defines, or why it cannot be used; made once per definition.

    Made, it takes 1 to 60 ms (most of it dateutil's search of its rules); an
    object whose definition was met before (Outlook repeats its own in each
    object) shares its zone, which the definition alone makes.
    """
    why = _unlike_a_zone(definition)
    if why:
        return why
    try:
        text = definition.to_ical()
    except Exception as error:  # what icalendar left broken
        return f"its VTIMEZONE cannot be read ({error})"
    if text not in _DEFINED:
        if len(_DEFINED) >= MAX_DEFINITIONS:
            del _DEFINED[next(iter(_DEFINED))]
        _DEFINED[text] = _zone_of(definition)
    return _DEFINED[text]


def _unlike_a_zone(definition: Component) -> str | None:
    """Why a VTIMEZONE is not like a real zone's, as far as it says it (its onsets tell more).

    RFC 5545 (3.6.5) starts an observance at its DTSTART, its RDATEs and the
    instances of its RRULE. A real zone's rules are yearly (the last Sunday
    of October...), and end by UNTIL; its observances and dates number tens
    to hundreds. So a rule must repeat every year and say nothing else than
    a rule of RFC 5545 but COUNT, and a zone can have MAX_OBSERVANCES
    observances and list MAX_ONSETS onsets.
    """
    observances = [part for part in definition.subcomponents if part.name in OBSERVANCES]
    if len(observances) > MAX_OBSERVANCES:
        return f"it has more than {MAX_OBSERVANCES} observances"
    listed = sum(1 + _count(part, "RDATE") + _count(part, "EXDATE") for part in observances)
    if listed > MAX_ONSETS:
        return f"it lists more than {MAX_ONSETS} onsets"
    for part in observances:
        if "EXRULE" in part:
            return f"its {part.name} has an EXRULE, which RFC 5545 has no more"
        for rule in _listed(part.get("RRULE")):
            why = _not_yearly(rule)
            if why:
                return f"its {part.name} rule {why}"
    return None


def _zone_of(definition: Component) -> tzinfo | str:
    """The zone dateutil makes of a VTIMEZONE, as icalendar builds it, or why there is none.

    Its rules must match some day, and be searched over MAX_RULE_YEARS years
    at most; each observance's onsets are then listed once (see _Onsets).
    """
    if not isinstance(definition, Timezone):
        return f"its VTIMEZONE is a {type(definition).__name__}"
    try:
        zone = definition.to_tz(tzp, lookup_tzid=False)  # made afresh, not kept by icalendar
    except Exception as error:  # dateutil's ValueErrors on what it cannot read, and others
        return f"its VTIMEZONE cannot be read ({error})"
    if not isinstance(zone, _tzicalvtz):
        return f"icalendar made no dateutil zone of it but {type(zone).__name__}"
    return _onsets_listed(zone)


def _listed(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _count(part: Component, name: str) -> int:
    """How many dates a property lists (RDATE, EXDATE), all of its lines together."""
    return sum(len(getattr(value, "dts", [value])) for value in _listed(part.get(name)))


def _not_yearly(rule: Any) -> str | None:
    """Why an observance's rule is not like a real zone's, if it is not."""
    if not isinstance(rule, dict):
        return f"cannot be read: {rule!r}"
    frequency = ",".join(str(value) for value in rule.get("FREQ", [])).upper()
    if frequency != "YEARLY":
        return f"repeats {frequency or 'with no FREQ'}, not YEARLY"
    interval = rule.get("INTERVAL", [1])
    if list(interval) != [1]:
        return f"repeats every {','.join(map(str, interval))} years, not every year"
    other = sorted(str(part) for part in set(rule) - ZONE_RULE_PARTS)
    if other:
        return f"has {', '.join(other)}, which a zone's rule has not"
    return None


def _onsets_listed(zone: Any) -> tzinfo | str:
    """dateutil's zone, the onsets of each observance listed up to CYCLE years past its last date.

    dateutil keeps an observance's onsets as a set of rules and dates (an
    rruleset: its DTSTART and RDATEs, its RRULEs, less its EXDATEs), and asks
    it for the last onset before a time. Here the rules are searched up to
    the year CYCLE years after the last date written in the definition (a
    DTSTART, an RDATE, an UNTIL...), with dateutil's own search (see
    _search_up_to), and the onsets listed for bisection. After that year an
    observance whose rule has no UNTIL starts as it did CYCLE years before,
    which is exact: the days its yearly rule picks repeat every CYCLE years.
    """
    sets = [observance.rrule for observance in zone._comps]
    written = [day for onsets in sets for day in (*onsets._rdate, *onsets._exdate)]
    for rule in (rule for onsets in sets for rule in onsets._rrule):
        written += [day for day in (rule._dtstart, rule._until) if day is not None]
    last_year = min(max(day.year for day in written) + CYCLE, datetime_module.MAXYEAR)
    ends = {
        rule: min(rule._until.year, last_year) if rule._until else last_year
        for onsets in sets
        for rule in onsets._rrule
    }
    if sum(max(0, end - rule._dtstart.year + 1) for rule, end in ends.items()) > MAX_RULE_YEARS:
        return f"its rules run over more than {MAX_RULE_YEARS} years up to {last_year}"
    total = 0
    for observance, onsets in zip(zone._comps, sets, strict=True):
        found = set(onsets._rdate)
        for rule in onsets._rrule:
            instances = list(islice(_search_up_to(ends[rule])(rule), MAX_ONSETS + 1))
            if not instances and rule._until is None:  # none in CYCLE years: none ever
                return f"its {'DAYLIGHT' if observance.isdst else 'STANDARD'} rule matches no day"
            found.update(instances)
        found.difference_update(onsets._exdate)
        total += len(found)
        if total > MAX_ONSETS:
            return f"its rules give more than {MAX_ONSETS} onsets up to {last_year}"
        repeats = any(rule._until is None for rule in onsets._rrule)
        observance.rrule = _Onsets(sorted(found), last_year if repeats else None)
    return zone  # type: ignore[no-any-return]


class _Onsets:
    """The onsets of an observance, answering dateutil's question (`before`) by bisection.

    After `last_year` (None: never), an onset is the one CYCLE years, or a
    multiple of it, before; `last_year` is CYCLE years past every date
    written in the definition, so the onsets of its last CYCLE years all come
    from its rule, one at least.
    """

    def __init__(self, onsets: list[datetime], last_year: int | None) -> None:
        self.onsets = onsets
        self.last_year = last_year

    def before(self, dt: datetime, inc: bool = False) -> datetime | None:
        last_year, cycles = self.last_year, 0
        if last_year is not None and dt.year > last_year:
            cycles = (dt.year - last_year - 1) // CYCLE + 1
            dt = dt.replace(year=dt.year - cycles * CYCLE)
        index = (bisect_right if inc else bisect_left)(self.onsets, dt)
        onset = self.onsets[index - 1] if index else None
        if last_year is not None and cycles and (onset is None or onset.year <= last_year - CYCLE):
            onset, cycles = self.onsets[-1], cycles - 1  # none in this cycle yet: the last before
        return onset.replace(year=onset.year + cycles * CYCLE) if onset and cycles else onset


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
