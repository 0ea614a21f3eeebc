"""The library internals the iCalendar reader relies on, each checked by name.

followupd.sources.ical overrides or reaches into parts of dateutil, icalendar
and recurring_ical_events that they do not document (recurrence.py and
vtimezone.py say why: rules and zones that took seconds, minutes or
gigabytes to read, zones kept by name for the whole process). pyproject.toml
keeps each library below its next major version, but a minor release may
still rename or reshape such a part: the test of that internal then fails,
naming it and the module of followupd that relies on it, rather than the
reader going wrong elsewhere, or only slow. The behaviour of each patch is
tested in tests/test_calendar_corpus.py (timed rules and zones) and here.
"""

from __future__ import annotations

import datetime as datetime_module
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from types import FunctionType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from dateutil.rrule import DAILY, YEARLY, rrule, rruleset
from dateutil.tz import tz as dateutil_tz
from icalendar import Calendar, Timezone
from icalendar.parser.content_line import Contentline, Contentlines
from icalendar.parser.ical import CalendarIcalParser
from icalendar.timezone import tzp

from followupd.sources.ical.read import read_object
from followupd.sources.ical.recurrence import _RuleSearchedUpToTheQuery, search_up_to
from followupd.sources.ical.vtimezone import _Line, _lines, _Onsets

RECURRENCE = "followupd.sources.ical.recurrence"
VTIMEZONE = "followupd.sources.ical.vtimezone"
PARIS = ZoneInfo("Europe/Paris")
WINDOW = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))

# Outlook's way to write a zone a user made up (Paris' rules, from 1601), under a TZID of
# this module's own: icalendar's parser, which the checks below run, keeps a zone by its
# TZID for the whole process, and other tests read "Customized Time Zone" as unknown
ZONE_NAME = "Customized Time Zone (test_ical_internals)"


def zone_definition(tzid: str) -> str:
    return f"""\
BEGIN:VTIMEZONE
TZID:{tzid}
BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
"""


CUSTOM_ZONE = zone_definition(ZONE_NAME)


def calendar_text(*components: str) -> str:
    return "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//followupd//tests//EN"]
        + [line for component in components for line in component.strip("\n").split("\n")]
        + ["END:VCALENDAR", ""]
    )


def event(*lines: str, uid: str = "internals-1") -> str:
    return "\n".join(["BEGIN:VEVENT", f"UID:{uid}", "SUMMARY:Point", *lines, "END:VEVENT"])


IN_CUSTOM_ZONE = calendar_text(CUSTOM_ZONE, event(f"DTSTART;TZID={ZONE_NAME}:20261203T100000"))


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def custom_zone() -> Any:
    """The zone icalendar makes of CUSTOM_ZONE, as vtimezone._zone_of asks for it."""
    definition = Calendar.from_ical(calendar_text(CUSTOM_ZONE)).walk("VTIMEZONE")[0]
    assert isinstance(definition, Timezone)
    return definition.to_tz(tzp, lookup_tzid=False)


# -- dateutil -----------------------------------------------------------------------------


def rrule_iter() -> None:
    search = rrule.__dict__.get("_iter")
    assert isinstance(search, FunctionType), f"not a function defined on rrule: {search!r}"
    assert parameters(search) == ["self"], f"parameters {parameters(search)}, not ['self']"
    assert inspect.isgeneratorfunction(search), "no longer a generator"
    assert search.__code__.co_freevars == (), "a closure: its code cannot run on other globals"
    assert search.__globals__.get("datetime") is datetime_module, (
        "its module's global `datetime` is no longer the datetime module"
    )
    assert {"datetime", "MAXYEAR"} <= set(search.__code__.co_names), (
        "it no longer reads datetime.MAXYEAR, where it gives up"
    )


def rrule_dtstart_until() -> None:
    start, until = datetime(1601, 10, 28, 3), datetime(2006, 10, 29, 3)
    rule = rrule(YEARLY, dtstart=start, until=until)
    assert (rule._dtstart, rule._until) == (start, until), "not the rule's DTSTART and UNTIL"
    assert rrule(YEARLY, dtstart=start)._until is None, "_until is not None without UNTIL"


