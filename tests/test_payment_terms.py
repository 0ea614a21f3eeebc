"""The legal cap on payment terms (L441-10 I) and the limitation periods: date arithmetic."""

from __future__ import annotations

from datetime import date

import pytest

from followupd.domain.limitation import last_day_to_act, limitation_start
from followupd.domain.payment_terms import (
    beyond_legal_cap,
    end_of_month,
    end_of_month_cap,
    latest_legal_due,
    net_cap,
)
from followupd.domain.states import ClientKind


@pytest.mark.parametrize(
    ("issued", "cap"),
    [
        (date(2026, 10, 31), date(2026, 12, 30)),
        (date(2026, 1, 31), date(2026, 4, 1)),  # across a February of 28 days
        (date(2028, 1, 31), date(2028, 3, 31)),  # and of 29
        (date(2027, 12, 15), date(2028, 2, 13)),  # across the year
    ],
)
def test_sixty_days_count_from_the_issue_date(issued: date, cap: date) -> None:
    assert net_cap(issued) == cap
    assert latest_legal_due(issued) == cap
    assert not beyond_legal_cap(issued, cap)
    assert beyond_legal_cap(issued, date.fromordinal(cap.toordinal() + 1))


@pytest.mark.parametrize(
    ("day", "last"),
    [
        (date(2026, 2, 3), date(2026, 2, 28)),
        (date(2028, 2, 3), date(2028, 2, 29)),
        (date(2026, 12, 31), date(2026, 12, 31)),
        (date(2026, 4, 1), date(2026, 4, 30)),
    ],
)
def test_the_end_of_a_month(day: date, last: date) -> None:
    assert end_of_month(day) == last


@pytest.mark.parametrize(
    ("issued", "cap", "why"),
    [
        # 15 January + 45 days = 1 March, end of month: 31 March (later than 31 January + 45)
        (date(2026, 1, 15), date(2026, 3, 31), "issue + 45 days, then end of month"),
        # 1 January: 15 February's end is the 28th; 31 January + 45 days is 17 March
        (date(2026, 1, 1), date(2026, 3, 17), "end of the issue month, then + 45 days"),
        (date(2028, 1, 1), date(2028, 3, 16), "a leap February shortens the second reading"),
        (date(2027, 12, 31), date(2028, 2, 29), "ends on a leap day"),
        (date(2026, 11, 30), date(2027, 1, 31), "across the year"),
    ],
)
def test_45_days_end_of_month_accepts_either_reading(issued: date, cap: date, why: str) -> None:
    assert end_of_month_cap(issued) == cap, why


def test_agreed_end_of_month_only_widens_the_sixty_days() -> None:
    issued = date(2026, 1, 15)
    assert latest_legal_due(issued) == date(2026, 3, 16)
    assert latest_legal_due(issued, end_of_month_agreed=True) == date(2026, 3, 31)
    assert beyond_legal_cap(issued, date(2026, 3, 31))
    assert not beyond_legal_cap(issued, date(2026, 3, 31), end_of_month_agreed=True)
    # issued on the last day of January, 60 days (1 April) reach further than 45 end of month
    assert end_of_month_cap(date(2026, 1, 31)) == date(2026, 3, 31)
    assert latest_legal_due(date(2026, 1, 31), end_of_month_agreed=True) == date(2026, 4, 1)
    assert beyond_legal_cap(date(2026, 1, 31), date(2026, 4, 2), end_of_month_agreed=True)


@pytest.mark.parametrize(
    ("start", "kind", "last"),
    [
        (date(2022, 6, 7), ClientKind.BUSINESS, date(2027, 6, 7)),
        (date(2024, 2, 29), ClientKind.BUSINESS, date(2029, 2, 28)),  # no 29 February then
        (date(2024, 2, 29), ClientKind.CONSUMER, date(2026, 2, 28)),
        (date(2026, 2, 28), ClientKind.CONSUMER, date(2028, 2, 28)),
        (date(2025, 12, 31), ClientKind.CONSUMER, date(2027, 12, 31)),
    ],
)
def test_five_years_between_professionals_two_against_a_consumer(
    start: date, kind: ClientKind, last: date
) -> None:
    assert last_day_to_act(start, kind) == last


def test_the_period_starts_at_the_issue_or_at_the_missions_end_if_earlier() -> None:
    assert limitation_start(date(2026, 3, 10), None) == date(2026, 3, 10)
    assert limitation_start(date(2026, 3, 10), date(2026, 6, 30)) == date(2026, 3, 10)
    # an invoice issued late, after the work was done: the end of the mission counts
    assert limitation_start(date(2026, 9, 1), date(2026, 6, 30)) == date(2026, 6, 30)
