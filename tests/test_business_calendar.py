"""The business calendar: weekends, holidays, send windows, daylight-saving days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followupd.config.sections import Business
from followupd.domain.business_calendar import BusinessCalendar, local_instant, public_holidays

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
CALENDAR = BusinessCalendar(Business())


def test_french_holidays_are_known() -> None:
    assert date(2027, 1, 1) in public_holidays("FR", 2027)
    assert date(2027, 5, 8) in public_holidays("FR", 2027)
    assert date(2027, 7, 4) not in public_holidays("FR", 2027)
    assert date(2027, 7, 5) in public_holidays("US", 2027)  # the 4th is a Sunday: observed


def test_weekends_and_holidays_are_not_working_days() -> None:
    assert CALENDAR.is_working_day(date(2026, 11, 23), ["FR"])  # a Monday
    assert not CALENDAR.is_working_day(date(2026, 11, 22), ["FR"])  # a Sunday
    assert not CALENDAR.is_working_day(date(2026, 7, 14), ["FR"])  # a Tuesday, fête nationale
    assert CALENDAR.is_working_day(date(2026, 7, 14), ["US"])
    assert not CALENDAR.is_working_day(date(2026, 7, 14), ["US", "FR"])


def test_first_working_day_of_january_2027() -> None:
    # January 1 is a Friday holiday, then a weekend: Monday the 4th
    assert CALENDAR.next_working_day(date(2027, 1, 1), ("FR",)) == date(2027, 1, 4)
    assert CALENDAR.next_working_day(date(2027, 1, 4), ("FR",)) == date(2027, 1, 4)


def test_add_working_days_skips_weekends_and_holidays() -> None:
    # Friday 2026-11-20 + 1 working day -> Monday 23
    assert CALENDAR.add_working_days(date(2026, 11, 20), 1, ("FR",)) == date(2026, 11, 23)
    # Tuesday 2026-11-10 + 1 -> Thursday 12 (the 11th is a holiday)
    assert CALENDAR.add_working_days(date(2026, 11, 10), 1, ("FR",)) == date(2026, 11, 12)
    assert CALENDAR.add_working_days(date(2026, 11, 22), 0, ("FR",)) == date(2026, 11, 23)
    # counted strictly after the day: Saturday + 1 is Monday, like Friday + 1
    assert CALENDAR.add_working_days(date(2026, 11, 21), 1, ("FR",)) == date(2026, 11, 23)
    assert CALENDAR.add_working_days(date(2026, 11, 21), 2, ("FR",)) == date(2026, 11, 24)


def test_custom_working_days() -> None:
    calendar = BusinessCalendar(Business(working_days=("sun", "mon", "tue", "wed", "thu")))
    assert calendar.next_working_day(date(2026, 11, 20), ("US",)) == date(2026, 11, 22)


def test_due_at_is_the_window_opening_in_the_recipient_zone() -> None:
    due = CALENDAR.due_at(date(2026, 11, 30), 1, PARIS, ("FR",))
    assert due == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 09:00 in Paris, winter
    due_ny = CALENDAR.due_at(date(2026, 11, 30), 1, NEW_YORK, ("US",))
    assert due_ny == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 in New York


@pytest.mark.parametrize(
    ("day", "tz", "utc_hour"),
    [
        # Europe/Paris: summer time from the last Sunday of March, to the last of October
        (date(2027, 3, 26), PARIS, 8),  # Friday before the change: UTC+1
        (date(2027, 3, 29), PARIS, 7),  # Monday after: UTC+2
        (date(2026, 10, 23), PARIS, 7),  # Friday before the change back: UTC+2
        (date(2026, 10, 26), PARIS, 8),  # Monday after: UTC+1
        # America/New_York changes on other Sundays (second of March, first of November)
        (date(2027, 3, 12), NEW_YORK, 14),
        (date(2027, 3, 15), NEW_YORK, 13),
        (date(2026, 10, 30), NEW_YORK, 13),
        (date(2026, 11, 2), NEW_YORK, 14),
    ],
)
def test_window_opening_keeps_local_time_across_dst(day: date, tz: ZoneInfo, utc_hour: int) -> None:
    opening = CALENDAR.window_opening(day, tz)
    assert opening.hour == utc_hour
    assert opening.astimezone(tz).time() == time(9, 0)


def test_a_due_date_on_the_dst_sunday_lands_monday_at_nine_local() -> None:
    # the last Sunday of March 2027 (the 28th) is also Easter: Monday 29 is Easter Monday,
    # so Tuesday 30 at 09:00 CEST; in the US, Monday 29 at 09:00 EDT
    due = CALENDAR.due_at(date(2027, 3, 28), 0, PARIS, ("FR",))
    assert due.astimezone(PARIS) == datetime(2027, 3, 30, 9, 0, tzinfo=PARIS)
    assert due == datetime(2027, 3, 30, 7, 0, tzinfo=UTC)
    due_ny = CALENDAR.due_at(date(2027, 3, 28), 0, NEW_YORK, ("US",))
    assert due_ny == datetime(2027, 3, 29, 13, 0, tzinfo=UTC)
    due = CALENDAR.due_at(date(2026, 10, 25), 0, PARIS, ("FR",))
    assert due.astimezone(PARIS) == datetime(2026, 10, 26, 9, 0, tzinfo=PARIS)


def test_nonexistent_and_ambiguous_local_times() -> None:
    # 02:30 does not exist in Paris on 2027-03-28: it moves forward by the hour
    moved = local_instant(date(2027, 3, 28), time(2, 30), PARIS)
    assert moved == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert moved.astimezone(PARIS).time() == time(3, 30)
    # 02:30 happens twice on 2026-10-25: the first occurrence (still UTC+2)
    first = local_instant(date(2026, 10, 25), time(2, 30), PARIS)
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_in_window_and_next_window_opening() -> None:
    monday_ten = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 Paris
    assert CALENDAR.in_window(monday_ten, PARIS, ("FR",))
    assert CALENDAR.next_window_opening(monday_ten, PARIS, ("FR",)) == monday_ten
    monday_evening = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # 19:00 Paris
    assert not CALENDAR.in_window(monday_evening, PARIS, ("FR",))
    assert CALENDAR.next_window_opening(monday_evening, PARIS, ("FR",)) == datetime(
        2026, 11, 24, 8, 0, tzinfo=UTC
    )
    saturday = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert CALENDAR.next_window_opening(saturday, PARIS, ("FR",)) == datetime(
        2026, 11, 23, 8, 0, tzinfo=UTC
    )
    early = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 07:00 Paris, before opening
    assert CALENDAR.next_window_opening(early, PARIS, ("FR",)) == datetime(
        2026, 11, 24, 8, 0, tzinfo=UTC
    )


def test_a_calendar_without_any_working_day_fails_clearly() -> None:
    calendar = BusinessCalendar(Business(working_days=("sun",)))
    # every Sunday is fine in general; but a country list cannot make a year of holidays,
    # so check the bound directly with a day set that never matches
    calendar.weekdays = frozenset()
    with pytest.raises(ValueError, match="no working day within a year"):
        calendar.next_working_day(date(2026, 1, 1), ("FR",))


zones = st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney"])
countries = st.sampled_from(["FR", "US", "BE", "JP", "AU"])


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    anchor=st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31)),
    offset=st.integers(min_value=-30, max_value=60),
    zone_name=zones,
    country=countries,
)
@pytest.mark.slow
def test_due_at_always_opens_a_window_on_a_working_day(
    anchor: date, offset: int, zone_name: str, country: str
) -> None:
    tz = ZoneInfo(zone_name)
    due = CALENDAR.due_at(anchor, offset, tz, (country,))
    local = due.astimezone(tz)
    assert local.time() == time(9, 0)
    assert CALENDAR.is_working_day(local.date(), [country])
    assert local.date() >= anchor + timedelta(days=offset)
    assert local.date() - (anchor + timedelta(days=offset)) < timedelta(days=10)
    assert CALENDAR.in_window(due, tz, (country,))


def test_cadence_dates_name_each_period_the_same_way() -> None:
    from followupd.rules.periods import cadence_dates

    first = date(2026, 11, 1)
    assert cadence_dates(first, 7, date(2026, 11, 10), date(2026, 11, 30)) == [
        date(2026, 11, 15),
        date(2026, 11, 22),
        date(2026, 11, 29),
    ]
    assert cadence_dates(first, 7, date(2026, 10, 1), date(2026, 11, 1)) == [first]
    assert cadence_dates(first, 7, date(2026, 10, 1), date(2026, 10, 31)) == []
    with pytest.raises(ValueError, match="positive"):
        cadence_dates(first, 0, first, first)


@settings(max_examples=200, deadline=None)
@given(
    start=st.dates(date(2026, 1, 1), date(2028, 12, 31)),
    count=st.integers(min_value=0, max_value=40),
)
def test_working_days_between_undoes_add_working_days(start: date, count: int) -> None:
    end = CALENDAR.add_working_days(start, count, ("FR",))
    assert CALENDAR.working_days_between(start, end, ("FR",)) == max(count, 1 if end > start else 0)


def test_working_days_between_counts_after_the_start_up_to_the_end() -> None:
    # Thursday 24 December 2026 to Monday 28: Christmas Friday and the weekend do not count
    assert CALENDAR.working_days_between(date(2026, 12, 24), date(2026, 12, 28), ("FR",)) == 1
    assert CALENDAR.working_days_between(date(2026, 12, 28), date(2026, 12, 28), ("FR",)) == 0
    assert CALENDAR.working_days_between(date(2026, 12, 28), date(2026, 12, 24), ("FR",)) == 0