def rruleset_parts() -> None:
    rule = rrule(YEARLY, dtstart=datetime(2026, 1, 1))
    day, other = datetime(2026, 6, 1), datetime(2027, 1, 1)
    onsets = rruleset()
    onsets.rrule(rule)
    onsets.rdate(day)
    onsets.exdate(other)
    found = (onsets._rrule, onsets._rdate, onsets._exdate)
    assert found == ([rule], [day], [other]), f"not the set's rules, dates, exclusions: {found}"


def tzicalvtz() -> None:
    zone = custom_zone()
    assert isinstance(zone, dateutil_tz._tzicalvtz), (
        f"icalendar makes a {type(zone).__module__}.{type(zone).__name__} of a VTIMEZONE"
    )


def tzicalvtz_comps() -> None:
    observances = custom_zone()._comps
    assert isinstance(observances, list), f"_comps is a {type(observances).__name__}"
    assert sorted(observance.isdst for observance in observances) == [False, True]
    for observance in observances:
        assert isinstance(observance.rrule, rruleset), (
            f"an observance's rrule is a {type(observance.rrule).__name__}, not an rruleset"
        )


def tzicalvtz_asks_before() -> None:
    zone = custom_zone()
    asked: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    class Recorded:
        def __init__(self, onsets: Any) -> None:
            self.onsets = onsets

        def before(self, *args: Any, **kwargs: Any) -> Any:
            asked.append((args, kwargs))
            return self.onsets.before(*args, **kwargs)

    for observance in zone._comps:
        observance.rrule = Recorded(observance.rrule)
    summer = datetime(2026, 7, 2, 10, tzinfo=zone)
    assert summer.utcoffset() == timedelta(hours=2)
    assert asked, "the zone no longer asks its observances' rrule for their onsets"
    for args, kwargs in asked:  # _Onsets' onsets are naive, as dateutil's
        call = f"before(*{args}, **{kwargs})"
        try:
            bound = inspect.signature(_Onsets.before).bind(None, *args, **kwargs)
        except TypeError:
            raise AssertionError(f"asked {call}, which _Onsets.before cannot answer") from None
        dt = bound.arguments["dt"]
        assert isinstance(dt, datetime) and dt.tzinfo is None, f"asked {call}: no naive time"


# -- icalendar ----------------------------------------------------------------------------


def parser_init() -> None:
    found = parameters(CalendarIcalParser.__init__)
    assert found == ["self", "data", "component_factory", "types_factory"], f"parameters {found}"


def calendar_factories() -> None:
    factory = Calendar._get_component_factory()
    assert factory.get_component_class("VTIMEZONE") is Timezone, "no component factory"
    assert callable(Calendar.types_factory.for_property), "no types factory"


def calendar_format_error() -> None:
    assert isinstance(inspect.getattr_static(Calendar, "_format_error"), staticmethod)
    message = Calendar._format_error("Found nothing", "BEGIN:VCALENDAR")  # type: ignore[no-untyped-call]
    assert message == "Found nothing: BEGIN:VCALENDAR", f"formats {message!r}"


class RecordingParser(CalendarIcalParser):
    """icalendar's parser, noting what its hooks see."""

    def __init__(self, text: str) -> None:
        super().__init__(text, Calendar._get_component_factory(), Calendar.types_factory)
        self.ended: list[tuple[str, str]] = []  # END's value, the top of the stack
        self.properties: list[tuple[str, str | None]] = []  # name, TZID

    def handle_end_component(self, vals: str) -> None:
        self.ended.append((vals, str(self._stack[-1].name) if self._stack else ""))
        super().handle_end_component(vals)

    def parse_and_add_property(
        self, name: str, params: Any, val: str, tzid: str | None, line: Any
    ) -> None:
        self.properties.append((name, tzid))
        super().parse_and_add_property(name, params, val, tzid, line)


