"""The time zones an object defines (its VTIMEZONEs), for that object only, read in bounded time.

icalendar turns a VTIMEZONE whose TZID is no IANA name into a dateutil zone
(dateutil.tz.tz._tzicalvtz, a private class), kept for the whole process
under its TZID, the first definition met winning, and has no public way not
to: "Customized Time Zone", Outlook's name for any zone a user made up,
defined as New York's in one object and Paris' in the next, read both at
-05:00. And dateutil looks for the onsets of a zone's observances from their
DTSTART (1601 for Outlook) up to the time asked, or up to the year 9999 for a
rule no day matches: 11 s to read one object with an hourly STANDARD rule,
minutes and gigabytes with a rule every minute. So `ObjectParser` overrides
the hooks of icalendar's parser where it keeps a zone, and a zone is used
only if its definition is like a real zone's, each observance's onsets then
listed once (`_onsets_listed`, which reaches into the observances of
dateutil's zone and their rrulesets). tests/test_ical_internals.py fails by
name should an icalendar or dateutil no longer have what this relies on.
"""

from __future__ import annotations

import datetime as datetime_module
import re
from bisect import bisect_left, bisect_right
from datetime import datetime, tzinfo
from functools import cache
from itertools import islice
from typing import Any
from zoneinfo import available_timezones

from dateutil.tz.tz import _tzicalvtz
from icalendar import Calendar, Component, Timezone
from icalendar.parser import Parameters
from icalendar.parser.content_line import NEWLINE, UFOLD, Contentline
from icalendar.parser.ical import CalendarIcalParser
from icalendar.timezone import tzp

from followupd.sources.ical.recurrence import search_up_to

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
# what makes a content line's name not plain: a parameter, a quote, an escape
_NOT_PLAIN_BEFORE = re.compile(r'[;"\\]')
_BLANKS = re.compile(r"[ \t]+")  # left out of a name, as icalendar does when not strict
_TOKEN = re.compile(r"[\w.-]+")  # a name icalendar takes (its NAME)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9-]+")
_PLAIN_PARAMETERS = re.compile(r'(?:;[A-Za-z0-9-]+=[^";:,%\\^\x00-\x20\x7f]*)+')
# a VTIMEZONE whose TZID, on its first line, unfolded, may be an IANA name
_NAMED_DEFINITION = re.compile(
    r"^BEGIN:VTIMEZONE\r?\nTZID:([^\r\n;:]+)\r?\n(?![ \t]).*?^END:VTIMEZONE\r?\n", re.M | re.S
)


def without_iana_definitions(text: str) -> str:
    """The document without the VTIMEZONEs of IANA names, which nothing reads: tzdata is exact.

    `ObjectParser` ignores such a definition once parsed, as icalendar does;
    parsing it was much of the work of reading a timed event. Only a definition
    that starts with its TZID is taken out; any other is parsed as before.
    """
    if "BEGIN:VTIMEZONE" not in text:
        return text
    names = _iana_names()
    return _NAMED_DEFINITION.sub(
        lambda found: "" if found.group(1).strip("/") in names else found.group(0), text
    )


class _Line(Contentline):
    """icalendar's content line, split at once when its parts are plain.

    icalendar looks for the colon after the name character by character, over
    the whole line, value included (a third of the time parsing an object),
    then reads the parameters through its general parser. A line with no
    parameter, nothing quoted nor escaped before its colon (SUMMARY,
    DESCRIPTION, UID, RRULE, BEGIN...), or whose parameters are plain
    words (``;TZID=Europe/Paris``, ``;VALUE=DATE``: no quote, list, escape,
    space or control character) is split here into the same name,
    parameters and value; any other line is split by icalendar.
    """

    __slots__ = ()

    def raw_parts(self) -> tuple[str, Parameters, str]:
        colon = self.find(":")
        if colon > 0:
            semicolon = self.find(";", 0, colon)
            if semicolon < 0 and not _NOT_PLAIN_BEFORE.search(self, 0, colon):
                name = _BLANKS.sub("", self[:colon].strip())  # as icalendar, not strict
                if _TOKEN.fullmatch(name):
                    return name, Parameters(), self[colon + 1 :]
            elif (
                semicolon > 0
                and _PLAIN_NAME.fullmatch(self, 0, semicolon)
                and _PLAIN_PARAMETERS.fullmatch(self, semicolon, colon)
            ):
                pairs = (pair.split("=", 1) for pair in self[semicolon + 1 : colon].split(";"))
                return self[:semicolon], Parameters(pairs), self[colon + 1 :]
        found: tuple[str, Parameters, str] = super().raw_parts()
        return found


def _lines(text: str) -> list[Contentline]:
    """The document's content lines, unfolded, as icalendar's Contentlines.from_ical makes them."""
    lines: list[Contentline] = [
        _Line(line)  # type: ignore[no-untyped-call]
        for line in NEWLINE.split(UFOLD.sub("", text))
        if line
    ]
    lines.append(_Line(""))  # type: ignore[no-untyped-call]
    return lines


class ObjectParser(CalendarIcalParser):
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
        super().__init__(_lines(text), Calendar._get_component_factory(), Calendar.types_factory)
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
    search_up_to), and the onsets listed for bisection. After that year an
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
            instances = list(islice(search_up_to(ends[rule])(rule), MAX_ONSETS + 1))
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
