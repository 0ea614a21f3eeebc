"""The occurrences of recurring events (RRULE, RDATE, EXDATE) within a window, in bounded time.

recurring_ical_events expands a series with dateutil's rrule, which looks
for the instances of a rule period after period (year, month, week, day or
hour, by FREQ) and stops at an instance after the end of the query, at COUNT
or UNTIL, or once past the year 9999. So a rule no day can match
(BYMONTH=2 with BYMONTHDAY=30) made it walk every period up to 9999: 0.3 s
(YEARLY) to 10 s (HOURLY) to read one object, whatever the window; and
INTERVAL=0, which the fuzzer wrote, never ended (dateutil issue 1441).
dateutil has no public way to bound the search (issues 1094, 1393). So rules
that would stall a sync are not expanded (`why_not_expanded`), and the others
are searched with dateutil's own code (`rrule._iter`, a private method) run
with the year where it gives up set to the year after the query ends
(`search_up_to`). tests/test_ical_internals.py fails by name should a
dateutil or recurring_ical_events no longer have what this relies on.
"""

from __future__ import annotations

import datetime as datetime_module
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from functools import cache
from types import FunctionType, SimpleNamespace
from typing import Any

import recurring_ical_events
from dateutil.rrule import rrule
from icalendar import Calendar, Component

# a rule repeating more often than this a day is no meeting, and expanding one
# that repeats every second takes minutes: such rules are not expanded
MAX_PER_DAY = 24
PER_DAY = {"SECONDLY": 86_400, "MINUTELY": 1_440, "HOURLY": 24}
# periods dateutil may go through from an event's start to the window's end
MAX_STEPS = 200_000


def why_not_expanded(
    parts: list[Component], window: tuple[datetime, datetime]
) -> tuple[Component, str] | None:
    """The first event whose rules would stall a sync, and why; None when all can be expanded."""
    checks: list[tuple[Callable[[Component], bool], str]] = [
        (
            lambda part: per_day(part) > MAX_PER_DAY,
            f"more than {MAX_PER_DAY} times a day; its first occurrence is read",
        ),
        (lambda part: not _advances(part), "its INTERVAL is not positive"),
        (lambda part: _steps(part, window) > MAX_STEPS, "it starts too long before"),
    ]
    for fails, why in checks:
        for part in parts:
            if fails(part):
                return part, why
    return None


def occurrences_between(
    calendar: Calendar, window: tuple[datetime, datetime]
) -> list[tuple[Component, Any, Any]]:
    """The occurrences of the calendar's events within the window, in no order.

    Each is the VEVENT it repeats (the series', or that of an occurrence
    written apart, with a RECURRENCE-ID) and its start and end: what
    recurring_ical_events' between() writes as DTSTART and DTEND into a copy
    of that VEVENT, one copy an occurrence, which cost more than finding the
    occurrences. Raises what recurring_ical_events raises on rules it cannot
    read, and the TypeError its copy would raise on a start or end of no time
    type.
    """
    query = recurring_ical_events.of(calendar, components=[_EVENT_SERIES])
    start, stop = query.to_datetime(window[0]), query.to_datetime(window[1])
    found = []
    for occurrence in query._occurrences_between(start, stop):
        for value in (occurrence.start, occurrence.end):
            if not isinstance(value, date | timedelta | time | tuple):
                raise TypeError(f"an occurrence of no time type: {value!r}")
        found.append((occurrence._adapter._component, occurrence.start, occurrence.end))
    return found


def per_day(part: Component) -> int:
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
    prop = part.get("DTSTART")
    # written twice (a list), or kept as text icalendar could not parse (a vBroken, whose
    # `dt` raises): no start to count from, and the expansion says what is wrong
    start = None if isinstance(prop, list | str) else getattr(prop, "dt", None)
    if not isinstance(start, date) or not _rules(part):
        return 0
    first = start.date() if isinstance(start, datetime) else start
    return max(0, (window[1].date() - first).days) * per_day(part)


class _RuleSearchedUpToTheQuery:
    """One RRULE of an event, whose instances are looked for up to the end of the query only.

    For a rule no day can match (BYMONTH=2 with BYMONTHDAY=30, BYMONTHDAY=31
    in April, BYSETPOS=2 of a set of one day...) dateutil went through every
    period up to 9999, whatever the window. And for a rule matched rarely (29
    February on a Monday) it looked decades ahead, for the ten instances its
    cache reads at once. Here dateutil's own search (the code of rrule._iter,
    so the instances are exactly dateutil's) runs with datetime.MAXYEAR set
    to the year after the query ends, and without a cache.

    A rule no day matches thus gives no instance, and its event, as RFC 5545
    has it, only the instance of its DTSTART, read if it falls in the window;
    without a note, since a rule can as well have no instance in the window.
    """

    def __init__(self, rule: rrule) -> None:
        self.rule = rule
        self.until = rule.until  # recurring_ical_events keeps UNTIL there, and reads it

    def between(self, after: datetime, before: datetime, inc: bool = False) -> list[datetime]:
        # time zones apart, an instance before the end of the query can be in the next year
        search = search_up_to(min(before.year + 1, datetime_module.MAXYEAR))
        found = []
        for instant in search(self.rule):
            if instant > before or (instant == before and not inc):
                break
            if instant > after or (instant == after and inc):
                found.append(instant)
        return found


@cache
def search_up_to(last_year: int) -> Callable[[rrule], Iterator[datetime]]:
    """dateutil's rrule._iter, giving up after `last_year` rather than after the year 9999.

    The same code, with the names of its module but `datetime`, whose MAXYEAR
    (where dateutil gives up) is `last_year`. What it relies on (a plain
    function reading the global `datetime`'s MAXYEAR) is checked by name in
    tests/test_ical_internals.py; the tests of such rules in
    tests/test_calendar_corpus.py count its steps to check that it still bounds the search.
    """
    calendar_to = SimpleNamespace(**{**vars(datetime_module), "MAXYEAR": last_year})
    search = rrule._iter
    return FunctionType(search.__code__, {**search.__globals__, "datetime": calendar_to})


class _SeriesSearchedUpToTheQuery(recurring_ical_events.Series):  # type: ignore[misc]
    """recurring_ical_events' series of an event, its rules searched up to the query's end.

    RecurrenceRules.rrulestr is where the library makes each rule of a series
    (from the rule's text, DTSTART and UNTIL); it then asks the rule for
    `between(start, end, inc=True)` and reads its `until`.
    """

    class RecurrenceRules(recurring_ical_events.Series.RecurrenceRules):  # type: ignore[misc]
        def rrulestr(self, rule_string: str) -> Any:
            rule = super().rrulestr(rule_string)
            return _RuleSearchedUpToTheQuery(rule) if isinstance(rule, rrule) else rule


# the documented way to give recurring_ical_events a series class of one's own
_EVENT_SERIES = recurring_ical_events.ComponentsWithName(
    "VEVENT", series=_SeriesSearchedUpToTheQuery
)