def parser_handle_end_component() -> None:
    found = parameters(CalendarIcalParser.handle_end_component)
    assert found == ["self", "vals"], f"parameters {found}"
    parser = RecordingParser(IN_CUSTOM_ZONE)
    parser.parse()
    assert ("VTIMEZONE", "VTIMEZONE") in parser.ended, (
        f"not called at END:VTIMEZONE with the zone on top of _stack: {parser.ended}"
    )


def parser_parse_and_add_property() -> None:
    found = parameters(CalendarIcalParser.parse_and_add_property)
    assert found == ["self", "name", "params", "val", "tzid", "line"], f"parameters {found}"
    parser = RecordingParser(IN_CUSTOM_ZONE)
    parser.parse()
    assert ("DTSTART", ZONE_NAME) in parser.properties, (
        f"DTSTART's TZID not passed to it: {parser.properties}"
    )


def parser_stack_and_components() -> None:
    parser = RecordingParser(IN_CUSTOM_ZONE)
    found = parser.parse()
    assert parser._stack == [], f"_stack is {parser._stack!r} after parsing, not []"
    assert parser._components is found, "_components is not the list parse() returns"
    assert [str(part.name) for part in found] == ["VCALENDAR"]


def from_ical_takes_a_zone() -> None:
    zone = custom_zone()
    for name, text in [
        *[(name, "20261203T100000") for name in ("DTSTART", "DTEND", "RECURRENCE-ID", "DUE")],
        *[(name, "20261203T100000,20261210T100000") for name in ("RDATE", "EXDATE")],
    ]:
        factory: Any = Calendar.types_factory.for_property(name, None)
        value = factory.from_ical(text, zone)
        times = [value] if isinstance(value, datetime) else list(value)
        assert all(time.tzinfo is zone for time in times), (
            f"{name}'s from_ical did not read {text} in the zone it was given: {value!r}"
        )


def timezone_to_tz() -> None:
    found = inspect.signature(Timezone.to_tz).parameters
    assert "lookup_tzid" in found, f"Timezone.to_tz has no lookup_tzid: {list(found)}"
    assert custom_zone() is not custom_zone(), "to_tz(lookup_tzid=False) keeps its zones"


# -- recurring_ical_events ----------------------------------------------------------------


def recurrence_rules_rrulestr() -> None:
    rules: Any = recurring_ical_events.Series.__dict__.get("RecurrenceRules")
    assert isinstance(rules, type), "Series has no class RecurrenceRules of its own"
    make = vars(rules).get("rrulestr")
    assert callable(make), "RecurrenceRules defines no rrulestr"
    assert parameters(make) == ["self", "rule_string"], f"parameters {parameters(make)}"


def components_with_name_series() -> None:
    found = parameters(recurring_ical_events.ComponentsWithName.__init__)
    assert "series" in found, f"ComponentsWithName takes no series: {found}"
    assert "components" in parameters(recurring_ical_events.of), "of() takes no components"


def series_asks_its_rules() -> None:
    made: list[RecordedRule] = []

    class RecordedRule(_RuleSearchedUpToTheQuery):
        def __init__(self, rule: rrule) -> None:
            super().__init__(rule)
            self.asked: list[tuple[datetime, datetime, bool]] = []
            made.append(self)

        def between(self, after: datetime, before: datetime, inc: bool = False) -> list[datetime]:
            self.asked.append((after, before, inc))
            return super().between(after, before, inc)

    class RecordedSeries(recurring_ical_events.Series):  # type: ignore[misc]
        class RecurrenceRules(recurring_ical_events.Series.RecurrenceRules):  # type: ignore[misc]
            def rrulestr(self, rule_string: str) -> Any:
                return RecordedRule(super().rrulestr(rule_string))

    weekly = event("DTSTART:20261102T090000Z", "RRULE:FREQ=WEEKLY;UNTIL=20261231T000000Z")
    calendar = Calendar.from_ical(calendar_text(weekly))
    selection = recurring_ical_events.ComponentsWithName("VEVENT", series=RecordedSeries)
    found = recurring_ical_events.of(calendar, components=[selection]).between(*WINDOW)
    assert len(found) == 9, f"{len(found)} Mondays of November and December, not 9"
    assert len(made) == 1, f"RecurrenceRules.rrulestr made {len(made)} rules, not 1"
    assert made[0].asked, "the rule was not asked between(): what the library asks, it lacks"


