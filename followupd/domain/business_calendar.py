"""The business calendar: working days, public holidays, the send window, time zones.

Nothing here reads the clock: every function takes the day or instant it
reasons about. A follow-up is due at the opening of the send window, in the
recipient's time zone, on the first working day on or after its anchor date
plus its offset (the README, "What it does").

A working day is one of the configured weekdays that is a public holiday in
none of the countries given: a client email skips the client's holidays; a
reminder to the owner skips the owner's and the client's, since neither side
can be called on its own holiday.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from followupd.config.sections import Business

# How far a search for a working day may go before the calendar is declared
# impossible (a config with every day a holiday would otherwise loop forever).
_MAX_SEARCH_DAYS = 366


@lru_cache(maxsize=512)
def public_holidays(country: str, year: int) -> frozenset[date]:
    """The public holidays of `country` in `year` (national ones, no subdivision)."""
    return frozenset(_holidays_of(country)(years=year))


@cache
def _holidays_of(country: str) -> Callable[..., Any]:
    """holidays' class for `country` (an ISO code or one of its aliases), from its module alone.

    holidays.country_holidays(country) would do the same after importing the
    package holidays.countries, whose __init__ imports all 250 country
    modules: 60 ms of every command that works out a working day. Its
    registry names the module of each country; a country it does not find
    there goes the long way, which says what is wrong with it.
    """
    import holidays  # 16 ms: when a working day is worked out (not for a sync, say)
    from holidays.registry import COUNTRIES

    module = next((name for name, codes in COUNTRIES.items() if country in codes[1:]), None)
    path = Path(holidays.__file__).parent / "countries" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"holidays.countries.{module}", path)
    if module is None or spec is None or spec.loader is None or not path.is_file():
        return lambda **options: holidays.country_holidays(country, **options)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    found: Callable[..., Any] = getattr(loaded, country)
    return found


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`day` at wall-clock time `at` in `tz`, as an aware datetime in UTC.

    On a daylight-saving day the wall-clock time is honoured: 09:00 stays 09:00
    local on both sides of the change. A time that does not exist (inside the
    spring-forward gap) moves forward by the gap; an ambiguous one (autumn)
    takes its first occurrence.
    """
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


class BusinessCalendar:
    """Working days and send windows, per country and time zone."""

    def __init__(self, business: Business) -> None:
        self.weekdays = business.weekday_numbers
        self.opens, self.closes = business.window
        self._next_working = lru_cache(maxsize=65536)(self._next_working_day)
        self._opening = lru_cache(maxsize=65536)(self._window_opening_on_working_day)

    def is_working_day(self, day: date, countries: Iterable[str]) -> bool:
        if day.weekday() not in self.weekdays:
            return False
        return not any(day in public_holidays(country, day.year) for country in countries)

    def next_working_day(self, day: date, countries: tuple[str, ...]) -> date:
        """`day` itself if it is a working day, else the first one after it."""
        return self._next_working(day, countries)

    def _next_working_day(self, day: date, countries: tuple[str, ...]) -> date:
        for offset in range(_MAX_SEARCH_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_working_day(candidate, countries):
                return candidate
        raise ValueError(f"no working day within a year of {day} for {', '.join(countries)}")

    def add_working_days(self, day: date, count: int, countries: tuple[str, ...]) -> date:
        """The `count`-th working day strictly after `day` (0: `day` or the next working day).

        Saturday + 1 and Friday + 1 are both Monday: the days are counted after
        `day`, whether or not `day` itself is a working day.
        """
        if count == 0:
            return self.next_working_day(day, countries)
        current = day
        for _ in range(count):
            current = self.next_working_day(current + timedelta(days=1), countries)
        return current

    def working_days_between(self, start: date, end: date, countries: tuple[str, ...]) -> int:
        """How many working days come after `start`, up to `end` included."""
        days = (end - start).days
        return sum(
            self.is_working_day(start + timedelta(days=offset), countries)
            for offset in range(1, days + 1)
        )

    def window_opening(self, day: date, tz: ZoneInfo) -> datetime:
        return local_instant(day, self.opens, tz)

    def due_at(
        self, anchor: date, offset_days: int, tz: ZoneInfo, countries: tuple[str, ...]
    ) -> datetime:
        """When a follow-up anchored on `anchor` plus `offset_days` becomes due (in UTC)."""
        return self._opening(anchor + timedelta(days=offset_days), tz, countries)

    def _window_opening_on_working_day(
        self, day: date, tz: ZoneInfo, countries: tuple[str, ...]
    ) -> datetime:
        return self.window_opening(self.next_working_day(day, countries), tz)

    def opening_from(
        self, instant: datetime, tz: ZoneInfo, countries: tuple[str, ...], strictly: bool = False
    ) -> datetime:
        """The first opening of the send window on a working day at (or strictly after)
        `instant`."""
        day = instant.astimezone(tz).date()
        opening = self.due_at(day, 0, tz, countries)
        if opening < instant or (strictly and opening == instant):
            opening = self.due_at(day, 1, tz, countries)
        return opening

    def in_window(self, instant: datetime, tz: ZoneInfo, countries: tuple[str, ...]) -> bool:
        """Whether `instant` falls on a working day inside the send window in `tz`."""
        local = instant.astimezone(tz)
        if not self.is_working_day(local.date(), countries):
            return False
        return self.opens <= local.time().replace(tzinfo=None) < self.closes

    def next_window_opening(
        self, instant: datetime, tz: ZoneInfo, countries: tuple[str, ...]
    ) -> datetime:
        """`instant` if it is inside a send window, else the next window's opening."""
        if self.in_window(instant, tz, countries):
            return instant
        local = instant.astimezone(tz)
        day = local.date()
        if local.time().replace(tzinfo=None) >= self.opens:
            day += timedelta(days=1)
        return self.window_opening(self.next_working_day(day, countries), tz)