def occurrences_found_before_their_copies() -> None:
    """between() is _occurrences_between() then a copy of each occurrence's VEVENT with
    the occurrence's start and end as DTSTART and DTEND: what occurrences_between reads."""
    moved = event(
        "RECURRENCE-ID:20261109T090000Z",
        "DTSTART:20261110T140000Z",
        "DTEND:20261110T150000Z",
        "SUMMARY:Moved",
    )
    weekly = event(
        "DTSTART:20261102T090000Z", "DTEND:20261102T100000Z", "RRULE:FREQ=WEEKLY;COUNT=3"
    )
    calendar = Calendar.from_ical(calendar_text(weekly, moved))
    query = recurring_ical_events.of(calendar)
    start, stop = query.to_datetime(WINDOW[0]), query.to_datetime(WINDOW[1])
    found = query._occurrences_between(start, stop)
    copies = query.between(*WINDOW)
    spans = {(o.start, o.end, str(o._adapter._component["SUMMARY"])) for o in found}
    written = {(c["DTSTART"].dt, c["DTEND"].dt, str(c["SUMMARY"])) for c in copies}
    assert len(found) == 3, f"_occurrences_between found {len(found)} occurrences, not 3"
    assert spans == written, f"occurrences {sorted(spans)} are not their copies {sorted(written)}"


# lines of every shape: plain, with parameters, quoted, escaped, odd names, no colon
LINES = [
    "SUMMARY:Point: budget",
    "DESCRIPTION:a\\;b\\,c\\nd:e",
    "BEGIN:VEVENT",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,TU",
    "X-A B:spaced name",
    " SUMMARY :padded",
    "SUMMARY;LANGUAGE=fr:x",
    'ATTENDEE;CN="Dupont: Léa";ROLE=CHAIR:mailto:lea@client.example',
    ":no name",
    "NO COLON",
    "SUM\\MARY:escaped",
    'X-"Q":quoted name',
    "X-ÉTÉ:a word",
    "X-A.B_C:dots",
    "X-A/B:slash",
    "DTSTART:20261102T090000Z",
    "DTSTART;TZID=Europe/Paris:20261102T090000",
    "DTSTART;VALUE=DATE:20261102",
    "X-P;a=b;A=c;TZID=:value",
    "X-P;A=b,c:a list",
    "X-P;A=^n:caret",
    "X-P;A=50%2C:percent",
    "X-P;A=b;:trailing",
    "X-P;=b:no key",
    "X-P;A:no value",
    "X-P;A=b c:space",
    "X-P ;A=b:space before",
    "X-P;A=\\,b:escaped",
    "ATTENDEE;CN=Léa;ROLE=CHAIR;PARTSTAT=ACCEPTED:mailto:lea@client.example",
    "X-P;A=\x85b:a C1 control",
]


def parts_or_error(line: Any) -> Any:
    try:
        name, params, value = line.parts()
    except ValueError as error:
        return f"ValueError: {error}"
    return name, type(params), dict(params), value


def content_lines_split_alike() -> None:
    """vtimezone._Line splits a plain line itself, and gives what icalendar's gives."""
    folded = "SUMMARY:a\r\n  b\r\nDTSTART:20261102\r\n\r\n"
    theirs: list[str] = Contentlines.from_ical(folded)  # type: ignore[no-untyped-call]
    ours = _lines(folded)
    assert list(map(str, ours)) == list(map(str, theirs)), f"{ours} unfolded unlike {theirs}"
    for text in LINES:
        split = parts_or_error(_Line(text))  # type: ignore[no-untyped-call]
        expected = parts_or_error(Contentline(text))  # type: ignore[no-untyped-call]
        assert split == expected, f"{text!r}: {split} where icalendar gives {expected}"


@dataclass(frozen=True)
class Internal:
    name: str  # as one finds it in the library
    used_by: str  # the module of followupd that relies on it, and what for
    check: Callable[[], None]  # fails an assertion saying what changed


INTERNALS = [
    Internal(
        "dateutil.rrule.rrule._iter",
        f"{RECURRENCE}.search_up_to runs its code with another datetime.MAXYEAR",
        rrule_iter,
    ),
    Internal(
        "dateutil.rrule.rrule._dtstart/_until",
        f"{VTIMEZONE}._onsets_listed bounds a zone's rules by them",
        rrule_dtstart_until,
    ),
    Internal(
        "dateutil.rrule.rruleset._rrule/_rdate/_exdate",
        f"{VTIMEZONE}._onsets_listed lists a zone's onsets from them",
        rruleset_parts,
    ),
    Internal(
        "dateutil.tz.tz._tzicalvtz",
        f"{VTIMEZONE}._zone_of takes only such a zone from icalendar",
        tzicalvtz,
    ),
    Internal(
        "dateutil.tz.tz._tzicalvtz._comps",
        f"{VTIMEZONE}._onsets_listed replaces each observance's rrule (isdst says which)",
        tzicalvtz_comps,
    ),
    Internal(
        "dateutil.tz.tz._tzicalvtz._find_compdt",
        f"{VTIMEZONE}._Onsets answers what it asks an observance's rrule: before(dt, inc)",
        tzicalvtz_asks_before,
    ),
    Internal(
        "icalendar.parser.ical.CalendarIcalParser.__init__",
        f"{VTIMEZONE}.ObjectParser subclasses the parser",
        parser_init,
    ),
    Internal(
        "icalendar.parser.ical.CalendarIcalParser.handle_end_component",
        f"{VTIMEZONE}.ObjectParser keeps an object's VTIMEZONE there, not icalendar's cache",
        parser_handle_end_component,
    ),
    Internal(
        "icalendar.parser.ical.CalendarIcalParser.parse_and_add_property",
        f"{VTIMEZONE}.ObjectParser reads a TZID there in the object's own zone",
        parser_parse_and_add_property,
    ),
    Internal(
        "icalendar.parser.ical.CalendarIcalParser._stack/_components",
        f"{VTIMEZONE}.ObjectParser.handle_end_component adds a VTIMEZONE as icalendar does",
        parser_stack_and_components,
    ),
    Internal(
        "icalendar.Calendar._get_component_factory/types_factory",
        f"{VTIMEZONE}.ObjectParser parses with them, as Calendar.from_ical",
        calendar_factories,
    ),
    Internal(
        "icalendar.Calendar._format_error",
        f"{VTIMEZONE}.ObjectParser.calendar says what Calendar.from_ical says",
        calendar_format_error,
    ),
    Internal(
        "icalendar.prop.vDDDTypes/vDDDLists.from_ical(value, tzinfo)",
        f"{VTIMEZONE}.ObjectParser.parse_and_add_property gives it a zone, not a TZID",
        from_ical_takes_a_zone,
    ),
    Internal(
        "icalendar.Timezone.to_tz(lookup_tzid=False)",
        f"{VTIMEZONE}._zone_of makes a zone afresh, not the one icalendar keeps",
        timezone_to_tz,
    ),
    Internal(
        "icalendar.parser.content_line.Contentline.raw_parts, UFOLD, NEWLINE",
        f"{VTIMEZONE}._Line splits plain lines, ObjectParser gives the parser its lines",
        content_lines_split_alike,
    ),
    Internal(
        "recurring_ical_events.Series.RecurrenceRules.rrulestr",
        f"{RECURRENCE}._SeriesSearchedUpToTheQuery makes its rules there",
        recurrence_rules_rrulestr,
    ),
    Internal(
        "recurring_ical_events.ComponentsWithName(series=)",
        f"{RECURRENCE}.occurrences_between queries with its own series",
        components_with_name_series,
    ),
    Internal(
        "recurring_ical_events.CalendarQuery._occurrences_between, Occurrence._adapter",
        f"{RECURRENCE}.occurrences_between reads the occurrences without their copies",
        occurrences_found_before_their_copies,
    ),
    Internal(
        "recurring_ical_events.Series.RecurrenceRules.rrule_between",
        f"{RECURRENCE}._RuleSearchedUpToTheQuery answers it: between(), until",
        series_asks_its_rules,
    ),
]


@pytest.mark.parametrize("internal", INTERNALS, ids=[internal.name for internal in INTERNALS])
def test_an_internal_the_reader_relies_on_keeps_its_shape(internal: Internal) -> None:
    try:
        internal.check()
    except (AssertionError, AttributeError, ImportError, TypeError, ValueError) as error:
        change = f"{type(error).__name__}: {error}"
    else:
        return
    pytest.fail(
        f"{internal.name} changed ({change}); {internal.used_by}: see pyproject.toml's bound",
        pytrace=False,
    )


def test_a_changed_internal_is_named_with_the_module_relying_on_it() -> None:
    """What a library upgrade shows: the internal, what changed, who relies on it."""

    def reshaped() -> None:
        assert parameters(CalendarIcalParser.__init__) == ["self", "text"], "other parameters"

    broken = Internal("icalendar.example.internal", f"{VTIMEZONE}.example", reshaped)
    with pytest.raises(pytest.fail.Exception) as failure:
        test_an_internal_the_reader_relies_on_keeps_its_shape(broken)
    assert str(failure.value).startswith("icalendar.example.internal changed (AssertionError: ")
    assert f"{VTIMEZONE}.example: see pyproject.toml's bound" in str(failure.value)


# -- the patches at work --------------------------------------------------------------------


def test_the_bounded_search_gives_dateutils_instances_up_to_its_year() -> None:
    """search_up_to is dateutil's rrule._iter, stopping after the year it is given."""
    rule = rrule(DAILY, dtstart=datetime(2029, 12, 20, 9), interval=3)
    found = list(search_up_to(2030)(rule))
    expected = rule.between(datetime(2029, 1, 1), datetime(2031, 1, 1))
    assert found == expected and found[-1] == datetime(2030, 12, 30, 9)
    assert list(search_up_to(2029)(rule)) == expected[:4]
    # 30 February: dateutil alone walks every year up to 9999
    assert list(search_up_to(2030)(rrule(YEARLY, dtstart=datetime(2026, 1, 1),
                                         bymonth=2, bymonthday=30))) == []  # fmt: skip


def test_a_zone_defined_after_the_event_using_it_is_read_in_it() -> None:
    """RFC 5545 allows a VTIMEZONE after the event using it; icalendar parses such an object
    twice (CalendarIcalParser.prepare_components), and the second pass knows the zone; which
    icalendar does not keep (a TZID no other test parses, so none can have it kept)."""
    tzid = "Zone defined after its event (test_ical_internals)"
    text = calendar_text(event(f"DTSTART;TZID={tzid}:20261203T100000"), zone_definition(tzid))
    found = read_object(text, ZoneInfo("America/New_York"), WINDOW)
    (happening,) = found.events
    assert (happening.start, found.notes) == (datetime(2026, 12, 3, 10, tzinfo=PARIS), [])
    assert tzp.timezone(tzid) is None


def test_a_zone_from_a_definition_answers_as_dateutils_own() -> None:
    """The onsets vtimezone lists answer as the rrulesets dateutil made (a spot check; the
    corpus reads years 2026, 2500 and 9000)."""
    plain: tzinfo = custom_zone()
    found = read_object(IN_CUSTOM_ZONE, PARIS, WINDOW).events[0].start.tzinfo
    assert found is not None and found is not plain
    for wall in [
        *(datetime(2026, 3, 29, 1, 59), datetime(2026, 3, 29, 2, 30), datetime(2026, 3, 29, 3)),
        *(datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 3), datetime(1700, 7, 1)),
    ]:
        for fold in (0, 1):
            at = wall.replace(fold=fold)
            assert at.replace(tzinfo=found).utcoffset() == at.replace(tzinfo=plain).utcoffset()
